"""Parallel, sandboxed autograding of a cohort on top of nbgrader's own autograde.

The parent process checks every submission first (missing, malformed, tampered: no kernel is
started for those), hands the rest out one at a time to whichever worker process is free,
shows progress, and records a status for every (learner, assignment). Each worker imports
nbgrader once and autogrades submission after submission through one NbGraderAPI, with its own
kernel IPC folder and kernels that run in the sandbox of :mod:`mlcourse.cohort.sandbox`.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .. import grading, paths
from .course import Cohort, CohortError, SubmissionStatus, now
from .limits import MiB, Limits

KEEPS_GRADE = {"graded", "needs-manual-grading", "timeout"}
RESULT_MARK = "MLCOURSE-RESULT "


@dataclass
class Job:
    learner: str
    assignment: str


# ------------------------------------------------------------------ checks before grading

def non_regular_files(folder: Path) -> list[str]:
    """Every entry under ``folder`` that is neither a plain file nor a folder (symlinks,
    pipes, sockets, devices), relative to it; symlinks are never followed."""
    if not folder.is_dir() or folder.is_symlink():
        return [folder.name] if folder.is_symlink() else []
    odd = []
    for top, folders, files in os.walk(folder, followlinks=False):
        for name in folders + files:
            entry = Path(top) / name
            if entry.is_symlink() or not (entry.is_dir() or entry.is_file()):
                odd.append(str(entry.relative_to(folder)))
    return sorted(odd)


def precheck(cohort: Cohort, learner: str, assignment: str, released,
             limits: Limits | None = None) -> SubmissionStatus | None:
    """A status for a submission that must not be run, or None if it can be graded."""
    limits = limits or Limits()
    def status(kind: str, detail: str) -> SubmissionStatus:
        return SubmissionStatus(learner, assignment, kind, detail, now())

    path = cohort.submission_path(learner, assignment)
    for level in (path.parent.parent, path.parent, path):
        if level.is_symlink():
            return status("tampered", f"{level.relative_to(cohort.root / 'submitted')} is a "
                                      "symlink (refused, never followed): submit plain files")
    odd = non_regular_files(path.parent)
    if odd:
        named = ", ".join(odd[:3]) + (f" and {len(odd) - 3} more" if len(odd) > 3 else "")
        return status("tampered", f"not a regular file: {named} (symlinks, pipes and devices "
                                  "are refused, never followed): submit plain files")
    if not path.is_file():
        folder = path.parent
        others = sorted(p.name for p in folder.glob("*.ipynb")) if folder.is_dir() else []
        if others:
            return status("missing", f"no {path.name}; found {', '.join(others)} instead "
                                     "(renamed?)")
        return status("missing", "nothing submitted" if not folder.is_dir()
                      else f"no {path.name} in the submission")
    size = path.stat().st_size
    folder_size = sum(p.stat().st_size for p in path.parent.rglob("*") if p.is_file())
    if max(size, folder_size) > limits.notebook_mb * MiB:
        what = path.name if size > limits.notebook_mb * MiB else "the submission folder"
        return status("malformed", f"{what} is {max(size, folder_size) / MiB:.0f} MiB, over "
                                   f"the notebook size limit of {limits.notebook_mb} MiB "
                                   "(--notebook-mb): clear large outputs and resubmit")
    try:
        submission = grading.read_notebook(path)
    except grading.NotebookProblem as problem:
        return status("malformed", str(problem).replace(str(cohort.root) + "/", ""))
    try:
        grading.check_submission_shape(submission, released)
    except grading.NotebookProblem as problem:
        return status(problem.status, str(problem).split(":")[0])
    return None


# ------------------------------------------------------------------ the worker process

def _worker_config(cohort: Cohort, ipc_dir: Path, limits: Limits, sandbox: bool,
                   cgroup_parent: str = ""):
    config = cohort.config()
    config.ExecutePreprocessor.timeout = limits.timeout
    config.Execute.timeout = limits.timeout
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(ipc_dir / "kernel")
    # nbgrader's Execute, with every cell's output weighed as it arrives (cut past the limit)
    from nbgrader.converters import Autograde
    config.Autograde.autograde_preprocessors = [
        "mlcourse.cohort.execute.LimitedExecute" if p.__name__ == "Execute" else p
        for p in Autograde.class_traits()["autograde_preprocessors"].default()]
    config.LimitedExecute.max_output_kb = limits.output_kb
    config.LimitedExecute.store_widget_state = False    # widget state is unbounded output
    config.LimitedExecute.timeout = limits.timeout
    if sandbox:
        # The whole course folder goes (its .git holds the solutions too), and the places
        # other people's files live; the environment and the course's package and data are
        # mounted back read-only below.
        hidden = [str(cohort.root), str(paths.course_root()), str(paths.solutions_dir()),
                  "/root", "/home", "/srv", "/var/lib", "/mnt", "/media"]
        manager = "mlcourse.cohort.sandbox.SandboxedKernelManager"
        config.ExecutePreprocessor.kernel_manager_class = manager
        config.Execute.kernel_manager_class = manager
        config.LimitedExecute.kernel_manager_class = manager
        sandboxed = config.SandboxedKernelManager
        sandboxed.memory_mb = limits.memory_mb
        sandboxed.scratch_mb = limits.scratch_mb
        sandboxed.disk_mb = limits.disk_mb
        sandboxed.file_mb = limits.file_mb
        sandboxed.processes = limits.processes
        sandboxed.cgroup_parent = cgroup_parent
        sandboxed.hidden_paths = hidden
        sandboxed.ipc_dir = str(ipc_dir)
        root = paths.course_root()
        sandboxed.readonly_paths = [
            sys.prefix, sys.base_prefix, str(root / "mlcourse"), str(root / "datasets")]
    return config


# What the learner's code sees when it runs into a limit, and the limit to name.
LIMIT_SIGNS = [
    ("File too large", "a file it wrote reached the file size limit of {file_mb} MiB "
                       "(--file-mb)"),
    ("No space left on device", "it filled its scratch space: /tmp holds {scratch_mb} MiB "
                                "(--scratch-mb) and its own folder {disk_mb} MiB (--disk-mb)"),
    ("Resource temporarily unavailable", "it hit the process limit of {processes} processes "
                                         "and threads (--processes)"),
    ("can't start new thread", "it hit the process limit of {processes} processes "
                               "and threads (--processes)"),
]


LIMIT_ERRORS = {"OSError", "BlockingIOError", "RuntimeError", "PermissionError"}


def _limit_hit(nb, limits: Limits) -> str:
    """The limit named by an error in any cell's outputs, or ''."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error" or output.get("ename") not in LIMIT_ERRORS:
                continue
            for sign, message in LIMIT_SIGNS:
                if sign in output.get("evalue", ""):
                    return message.format(**vars(limits))
    return ""


