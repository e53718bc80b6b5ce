"""The local PostgreSQL server for tests: where it is, and a throw-away schema per test.

ALERTBOT_TEST_POSTGRES_URL points the tests at a server (default: the local one, trust
authentication, database `test`). When it does not answer, tests that need it are skipped
with a one-line reason, unless ALERTBOT_TEST_REQUIRE_POSTGRES=1 (CI), which fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    """The test server's URL."""
    return os.environ.get("ALERTBOT_TEST_POSTGRES_URL", DEFAULT_URL)


@asynccontextmanager
async def temporary_schema(prefix: str = "t") -> AsyncIterator[str]:
    """A fresh schema on the test server, dropped with everything in it afterwards."""
    asyncpg = pytest.importorskip("asyncpg")
    url = postgres_url()
    try:
        admin = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        reason = f"PostgreSQL at {url.rpartition('@')[2]} unreachable ({type(exc).__name__})"
        if os.environ.get("ALERTBOT_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " and ALERTBOT_TEST_REQUIRE_POSTGRES=1")
        pytest.skip(reason + "; set ALERTBOT_TEST_POSTGRES_URL to run these tests")
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        yield schema
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
