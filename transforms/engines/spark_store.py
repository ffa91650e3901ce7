"""The files of a Spark warehouse: table versions as Parquet folders written once, and the two
catalog files that name the current ones (see spark.py)."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path


class SparkSQLError(Exception):
    """A statement Spark (or this engine, for the catalog it keeps) could not run."""


class MissingTable(SparkSQLError):
    pass


class Store:
    """The folders and the two catalog files under the warehouse root."""

    def __init__(self, root: Path):
        self.root = root
        self.catalog_dir = root / "catalog"

    def read(self, name: str) -> dict:
        try:
            with open(self.catalog_dir / f"{name}.json", encoding="utf-8") as handle:
                return json.load(handle)
        except FileNotFoundError:
            return {"tables": {}}

    def write(self, name: str, catalog: dict) -> None:
        self.replace_file(f"{name}.json", json.dumps(catalog, ensure_ascii=False, sort_keys=True))

    def replace_file(self, name: str, text: str) -> None:
        """A file of the catalog folder replaced whole: a reader sees the old one or the new one."""
        self.catalog_dir.mkdir(parents=True, exist_ok=True)
        partial = self.catalog_dir / f".{name}.{os.getpid()}.partial"
        with open(partial, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, self.catalog_dir / name)
        directory = os.open(self.catalog_dir, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def new_folder(self, schema: str, table: str) -> str:
        """A fresh folder (relative to the root) for one version or segment of a table."""
        return f"tables/{schema}/{table}/{time.time_ns()}-{uuid.uuid4().hex[:8]}"

    def path(self, folder: str) -> str:
        return str(self.root / folder)

    def collect_garbage(self, keep_seconds: float) -> None:
        """Delete the folders neither catalog names, once replaced for keep_seconds (a reader that
        read the catalog before may still be reading them)."""
        named = {
            segment["path"]
            for name in ("work", "published")
            for entry in self.read(name)["tables"].values()
            for segment in entry.get("segments", [])
        }
        cutoff = time.time() - keep_seconds
        for folder in sorted((self.root / "tables").glob("*/*/*")):
            relative = folder.relative_to(self.root).as_posix()
            if relative not in named and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        # Temp tables of sessions whose process is gone (killed; a session removes its own).
        for folder in sorted(self.scratch_dir.glob("*-*")):
            if not _alive(int(folder.name.split("-", 1)[0])):
                shutil.rmtree(folder, ignore_errors=True)

    @property
    def scratch_dir(self) -> Path:
        return self.root / ".spark" / "scratch"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def struct(schema_json: str):
    from pyspark.sql.types import StructType

    return StructType.fromJson(json.loads(schema_json))