def _outcome_from_notebook(folder: Path, assignment: str, limits: Limits,
                           forks_refused: int = 0) -> tuple[str, str]:
    """(status hint, detail) from the autograded notebook's outputs."""
    nb = grading.read_notebook(folder / f"{assignment}.ipynb")
    timeouts, memory, failing = [], [], []
    for grade_id, cell in grading.graded_cells(nb).items():
        kind, _ = grading.error_summary(cell)
        meta = grading.nbgrader_meta(cell)
        if kind == "timeout":
            timeouts.append(grade_id)
        if any(o.get("ename") == "MemoryError" for o in cell.get("outputs", [])):
            memory.append(grade_id)
        if meta.get("grade") and not meta.get("solution") and kind != "graded":
            failing.append(grade_id)
    for cell in nb.cells:   # ungraded cells can time out or run out of memory too
        for output in cell.get("outputs", []):
            if output.get("ename") == "CellTimeoutError" and not timeouts:
                timeouts.append(grading.nbgrader_meta(cell).get("grade_id", "a cell"))
            if output.get("ename") == "MemoryError" and not memory:
                memory.append(grading.nbgrader_meta(cell).get("grade_id", "a cell"))
    if timeouts:
        return "timeout", (f"cell {timeouts[0]} ran past the time limit of {limits.timeout} s "
                           "(--timeout)")
    if memory:
        return "crashed", (f"ran out of memory in {memory[0]} (the limit is "
                           f"{limits.memory_mb} MiB, --memory)")
    if forks_refused:
        return "crashed", (f"it hit the process limit of {limits.processes} processes and "
                           f"threads (--processes): {forks_refused} start(s) refused")
    hit = _limit_hit(nb, limits)
    if hit:
        return "crashed", hit
    cut = sum(1 for c in nb.cells for o in c.get("outputs", [])
              if o.get("name") == "stdout" and o.get("text", "").startswith("[output cut"))
    detail = f"failing: {', '.join(failing)}" if failing else "all tests pass"
    if cut:
        detail += (f"; output of {cut} cell(s) cut at the limit of {limits.output_kb} KiB "
                   "(--output-kb)")
    return "ok", detail


