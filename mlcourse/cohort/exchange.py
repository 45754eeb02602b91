"""nbgrader's exchange collect, without following symlinks.

nbgrader's own collect copies a submission with ``shutil.copytree``, which follows symlinks: a
link in a learner's submission to the cohort's ``source/`` (hidden tests) or to ``solutions/``
arrives in ``submitted/`` as a copy of the real file, and from there in ``autograded/`` and in the
learner's feedback. Here the links stay links (so autograde refuses the submission as tampered,
naming the file) and pipes, sockets and devices are never opened: each is replaced by a dangling
link that names what it was, so it is refused the same way.
"""

from __future__ import annotations

import os
import shutil
import stat

from nbgrader.exchange.default.collect import ExchangeCollect
from nbgrader.utils import ignore_patterns


class SafeCollect(ExchangeCollect):
    def do_copy(self, src, dest):
        if os.path.islink(src):
            # the inbound entry itself is a link (to another learner's folder, say)
            os.makedirs(dest)
            os.symlink("refused-linked-submission", os.path.join(dest, "submission-folder"))
            return
        size = self.get_size(src)
        if size > 1000 * self.coursedir.max_dir_size:
            self.log.error("Directory size is too big")
            raise RuntimeError(f"Directory size is too big. Size is {size}, maximum size is "
                               f"{1000 * self.coursedir.max_dir_size}")
        keep = ignore_patterns(exclude=self.coursedir.ignore, include=self.coursedir.include,
                               max_file_size=self.coursedir.max_file_size, log=self.log)
        special = []

        def ignore(folder, names):
            ignored = set(keep(folder, names))
            for name in names:
                mode = os.lstat(os.path.join(folder, name)).st_mode
                if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                    ignored.add(name)
                    special.append((os.path.relpath(os.path.join(folder, name), src), mode))
            return ignored

        shutil.copytree(src, dest, symlinks=True, ignore=ignore)
        for relative, mode in special:
            kind = "pipe" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) \
                else "device"
            os.symlink(f"refused-{kind}", os.path.join(dest, relative))
