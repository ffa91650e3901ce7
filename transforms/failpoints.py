"""Named places where a fault test can kill the process mid-write (SEGFLOW_FAILPOINT=<name>).

Killing at a failpoint is what a scheduler's SIGKILL or an OOM would do at that moment; the
tests use it to prove that a retry loses and duplicates nothing and readers are never hurt.
"""

import os


def failpoint(name: str) -> None:
    if os.environ.get("SEGFLOW_FAILPOINT") == name:
        os._exit(137)