def _folder_bytes(folder: Path) -> int:
    total = 0
    for top, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(top, name)).st_size
            except OSError:
                pass
    return total


def grade_batch(cohort_dir: str, jobs: Iterable[dict], limits: Limits, sandbox: bool,
                emit: Callable[[dict], None]) -> None:
    """Autograde ``jobs`` one after the other in this process (one worker): nbgrader's
    start-up is paid once per worker, not once per submission."""
    from .sandbox import WORKDIR_ENV, PidsCgroups

    cohort = Cohort(Path(cohort_dir))
    cgroups = PidsCgroups.create(limits.processes) if sandbox else None
    if sandbox and cgroups is None:
        print(f"warning: processes are not limited ({PidsCgroups.why})", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="mlcourse-worker-") as scratch:
        ipc_dir = Path(scratch) / "ipc"
        ipc_dir.mkdir()
        os.environ["JUPYTER_RUNTIME_DIR"] = str(ipc_dir)
        # Inside the sandbox only the course's package and data are visible, not the course
        # folder itself: tell `datasets.load` where the data is.
        os.environ["MLCOURSE_DATASETS"] = str(paths.datasets_dir())
        api = cohort.api(_worker_config(cohort, ipc_dir, limits, sandbox,
                                        str(cgroups.parent) if cgroups else ""))
        try:
            for job in jobs:
                try:
                    record = _grade_one(cohort, api, job, ipc_dir, Path(scratch), limits,
                                        cgroups, WORKDIR_ENV)
                except Exception as error:   # one submission never takes the worker down
                    record = {**job, "success": False,
                              "detail": f"grading failed: {type(error).__name__}: {error}"[:200]}
                emit(record)
        finally:
            if cgroups is not None:
                cgroups.remove()


def _grade_one(cohort: Cohort, api, job: dict, ipc_dir: Path, scratch: Path, limits: Limits,
               cgroups, workdir_env: str) -> dict:
    learner, assignment = job["learner"], job["assignment"]
    shutil.rmtree(ipc_dir, ignore_errors=True)   # nothing of one learner reaches the next
    ipc_dir.mkdir()
    # Checked again right before nbgrader copies the submission (which follows links): the
    # folder may have changed since the check before grading (a collect --update, say).
    odd = non_regular_files(cohort.submission_path(learner, assignment).parent)
    if odd:
        return {"learner": learner, "assignment": assignment, "success": False,
                "status": "tampered", "detail": f"not a regular file: {', '.join(odd[:3])} "
                                                "(refused, never followed)"}
    folder = cohort.autograded_folder(learner, assignment)
    backup = scratch / "previous"
    if backup.exists():
        shutil.rmtree(backup)
    if folder.exists():
        shutil.move(folder, backup)
    os.environ[workdir_env] = str(folder)
    started = time.perf_counter()
    with grading.quiet_logging():
        result = api.autograde(assignment, learner)
    forks_refused = cgroups.sweep() if cgroups is not None else 0
    # The kernel's connection folder is the one host folder its code can write to: what it
    # left there is weighed (each file is bounded by --file-mb while it runs) and removed.
    wrote = _folder_bytes(ipc_dir)
    record = {"learner": learner, "assignment": assignment,
              "seconds": round(time.perf_counter() - started, 2)}
    if result.get("success") and (folder / f"{assignment}.ipynb").is_file():
        if backup.exists():
            shutil.rmtree(backup)
        record["hint"], record["detail"] = _outcome_from_notebook(folder, assignment, limits,
                                                                  forks_refused)
        if wrote > limits.disk_mb * MiB:
            record["hint"] = "crashed"
            record["detail"] = (f"it wrote {wrote / MiB:.0f} MiB outside its folder, over "
                                f"the disk limit of {limits.disk_mb} MiB (--disk-mb)")
        record["success"] = True
    else:
        if folder.exists():
            shutil.rmtree(folder)
        if backup.exists():                # a failed regrade keeps the old files
            shutil.move(backup, folder)
        record["success"] = False
        record["detail"] = _failure_reason(result, limits, forks_refused)
    return record


