"""Run a learner's kernel in a sandbox: a jupyter_client KernelManager that wraps the kernel
command in bubblewrap and prlimit.

What the learner's code gets:
- a read-only view of the machine, with the cohort directory, the course's solutions and /tmp
  replaced by empty tmpfs mounts, and only its own autograded folder (read-write) and the
  kernel's IPC folder mounted back: no solutions, source/, hidden tests, gradebook or other
  learners' work;
- no network at all (own network namespace: the host's loopback is unreachable); the kernel
  talks to the grader over unix sockets (IPC transport), which cross the namespace;
- its own PID namespace, so every process it starts dies with the kernel;
- uid 65534 (nobody) in a user namespace with every capability dropped;
- an address-space limit (RLIMIT_AS) of ``memory_mb``: allocations past it raise MemoryError.

bubblewrap comes from Debian (`apt-get install bubblewrap`); `make test` installs it.
"""

from __future__ import annotations

import os
import shutil
import uuid

from jupyter_client.manager import AsyncKernelManager
from traitlets import Integer, List, Unicode

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
                    memory_mb: int, readonly: list[str] = ()) -> list[str]:
    """The bwrap + prlimit command line around a kernel command.

    ``readonly`` folders are mounted back read-only after /tmp and the hidden folders are
    emptied: the Python environment and the course's package and data may live under /tmp
    (a fresh clone in CI, say) and the kernel needs them.
    """
    wrapped = [bwrap_path(), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
               "--tmpfs", "/tmp"]
    hidden = [path for path in hidden if path and os.path.isdir(path)]
    for path in hidden:                      # an empty folder in place of the real one...
        wrapped += ["--tmpfs", path]
    for path in readonly:
        if path and os.path.exists(path):
            wrapped += ["--ro-bind", path, path]
    wrapped += ["--bind", workdir, workdir, "--bind", ipc_dir, ipc_dir]
    for path in hidden:                      # ...made read-only once the binds are in place
        wrapped += ["--remount-ro", path]
    wrapped += [
        "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534",
        "--cap-drop", "ALL", "--die-with-parent", "--new-session",
        # Scratch state (IPython history, matplotlib cache) goes to the IPC folder, which the
        # grader empties between learners, not into the graded folder.
        "--setenv", "HOME", f"{ipc_dir}/home",
        "--setenv", "IPYTHONDIR", f"{ipc_dir}/home/.ipython",
        "--setenv", "MPLCONFIGDIR", f"{ipc_dir}/home/.matplotlib",
        "--setenv", "TMPDIR", "/tmp",
        # ipykernel polls the PID in JPY_PARENT_PID and exits when its parent is not that PID;
        # in a PID namespace it never is. --die-with-parent does that job instead.
        "--unsetenv", "JPY_PARENT_PID",
        "--chdir", workdir, "--"]
    limits = [shutil.which("prlimit") or "prlimit", f"--as={memory_mb * 1024 * 1024}",
              "--core=0", "--"]
    return wrapped + limits + list(command)


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels run in the sandbox described in this module."""

    memory_mb = Integer(2048, help="address-space limit of the kernel, MiB").tag(config=True)
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
        os.makedirs(os.path.join(ipc_dir, "home"), exist_ok=True)
        return sandbox_command(command, workdir, ipc_dir, list(self.hidden_paths),
                               self.memory_mb, list(self.readonly_paths))
