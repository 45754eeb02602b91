"""The first program inside the sandbox: set up the submission's folder, set the limits, start
the kernel.

Run by bubblewrap as ``python launcher.py SRC DEST AS_BYTES FSIZE_BYTES -- KERNEL COMMAND...``:

- copies the submission's files from SRC (the host's autograded folder, mounted read-only) into
  DEST, a size-bounded tmpfs at the same path the grader uses, so what the learner's code writes
  counts against that bound and never reaches the host's disk (nothing is left behind);
- sets RLIMIT_AS (memory), RLIMIT_FSIZE (the largest file a process may write) and no core
  dumps, then replaces itself with the kernel.

Only the standard library: this file is run by path, before anything of the course is imported.
"""

from __future__ import annotations

import os
import resource
import shutil
import sys


def main(argv: list[str]) -> int:
    if "--" not in argv or argv.index("--") != 4:
        print("usage: launcher.py SRC DEST AS_BYTES FSIZE_BYTES -- COMMAND...", file=sys.stderr)
        return 2
    source, dest, address_space, file_size = argv[0], argv[1], int(argv[2]), int(argv[3])
    command = argv[5:]
    for entry in os.scandir(source):
        target = os.path.join(dest, entry.name)
        # The grader refused symlinks before grading; never follow one here either.
        if entry.is_dir(follow_symlinks=False):
            shutil.copytree(entry.path, target, symlinks=True)
        elif entry.is_file(follow_symlinks=False):
            shutil.copy2(entry.path, target)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    os.chdir(dest)
    os.execvp(command[0], command)
    return 1   # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
