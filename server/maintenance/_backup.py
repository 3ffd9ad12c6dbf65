"""Backups: a consistent copy of the SQLite ledger, taken while a server runs, and its restore.

Only the ledger is copied: it is the source of truth, and LanceDB and the graph are derived from
it, so ``restore`` rebuilds them (``AsyncMemory.reindex``) instead of copying indexes that could
be caught mid-write.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memorch.config import MemoryConfig, package_version
from memorch.errors import StorageError, ValidationError
from memorch.storage.in_use import held_alone
from memorch.storage.ledger import Ledger

LEDGER = "memorch.db"
MANIFEST = "backup.json"


def _counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        memories = conn.execute("SELECT count(*) FROM memories").fetchone()[0]
        history = conn.execute("SELECT count(*) FROM history").fetchone()[0]
    except sqlite3.Error as exc:
        raise StorageError(
            f"{path} is not a memorch ledger ({exc})",
            error_code="BACKUP_INVALID",
            suggestion="restore from a directory written by `memorch backup`",
        ) from exc
    finally:
        conn.close()
    return {"memories": memories, "history_events": history}


def backup(ledger: Ledger, dest: Path) -> dict[str, Any]:
    """Write ``dest/memorch.db`` (a snapshot of ``ledger``) and ``dest/backup.json``."""
    dest = Path(dest)
    if (dest / LEDGER).exists():
        raise ValidationError(
            f"{dest} already holds a backup",
            error_code="BACKUP_EXISTS",
            suggestion="choose a new directory for each backup (e.g. one named by the date)",
        )
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot create the backup directory {dest} ({exc.strerror})",
            error_code="BACKUP_FAILED",
            suggestion="choose a writable directory",
        ) from exc
    partial = dest / (LEDGER + ".partial")
    partial.unlink(missing_ok=True)
    ledger.backup_to(partial)
    os.replace(partial, dest / LEDGER)  # a backup directory holds a whole ledger or none
    manifest = {
        "created_at": datetime.now(UTC).isoformat(),
        "memorch_version": package_version(),
        **_counts(dest / LEDGER),
        "ledger": LEDGER,
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return {**manifest, "path": str(dest)}


def restore_ledger(config: MemoryConfig, src: Path, force: bool) -> dict[str, Any]:
    """Put ``src``'s ledger in place of the data directory's; the replaced one is kept aside.
    Refused (``DATA_DIR_IN_USE``) while any process has the ledger open (``storage.in_use``).
    The caller rebuilds the indexes afterwards (``restore`` does)."""
    src = Path(src)
    source = src / LEDGER
    if not source.is_file():
        raise ValidationError(
            f"{src} holds no {LEDGER}",
            error_code="BACKUP_INVALID",
            suggestion="name a directory written by `memorch backup`",
        )
    counts = _counts(source)
    data_dir = config.prepare_data_dir()
    target = data_dir / LEDGER
    kept = None
    from filelock import FileLock

    with held_alone(target), FileLock(str(data_dir / "index.lock"), timeout=120):
        if target.exists():
            held = _counts(target)  # deleted memories too: their history restores them
            if (held["memories"] or held["history_events"]) and not force:
                raise ValidationError(
                    f"the data directory already holds {held['memories']} memories and "
                    f"{held['history_events']} history events",
                    error_code="RESTORE_WOULD_REPLACE",
                    details=held,
                    suggestion="pass --force to replace them (the current ledger is kept beside it)",
                )
            conn = sqlite3.connect(target)
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # fold the WAL into the file before it moves
            finally:
                conn.close()
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            kept = data_dir / f"{LEDGER}.before-restore-{stamp}"
            os.replace(target, kept)
            for suffix in ("-wal", "-shm"):
                Path(str(target) + suffix).unlink(missing_ok=True)
        staged = data_dir / (LEDGER + ".restoring")
        staged.unlink(missing_ok=True)
        src_conn, dst_conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True), sqlite3.connect(staged)
        try:
            src_conn.backup(dst_conn)
        finally:
            src_conn.close()
            dst_conn.close()
        os.replace(staged, target)
    return {**counts, "restored_from": str(src), "kept": str(kept) if kept else None}


async def restore(config: MemoryConfig, src: Path, force: bool = False) -> dict[str, Any]:
    """``restore_ledger``, then the derived indexes rebuilt from it."""
    from memorch.engine._engine import Engine
    from memorch.maintenance._reindex import rebuild

    result = restore_ledger(config, src, force)
    engine = Engine(config)
    try:
        result["reindex"] = await rebuild(engine, force=True)  # the restored ledger replaces what the index held
    finally:
        await engine.close()
    return result