def _failure_reason(result: dict, limits: Limits, forks_refused: int = 0) -> str:
    text = (result.get("error") or "") + "\n" + (result.get("log") or "")
    if forks_refused:
        return (f"the kernel died after hitting the process limit of {limits.processes} "
                "processes and threads (--processes)")
    if "DeadKernelError" in text or "Kernel died" in text or "kernel died" in text:
        return (f"the kernel died (os._exit, a crash, or the memory limit of "
                f"{limits.memory_mb} MiB, --memory)")
    if "CellTimeoutError" in text or "Timeout" in text:
        return "the kernel stopped answering (timeout)"
    lines = [line for line in text.splitlines() if "Error" in line]
    return (lines[-1].strip()[:200] if lines else "nbgrader autograde failed")


def worker_main() -> int:
    """Entry point of a worker: on stdin a JSON line of settings, then one JSON line per job
    as the parent hands them out (an empty line or end of input: no more work); on stdout one
    JSON line per result."""
    spec = json.loads(sys.stdin.readline())

    def jobs():
        for line in sys.stdin:
            if not line.strip():
                return
            yield json.loads(line)
    # Results travel on the original stdout; fd 1 itself now points at the log, so whatever
    # the kernels (and the learners' code) print can never be mistaken for a result.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    def emit(record: dict) -> None:
        out.write(RESULT_MARK + json.dumps(record) + "\n")
        out.flush()

    grade_batch(spec["cohort"], jobs(), Limits(**spec["limits"]), spec["sandbox"], emit)
    return 0


# ------------------------------------------------------------------ the parent process

