"""The command line of the throwaway servers segflow starts on this machine (local_postgres,
local_spark_connect): `python -m MODULE start|stop FOLDER`, start printing the warehouse URL."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from transforms.errors import SegflowError


def command_line(
    argv: list[str], module: str, start: Callable[[Path], str], stop: Callable[[Path], None]
) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print(f"usage: python -m {module} start|stop FOLDER", file=sys.stderr)
        return 2
    try:
        if argv[0] == "start":
            print(start(Path(argv[1])))
        else:
            stop(Path(argv[1]))
    except SegflowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
