"""A throwaway PostgreSQL server in a folder: `make demo-postgres` and the tests start one.

initdb into `<folder>/data`, listening on 127.0.0.1 only (a free port) and on a unix socket in the
folder; started and stopped with pg_ctl. initdb refuses to run as root, so as root the server runs
as the `postgres` system user (the one Debian's package creates), which then owns the folder.

    python -m transforms.engines.local_postgres start FOLDER   # prints the warehouse URL
    python -m transforms.engines.local_postgres stop FOLDER
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import psycopg

from transforms.engines.local_server import command_line
from transforms.errors import SegflowError

DATABASE = "segflow"
USER = "segflow"
# The demo server keeps what it holds on a folder of the project: durability on power loss buys
# nothing there.
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "50",
    "shared_buffers": "256MB",
    "work_mem": "64MB",
    "max_parallel_workers_per_gather": "2",
    "maintenance_work_mem": "256MB",
    "max_wal_size": "4GB",
}


def binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        raise SegflowError(f"{name} not found: install PostgreSQL 15+ (apt-get install postgresql)")
    return found


def _run_as_owner(args: list[str], folder: Path) -> subprocess.CompletedProcess:
    """Run a PostgreSQL binary as a user it accepts: as root, the postgres system user."""
    if os.geteuid() != 0:
        return subprocess.run(args, capture_output=True, text=True)
    owner = pwd.getpwnam("postgres")

    def become_postgres() -> None:
        os.setgid(owner.pw_gid)
        os.setuid(owner.pw_uid)

    return subprocess.run(args, capture_output=True, text=True, preexec_fn=become_postgres, cwd="/")


def _free_port(folder: Path) -> int:
    """The port this folder's server had before when it is free (its URL stays the same), else any."""
    earlier = folder / "port"
    wanted = int(earlier.read_text()) if earlier.exists() else 0
    with socket.socket() as probe:
        # As the server binds it: a port its last run left in TIME_WAIT is free to it.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", wanted))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def url(folder: Path) -> str:
    port = (folder / "port").read_text().strip()
    return f"postgresql+psycopg://{USER}@127.0.0.1:{port}/{DATABASE}"


def start(folder: Path, server_settings: dict | None = None) -> str:
    """Start the server in `folder` (creating it on first use) and return its warehouse URL.
    `server_settings` add to or override SERVER_SETTINGS (the benchmark tunes memory)."""
    folder = folder.resolve()
    data = folder / "data"
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, owner.pw_uid, owner.pw_gid)
        blocked = next((p for p in folder.parents if not os.stat(p).st_mode & 0o001), None)
        if blocked:
            raise SegflowError(
                f"{folder}: the server runs as user postgres (initdb refuses root), who cannot enter "
                f"{blocked}; use a folder outside it"
            )
    if not (data / "PG_VERSION").exists():
        done = _run_as_owner(
            [
                binary("initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            folder,
        )
        if done.returncode:
            raise SegflowError(f"initdb {data} failed: {done.stderr.strip().splitlines()[-1]}")
    if (data / "postmaster.pid").exists() and (folder / "port").exists():
        status = _run_as_owner([binary("pg_ctl"), "-D", str(data), "status"], folder)
        if status.returncode == 0:
            return url(folder)
    port = _free_port(folder)
    chosen = {**SERVER_SETTINGS, **(server_settings or {})}
    options = " ".join(f"-c {key}={value}" for key, value in chosen.items())
    options += f" -p {port} -k {folder}"
    done = _run_as_owner(
        [binary("pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w", "-o", options, "start"],
        folder,
    )
    if done.returncode:
        log = (folder / "server.log").read_text(errors="replace").strip().splitlines()[-1:]
        raise SegflowError(f"pg_ctl start {data} failed: {(log or [done.stderr.strip()])[0]}")
    (folder / "port").write_text(str(port))
    create_database(folder, DATABASE)
    return url(folder)


def create_database(folder: Path, name: str, copy_of: str | None = None) -> None:
    """A database of that name on the folder's server, unless it has one; `copy_of` copies another
    database file by file (its sessions are ended first: PostgreSQL copies only an unused one)."""
    port = int((folder.resolve() / "port").read_text())
    with psycopg.connect(host="127.0.0.1", port=port, user=USER, dbname="postgres", autocommit=True) as con:
        if con.execute("select 1 from pg_database where datname = %s", [name]).fetchone():
            return
        if copy_of:
            con.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s", [copy_of]
            )
            con.execute(f'create database "{name}" template "{copy_of}"')
        else:
            con.execute(f'create database "{name}"')


def stop(folder: Path) -> None:
    data = folder.resolve() / "data"
    if (data / "postmaster.pid").exists():
        _run_as_owner([binary("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], folder)


def main(argv: list[str]) -> int:
    return command_line(argv, "transforms.engines.local_postgres", start, stop)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