class Progress:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.done, self.enabled = total, 0, enabled and total > 0
        self.started = time.perf_counter()
        self.tty = sys.stderr.isatty()
        self._last_line = -1.0

    def step(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.started
        rate = self.done / elapsed if elapsed else 0.0
        eta = (self.total - self.done) / rate if rate else 0.0
        width = 30
        filled = int(width * self.done / self.total)
        line = (f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                f"{rate:.1f}/s, {eta:.0f}s left  {label}")
        if self.tty:
            sys.stderr.write("\r" + line[:120].ljust(120))
            if self.done == self.total:
                sys.stderr.write("\n")
        elif self.done == self.total or elapsed - self._last_line >= 5:
            sys.stderr.write(line + "\n")
            self._last_line = elapsed
        sys.stderr.flush()


def _run_workers(cohort: Cohort, jobs: list[Job], workers: int, limits: Limits,
                 sandbox: bool, progress: Progress) -> list[dict]:
    """Hand the jobs out one at a time to whichever worker is free (a slow or stuck submission
    holds up one worker, not a fixed share of the cohort); collect one result per job."""
    pending = collections.deque({"learner": job.learner, "assignment": job.assignment}
                                for job in jobs)
    lock = threading.Lock()
    logs = cohort.root / "logs"
    logs.mkdir(exist_ok=True)
    results: queue.Queue = queue.Queue()
    spec = {"cohort": str(cohort.root), "limits": vars(limits), "sandbox": sandbox}

    def hand_out(process: subprocess.Popen) -> None:
        """Give this worker the next job, or tell it there is none left."""
        with lock:
            job = pending.popleft() if pending else None
            try:
                process.stdin.write((json.dumps(job) if job else "") + "\n")
                process.stdin.flush()
                if job is None:
                    process.stdin.close()
            except (BrokenPipeError, ValueError):   # the worker is gone: another takes it
                if job is not None:
                    pending.appendleft(job)

    processes = []
    for number in range(min(workers, len(jobs))):
        log = open(logs / f"autograde-worker{number}.log", "w")
        process = subprocess.Popen(
            [sys.executable, "-c", "import sys; from mlcourse.cohort.grader import "
             "worker_main; sys.exit(worker_main())"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
            cwd=cohort.root)
        process.stdin.write(json.dumps(spec) + "\n")
        hand_out(process)

        def pump(process=process):
            for line in process.stdout:
                if line.startswith(RESULT_MARK):
                    results.put(json.loads(line[len(RESULT_MARK):]))
                    hand_out(process)
        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        processes.append((process, thread, log))
    collected = []
    while len(collected) < len(jobs):
        try:
            record = results.get(timeout=1)
        except queue.Empty:
            if all(p.poll() is not None for p, _, _ in processes) and results.empty():
                break
            continue
        collected.append(record)
        progress.step(f"{record['learner']}/{record['assignment']}")
    for process, thread, log in processes:
        process.wait()
        thread.join(timeout=5)
        log.close()
    # Every worker died (or one died mid-submission): what was not graded is reported,
    # never dropped.
    done = {(r["learner"], r["assignment"]) for r in collected}
    for job in jobs:
        if (job.learner, job.assignment) not in done:
            collected.append({"learner": job.learner, "assignment": job.assignment,
                              "success": False, "detail": "the grading worker died; see "
                              "logs/autograde-worker*.log"})
            progress.step(f"{job.learner}/{job.assignment}")
    return collected


def _status_from_result(cohort: Cohort, record: dict) -> SubmissionStatus:
    learner, assignment = record["learner"], record["assignment"]
    if not record["success"]:
        return SubmissionStatus(learner, assignment, record.get("status", "crashed"),
                                record["detail"], now())
    with grading.quiet_logging(), cohort.gradebook() as gradebook:
        submission = gradebook.find_submission(assignment, learner)
        score, max_score = float(submission.score), float(submission.max_score)
        manual = bool(submission.needs_manual_grade)
        late_hours = float(submission.total_seconds_late or 0) / 3600
    hint, detail = record["hint"], record["detail"]
    if late_hours > 0:
        detail += f"; submitted {late_hours:.1f} h after the due date"
    if hint in ("timeout", "crashed"):
        kind = hint
    else:
        kind = "needs-manual-grading" if manual else "graded"
        if manual:
            detail += "; written answers to grade in formgrader"
    return SubmissionStatus(learner, assignment, kind, detail, now(), score, max_score)


def _record_progress(cohort: Cohort, statuses: dict[tuple[str, str], SubmissionStatus],
                     assignments: list[str]) -> None:
    """Append this run's outcome to the cohort's progress store: one row per graded task, or
    one row for a submission that could not be run."""
    from nbgrader.api import MissingEntry

    from .. import progress

    teams = {learner.id: learner.team for learner in cohort.roster()}
    kinds, skills = {}, {}
    for assignment in assignments:
        source = grading.read_notebook(cohort.root / "source" / assignment /
                                       f"{assignment}.ipynb")
        skills[assignment] = progress.task_skills(source, assignment)
        kinds[assignment] = {gid: "manual" if grading.nbgrader_meta(c).get("solution")
                             else "autograded" for gid, c in grading.graded_cells(source).items()}
    rows = []
    with grading.quiet_logging(), cohort.gradebook() as gradebook:
        for (learner, assignment), status in statuses.items():
            when = progress.utcnow()
            graded = status.status in KEEPS_GRADE
            submission = None
            try:
                submission = gradebook.find_submission(assignment, learner)
                if submission.timestamp:   # when the learner submitted, not when we graded
                    when = submission.timestamp.replace(tzinfo=None)
            except MissingEntry:
                pass
            common = dict(learner=learner, team=teams.get(learner, ""), assignment=assignment,
                          attempted_at=when, source="cohort", submission_status=status.status)
            if not graded or submission is None:
                rows.append(progress.Attempt(
                    task=progress.NOTEBOOK_TASK, skill=progress.MODULE_SKILLS.get(
                        assignment, assignment), kind="notebook", score=0.0, max_score=0.0,
                    status=status.status, **common))
                continue
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    kind = kinds[assignment].get(grade.name, "autograded")
                    if kind == "manual":
                        task_status = ("needs-manual-grading" if grade.needs_manual_grade
                                       else "graded")
                    else:
                        task_status = ("passed" if (grade.score or 0) >= grade.max_score
                                       else "failed")
                        if status.status == "timeout" and task_status == "failed":
                            task_status = "timeout"
                    rows.append(progress.Attempt(
                        task=grade.name, skill=skills[assignment].get(grade.name, "?"),
                        kind=kind, score=float(grade.score or 0),
                        max_score=float(grade.max_score), status=task_status, **common))
    store = progress.ProgressStore(progress.default_url(cohort.root))
    store.record(rows)
    store.dispose()


def _keep_previous(previous: SubmissionStatus | None, new: SubmissionStatus) -> SubmissionStatus:
    """A failed regrade never replaces a grade: keep the old one and say why."""
    if previous is None or previous.status not in KEEPS_GRADE or new.status in KEEPS_GRADE:
        return new
    previous.detail = (f"regrade on {new.graded_at} failed ({new.status}: {new.detail}); "
                       f"grade from {previous.graded_at} kept")
    return previous


def autograde(cohort_dir: Path, assignments: list[str], workers: int | None = None,
              timeout: int = 60, memory_mb: int = 2048, sandbox: bool = True,
              out: Callable[[str], None] = print, show_progress: bool = True,
              limits: Limits | None = None) -> list[SubmissionStatus]:
    """Autograde every learner of the roster on each assignment; return their statuses.

    ``limits`` bounds what each submission may use (see :class:`~.sandbox.Limits`); without
    it, the defaults with ``timeout`` and ``memory_mb``.
    """
    limits = limits or Limits(timeout=timeout, memory_mb=memory_mb)
    cohort = Cohort(cohort_dir)
    if not assignments:
        raise CohortError("name at least one assignment to autograde")
    for assignment in assignments:
        cohort.check_assignment(assignment, released=True)
    if sandbox:
        from .sandbox import bwrap_path
        bwrap_path()                      # fail early and clearly if bubblewrap is missing
    workers = max(1, workers or os.cpu_count() or 1)
    previous = cohort.statuses()
    statuses: dict[tuple[str, str], SubmissionStatus] = {}
    jobs = []
    for assignment in assignments:
        released = cohort.released_notebook(assignment)
        for learner in cohort.roster():
            verdict = precheck(cohort, learner.id, assignment, released, limits)
            if verdict is None:
                jobs.append(Job(learner.id, assignment))
            else:
                statuses[(learner.id, assignment)] = verdict
    out(f"autograding {len(jobs)} submission(s) with {min(workers, max(len(jobs), 1))} "
        f"worker(s); {len(statuses)} not runnable (missing, malformed or tampered)")
    progress = Progress(len(jobs), enabled=show_progress)
    for record in _run_workers(cohort, jobs, workers, limits, sandbox, progress):
        statuses[(record["learner"], record["assignment"])] = \
            _status_from_result(cohort, record)
    _record_progress(cohort, statuses, assignments)
    final = {key: _keep_previous(previous.get(key), status) for key, status in statuses.items()}
    merged = dict(previous)
    merged.update(final)
    cohort.save_statuses(merged)
    counts: dict[str, int] = {}
    for status in final.values():
        counts[status.status] = counts.get(status.status, 0) + 1
    out("statuses: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return [final[key] for key in sorted(final)]
