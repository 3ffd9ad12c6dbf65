"""Write a database with mcp-memory-service's own storage code, to check ``--from
mcp-memory-service`` against what the service really writes (not run by the suite, which builds
the same shape with the service's CREATE TABLE: tests/test_importers_peers.py).

    /usr/bin/python3 -m venv /tmp/mms && /tmp/mms/bin/pip install mcp-memory-service==12.4.0
    /tmp/mms/bin/python tests/data/importers/make_mcp_memory_service_db.py /tmp/mmsdb/sqlite_vec.db
    memorch import --from mcp-memory-service /tmp/mmsdb --dry-run

The venv needs a Python whose sqlite3 can load extensions (Debian's can; pyenv's builds often
cannot), as the service loads sqlite-vec. No embedding model can be fetched offline, so its model
is replaced by a stand-in that returns fixed vectors: the rows, tags, metadata, dates and the
soft delete are the service's own.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from pathlib import Path

import mcp_memory_service.storage.sqlite_vec as service
import numpy as np
from mcp_memory_service.models.memory import Memory

MEMORIES = [
    ("Deploys go out on Tuesdays", ["ops", "release"], "decision", {"source": "chat"}),
    ("Ana prefers green tea", ["people"], "observation", {}),
    ("The old VPN was retired", ["ops"], "note", {"ticket": 42}),  # deleted below
    ("Café Zürich: naïve 東京 🍵", [], "note", {}),
]


class StandInModel:
    """Fixed vectors far apart (from each text's SHA-256), so the service's check for near
    duplicates keeps every memory."""

    def encode(self, texts, **_):
        one = isinstance(texts, str)
        rows = [self.vector(t) for t in ([texts] if one else texts)]
        return rows[0] if one else np.stack(rows)

    @staticmethod
    def vector(text: str) -> np.ndarray:
        digest = np.frombuffer(hashlib.sha256(text.encode()).digest() * 12, dtype=np.uint8)[:384]
        centred = digest.astype(np.float32) - 127.5
        return centred / np.linalg.norm(centred)


async def stand_in(storage) -> None:
    storage.embedding_model, storage.embedding_dimension = StandInModel(), 384


async def main(path: Path) -> None:
    service.SqliteVecMemoryStorage._initialize_embedding_model = stand_in
    service.SENTENCE_TRANSFORMERS_AVAILABLE = True
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = service.SqliteVecMemoryStorage(str(path))
    await storage.initialize()
    hashes = []
    for text, tags, kind, metadata in MEMORIES:
        hashes.append(hashlib.sha256(text.encode()).hexdigest())
        print(
            await storage.store(
                Memory(content=text, content_hash=hashes[-1], tags=tags, memory_type=kind, metadata=metadata)
            )
        )
    print(await storage.delete(hashes[2]))
    storage.conn.commit()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
