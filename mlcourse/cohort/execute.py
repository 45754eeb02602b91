"""nbgrader's Execute preprocessor with a bound on what one cell may output.

nbgrader's own LimitOutput counts stream lines only, after the whole notebook ran: a cell that
displays 40 MB of HTML, or a million short lines, is kept in memory and in the graded notebook
(and in the learner's feedback). Here every output message is weighed as it arrives; once a
cell's outputs pass ``max_output_kb``, the rest of that cell's output is dropped and one note
says so. The note goes to stdout, never stderr: nbgrader scores a test cell with stderr as 0.
"""

from __future__ import annotations

from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Integer

CUT_NOTE = "[output cut: this cell printed more than the {limit} KiB the grader keeps]\n"


def _weight(msg: dict) -> int:
    content = msg.get("content", {})
    size = len(content.get("text", "") or "") + len(content.get("evalue", "") or "")
    size += sum(len(line) for line in content.get("traceback", []) or [])
    for part in ("data", "metadata"):
        for value in (content.get(part) or {}).values():
            size += len(value) if isinstance(value, str) else len(str(value))
    return size


class LimitedExecute(Execute):
    max_output_kb = Integer(1024, help="output kept per cell, KiB").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self.__dict__["_mlcourse_output_bytes"] = {}
        self.__dict__["_mlcourse_cut_cells"] = set()
        return super().preprocess(nb, resources, km=km)

    def output(self, outs, msg, display_id, cell_index):
        if msg.get("msg_type") == "error":
            # An error is never dropped (a failing test must fail); its text is bounded.
            limit = self.max_output_kb * 1024
            content = msg.get("content", {})
            if _weight(msg) > limit:
                content["evalue"] = (content.get("evalue") or "")[:limit // 2]
                traceback = content.get("traceback") or []
                content["traceback"] = [line[:limit // 8] for line in
                                        traceback[:4] + traceback[-4:]]
            return super().output(outs, msg, display_id, cell_index)
        if msg.get("msg_type") not in ("stream", "display_data", "execute_result"):
            return super().output(outs, msg, display_id, cell_index)
        sizes = self.__dict__.setdefault("_mlcourse_output_bytes", {})
        cut = self.__dict__.setdefault("_mlcourse_cut_cells", set())
        if cell_index in cut:
            return None
        sizes[cell_index] = sizes.get(cell_index, 0) + _weight(msg)
        if sizes[cell_index] > self.max_output_kb * 1024:
            cut.add(cell_index)
            note = new_output("stream", name="stdout",
                              text=CUT_NOTE.format(limit=self.max_output_kb))
            outs.append(note)
            return note
        return super().output(outs, msg, display_id, cell_index)

    def _update_display_id(self, display_id, msg):
        # An update replaces an output in place: it may be no larger than the limit.
        if _weight(msg) > self.max_output_kb * 1024:
            return
        return super()._update_display_id(display_id, msg)
