"""What one submission may use while it is graded (light to import: the CLI reads the
defaults for its flags from here)."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass
class Limits:
    """What one submission may use while it is graded; each has a flag of the same name."""

    timeout: int = 60          # seconds per cell
    memory_mb: int = 2048      # address space of the kernel (RLIMIT_AS)
    scratch_mb: int = 256      # /tmp inside the sandbox (a bounded tmpfs)
    disk_mb: int = 256         # the submission's own folder while it runs (a bounded tmpfs)
    file_mb: int = 64          # the largest file the learner's code may write (RLIMIT_FSIZE)
    processes: int = 256       # processes and threads (pids cgroup; BLAS pools count)
    notebook_mb: int = 20      # the largest submitted notebook (and submission folder)
    output_kb: int = 1024      # output kept per cell; the rest is cut with a note

    def __post_init__(self):
        for name, value in vars(self).items():
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"limit {name} must be a positive whole number, not {value!r}")
