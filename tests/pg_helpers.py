"""The test PostgreSQL: found through ``MEMORCH_TEST_PG_URL`` (``.ci/run`` starts one on
127.0.0.1 and sets it). Each test gets a schema of its own, dropped afterwards, so tests do not
see each other's rows and need no database of their own.

Read at import: the suite's autouse fixture clears every ``MEMORCH_*`` variable before a test
runs. Without the variable the PostgreSQL tests skip, unless ``MEMORCH_REQUIRE_POSTGRES=1``
(set by ``.ci/run``) makes that a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest

PG_URL = os.environ.get("MEMORCH_TEST_PG_URL", "")
REQUIRE_PG = os.environ.get("MEMORCH_REQUIRE_POSTGRES") == "1"


def need_postgres() -> str:
    """The server's URL, or skip (fail under ``MEMORCH_REQUIRE_POSTGRES=1``)."""
    if not PG_URL:
        if REQUIRE_PG:
            pytest.fail("MEMORCH_REQUIRE_POSTGRES=1 but MEMORCH_TEST_PG_URL is not set")
        pytest.skip("no test PostgreSQL (set MEMORCH_TEST_PG_URL, as .ci/run does)")
    return PG_URL


def with_schema(url: str, schema: str) -> str:
    """``url`` whose sessions use ``schema`` (libpq's ``options``: ``-c search_path=...``)."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-c search_path={schema}')}"


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A URL on a new, empty schema; the schema is dropped at the end."""
    import psycopg

    url = need_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_schema(url, schema)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
