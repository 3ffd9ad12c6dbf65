"""The test services. PostgreSQL: found through ``MEMORCH_TEST_PG_URL`` (``.ci/run`` starts one on
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


# -- the test S3-compatible endpoint (moto in server mode, started by .ci/run) -----------------

S3_ENDPOINT = os.environ.get("MEMORCH_TEST_S3_ENDPOINT", "")
REQUIRE_S3 = os.environ.get("MEMORCH_REQUIRE_S3") == "1"
# The standard variables LanceDB's object store reads; moto takes any credentials.
S3_ENV = {
    "AWS_ENDPOINT_URL": S3_ENDPOINT,
    "AWS_ACCESS_KEY_ID": "memorch-test",
    "AWS_SECRET_ACCESS_KEY": "memorch-test",
    "AWS_REGION": "us-east-1",
    "AWS_ALLOW_HTTP": "true",
}


def need_s3() -> str:
    if not S3_ENDPOINT:
        if REQUIRE_S3:
            pytest.fail("MEMORCH_REQUIRE_S3=1 but MEMORCH_TEST_S3_ENDPOINT is not set")
        pytest.skip("no test S3 endpoint (set MEMORCH_TEST_S3_ENDPOINT, as .ci/run does)")
    return S3_ENDPOINT


def fresh_bucket() -> str:
    """A new bucket on the test endpoint, as an ``s3://`` URI with a prefix."""
    import boto3

    need_s3()
    name = f"memorch-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=S3_ENDPOINT,
        aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=S3_ENV["AWS_REGION"],
    )
    client.create_bucket(Bucket=name)
    return f"s3://{name}/vectors"


def bucket_keys(uri: str) -> list[str]:
    import boto3

    bucket = uri.removeprefix("s3://").split("/", 1)[0]
    client = boto3.client(
        "s3",
        endpoint_url=S3_ENDPOINT,
        aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=S3_ENV["AWS_REGION"],
    )
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]
