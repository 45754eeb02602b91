"""Run a learner's kernel in a sandbox: a jupyter_client KernelManager that wraps the kernel
command in bubblewrap, a pids cgroup and the launcher of :mod:`mlcourse.cohort.launcher`.

What the learner's code gets, and every limit it runs into (each one a flag of
`mlcourse cohort autograde`, see :class:`Limits`):
- a read-only view of the machine, with the cohort directory, the course's solutions and /tmp
  replaced by empty tmpfs mounts: no solutions, source/, hidden tests, gradebook or other
  learners' work;
- its own folder as a private copy on a tmpfs of ``disk_mb`` at the grader's path, so what it
  writes never reaches the host's disk and nothing is left behind; /tmp is a tmpfs of
  ``scratch_mb`` (bounded tmpfs pages are the only memory a sandbox uses outside RLIMIT_AS);
- no file larger than ``file_mb`` (RLIMIT_FSIZE; Python then raises "File too large");
- at most ``processes`` processes and threads, through a pids cgroup where the machine lets the
  grader create one (cgroup v1 or v2); RLIMIT_NPROC cannot do this job, it counts every process
  of the user across the machine and does not apply to root at all;
- an address-space limit (RLIMIT_AS) of ``memory_mb``: allocations past it raise MemoryError;
- no network at all (own network namespace: the host's loopback is unreachable); the kernel
  talks to the grader over unix sockets (IPC transport), which cross the namespace;
- its own PID namespace, so every process it starts dies with the kernel;
- uid 65534 (nobody) in a user namespace with every capability dropped.

bubblewrap comes from Debian (`apt-get install bubblewrap`); `make test` installs it.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import uuid
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import Integer, List, Unicode

from .limits import MiB, Limits

WORKDIR_ENV = "MLCOURSE_SANDBOX_WORKDIR"


class SandboxUnavailable(RuntimeError):
    pass


def bwrap_path() -> str:
    path = shutil.which("bwrap")
    if not path:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed: "
                                 "apt-get install -y bubblewrap")
    return path


def sandbox_command(command: list[str], workdir: str, ipc_dir: str, hidden: list[str],
                    limits: Limits, readonly: list[str] = (), cgroup: str | None = None
                    ) -> list[str]:
    """The command line around a kernel command: join the pids cgroup (when there is one),
    then bwrap, then the launcher that copies the submission and sets the rlimits.

    ``readonly`` folders are mounted back read-only after /tmp and the hidden folders are
    emptied: the Python environment and the course's package and data may live under /tmp
    (a fresh clone in CI, say) and the kernel needs them.
    """
    submission_copy = "/tmp/.mlcourse-submission"
    wrapped = [bwrap_path(), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
               "--size", str(limits.scratch_mb * MiB), "--tmpfs", "/tmp"]
    hidden = [path for path in hidden if path and os.path.isdir(path)]
    for path in hidden:                      # an empty folder in place of the real one...
        wrapped += ["--tmpfs", path]
    for path in readonly:
        if path and os.path.exists(path):
            wrapped += ["--ro-bind", path, path]
    for secret in ("/etc/shadow", "/etc/gshadow"):   # uid 65534 maps to the grader's uid
        if os.path.exists(secret):
            wrapped += ["--ro-bind", "/dev/null", secret]
    # The submission's folder: the host's copy read-only beside /tmp, and at its own path a
    # bounded tmpfs the launcher fills from it.
    wrapped += ["--ro-bind", workdir, submission_copy,
                "--size", str(limits.disk_mb * MiB), "--tmpfs", workdir,
                "--bind", ipc_dir, ipc_dir]
    for path in hidden:                      # ...made read-only once the binds are in place
        wrapped += ["--remount-ro", path]
    wrapped += [
        "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534",
        "--cap-drop", "ALL", "--die-with-parent", "--new-session",
        # Nothing of the grader's environment (tokens, database URLs) reaches the kernel.
        "--clearenv",
        "--setenv", "PATH", os.pathsep.join(
            [os.path.dirname(command[0]) if os.path.isabs(command[0]) else "",
             "/usr/local/bin", "/usr/bin", "/bin"]).lstrip(os.pathsep),
        "--setenv", "LANG", "C.UTF-8",
        # One BLAS / OpenMP thread per kernel: graders run side by side, and a many-core host
        # must not turn one honest fit into hundreds of threads against the process limit.
        *[arg for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                           "LOKY_MAX_CPU_COUNT")
          for arg in ("--setenv", name, "1")],
        *[arg for name in ("MLCOURSE_DATASETS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
          if os.environ.get(name) for arg in ("--setenv", name, os.environ[name])],
        # Scratch state (IPython history, matplotlib cache) goes to the bounded /tmp.
        "--setenv", "HOME", "/tmp/home",
        "--setenv", "IPYTHONDIR", "/tmp/home/.ipython",
        "--setenv", "MPLCONFIGDIR", "/tmp/home/.matplotlib",
        "--setenv", "TMPDIR", "/tmp",
        # (JPY_PARENT_PID is not passed: ipykernel would poll it and exit, since in a PID
        # namespace its parent never has that PID; --die-with-parent does that job instead.)
        "--chdir", workdir, "--"]
    launcher = [command[0] if os.path.isabs(command[0]) else shutil.which(command[0])
                or command[0], str(Path(__file__).with_name("launcher.py")),
                submission_copy, workdir, str(limits.memory_mb * MiB),
                str(limits.file_mb * MiB), "--"]
    joined = wrapped + launcher + list(command)
    if cgroup:
        # The shell writes its own pid into the cgroup, then becomes bwrap: everything the
        # kernel starts is counted from the first process on.
        joined = ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup] + joined
    return joined


# ------------------------------------------------------------------ the process limit

class PidsCgroups:
    """A pids cgroup per kernel, under one parent per grading worker.

    ``PidsCgroups.create()`` returns None (and ``why`` says why) where the machine does not let
    this process create cgroups; the grader then says that processes are not limited.
    """

    why = ""

    def __init__(self, parent: Path, limit: int):
        self.parent, self.limit = parent, limit

    @classmethod
    def create(cls, limit: int) -> PidsCgroups | None:
        own = cls._own_path()
        for base in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
            if base == Path("/sys/fs/cgroup") and not (base / "cgroup.controllers").exists():
                continue                  # not a cgroup v2 mount
            if base.name == "pids" and not (base / "cgroup.procs").exists():
                continue
            where = own.get("pids" if base.name == "pids" else "", "/").lstrip("/")
            cls._remove_stale(base / where)
            parent = base / where / f"mlcourse-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            try:
                parent.mkdir()
                if base.name != "pids":   # v2: the pids controller must reach the children
                    (parent / "cgroup.subtree_control").write_text("+pids")
                probe = parent / "probe"
                probe.mkdir()
                ok = (probe / "pids.max").exists()
                probe.rmdir()
                if ok:
                    return cls(parent, limit)
                parent.rmdir()
            except OSError as error:
                cls.why = f"cannot create a pids cgroup under {base}: {error.strerror}"
                try:
                    parent.rmdir()
                except OSError:
                    pass
        cls.why = cls.why or "no pids cgroup controller on this machine"
        return None

    @staticmethod
    def _remove_stale(folder: Path) -> None:
        """Remove the cgroups of grading workers that are gone (killed before cleaning up)."""
        try:
            candidates = list(folder.glob("mlcourse-*-*"))
        except OSError:
            return
        for parent in candidates:
            try:
                os.kill(int(parent.name.split("-")[1]), 0)
                continue                     # that worker is still running
            except ProcessLookupError:
                pass
            except (ValueError, PermissionError):
                continue
            for child in [p for p in parent.iterdir() if p.is_dir()]:
                _kill_all(child)
            try:
                parent.rmdir()
            except OSError:
                pass

    @staticmethod
    def _own_path() -> dict[str, str]:
        paths = {}
        try:
            for line in Path("/proc/self/cgroup").read_text().splitlines():
                _, controllers, path = line.split(":", 2)
                for name in controllers.split(",") if controllers else [""]:
                    paths[name] = path
        except OSError:
            pass
        return paths

    def new(self) -> str:
        child = self.parent / f"kernel-{uuid.uuid4().hex[:12]}"
        child.mkdir()
        (child / "pids.max").write_text(str(self.limit))
        return str(child)

    def sweep(self) -> int:
        """Kill whatever is left in every kernel's cgroup, remove them; return how many forks
        were refused at the limit (0: the limit was never hit)."""
        refused = 0
        for child in [p for p in self.parent.iterdir() if p.is_dir()]:
            try:
                for line in (child / "pids.events").read_text().splitlines():
                    name, _, count = line.partition(" ")
                    if name == "max":
                        refused += int(count)
            except (OSError, ValueError):
                pass
            _kill_all(child)
        return refused

    def remove(self) -> None:
        self.sweep()
        try:
            self.parent.rmdir()
        except OSError:
            pass


def _kill_all(cgroup: Path) -> None:
    # Until the cgroup is empty: on a loaded machine a few hundred processes (a fork bomb held at
    # the pids limit) take more than a few seconds to die and be reaped.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            pids = [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]
        except OSError:
            return
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    try:
        cgroup.rmdir()
    except OSError:
        pass


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels run in the sandbox described in this module."""

    memory_mb = Integer(2048, help="address-space limit of the kernel, MiB").tag(config=True)
    scratch_mb = Integer(256, help="size of /tmp in the sandbox, MiB").tag(config=True)
    disk_mb = Integer(256, help="size of the submission's folder while it runs, MiB"
                      ).tag(config=True)
    file_mb = Integer(64, help="largest file the code may write, MiB").tag(config=True)
    cgroup_parent = Unicode("", help="pids cgroup parent folder (empty: no process limit)"
                            ).tag(config=True)
    processes = Integer(256, help="processes and threads per kernel").tag(config=True)
    hidden_paths = List(Unicode(), help="folders replaced by empty tmpfs").tag(config=True)
    ipc_dir = Unicode("", help="folder holding connection files and IPC sockets"
                      ).tag(config=True)
    readonly_paths = List(Unicode(), help="folders the kernel needs, mounted back read-only"
                          ).tag(config=True)

    async def _async_pre_start_kernel(self, **kw):
        # The connection file must be inside the IPC folder, the only folder the sandbox
        # shares with the grader (the default is a temporary file under the hidden /tmp).
        if self.ipc_dir:
            self.connection_file = os.path.join(self.ipc_dir, f"kernel-{uuid.uuid4()}.json")
        # A SIGINT sent to bwrap never reaches the kernel inside its PID namespace; an
        # interrupt_request message does (the kernel then signals itself).
        self.kernel_spec.interrupt_mode = "message"
        return await super()._async_pre_start_kernel(**kw)

    def format_kernel_cmd(self, extra_arguments=None):
        command = super().format_kernel_cmd(extra_arguments)
        workdir = os.environ.get(WORKDIR_ENV)
        if not workdir or not os.path.isdir(workdir):
            raise SandboxUnavailable(f"{WORKDIR_ENV} must name the submission's folder")
        ipc_dir = self.ipc_dir or os.path.dirname(self.connection_file)
        limits = Limits(memory_mb=self.memory_mb, scratch_mb=self.scratch_mb,
                        disk_mb=self.disk_mb, file_mb=self.file_mb,
                        processes=self.processes)
        cgroup = None
        if self.cgroup_parent:
            cgroup = PidsCgroups(Path(self.cgroup_parent), self.processes).new()
        return sandbox_command(command, workdir, ipc_dir, list(self.hidden_paths), limits,
                               list(self.readonly_paths), cgroup=cgroup)
