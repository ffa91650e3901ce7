"""A Spark Connect server on this machine, from the pinned pyspark: `make spark-connect-up` and the
tests start one to try `sc://` without a cluster.

The server is the wheel's own (spark-submit of SparkConnectServer, Java 17), `local[2]` unless
SPARK_CONNECT_MASTER says otherwise, listening on 127.0.0.1 only (a free port); its pid, port and log
are kept in the folder.

    python -m transforms.engines.local_spark_connect start FOLDER   # prints the warehouse URL
    python -m transforms.engines.local_spark_connect stop FOLDER
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from transforms.engines.local_server import command_line
from transforms.errors import SegflowError

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
LOG_CONFIG = Path(__file__).with_name("spark_log4j2.properties")
START_SECONDS = 180


def spark_home() -> Path:
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise SegflowError("pyspark is not installed: run `make install`")
    return Path(spec.origin).parent


def url(folder: Path) -> str:
    return f"sc://127.0.0.1:{(folder / 'port').read_text().strip()}"


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _running_pid(folder: Path) -> int | None:
    try:
        pid = int((folder / "pid").read_text())
        with contextlib.suppress(ChildProcessError):  # reaped when this process started it
            os.waitpid(pid, os.WNOHANG)
        os.kill(pid, 0)
        return pid
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(folder: Path, driver_memory: str = "2g") -> str:
    """Start the server of `folder` unless it runs, wait until it listens; return its warehouse URL."""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    if _running_pid(folder) and (folder / "port").exists():
        return url(folder)
    home = spark_home()
    port = _free_port()
    java_options = f"-Dlog4j2.configurationFile={LOG_CONFIG} -Dderby.system.home={folder}"
    command = [
        str(home / "bin" / "spark-submit"),
        "--class",
        SERVER_CLASS,
        "--master",
        os.environ.get("SPARK_CONNECT_MASTER", "local[2]"),
        "--driver-memory",
        driver_memory,
        "--driver-java-options",
        java_options,
        "--conf",
        "spark.connect.grpc.binding.address=127.0.0.1",
        "--conf",
        f"spark.connect.grpc.binding.port={port}",
        "--conf",
        "spark.ui.enabled=false",
        "--conf",
        "spark.sql.catalogImplementation=in-memory",
        "--conf",
        f"spark.local.dir={folder / 'tmp'}",
        "--conf",
        f"spark.sql.warehouse.dir={folder / 'warehouse'}",
        "spark-internal",
    ]
    log = open(folder / "server.log", "ab")  # noqa: SIM115 (the server's, closed here once started)
    with log:
        server = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "SPARK_HOME": str(home)},
            cwd=folder,
            start_new_session=True,  # not stopped by the Ctrl-C of the shell that started it
        )
    (folder / "pid").write_text(str(server.pid))
    (folder / "port").write_text(str(port))
    deadline = time.monotonic() + START_SECONDS
    while not _listening(port):
        if server.poll() is not None or time.monotonic() > deadline:
            stop(folder)
            tail = (folder / "server.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise SegflowError(
                f"the Spark Connect server in {folder} did not start ({(tail or ['no output'])[0]}); "
                f"see {folder / 'server.log'}"
            )
        time.sleep(0.5)
    return url(folder)


def stop(folder: Path) -> None:
    folder = folder.resolve()
    pid = _running_pid(folder)
    if pid is None:
        return
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while _running_pid(folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _running_pid(folder):
        os.killpg(pid, signal.SIGKILL)
    (folder / "pid").unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    return command_line(argv, "transforms.engines.local_spark_connect", start, stop)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
