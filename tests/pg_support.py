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
    """A fresh schema on the test server, dropped with everything in it afterwards.

    Skips the test with a one-line reason when the server is unreachable, unless
    ALERTBOT_TEST_REQUIRE_POSTGRES=1 (then the test fails).
    """
    import asyncpg

    from alertbot.store.urls import redact_url

    url = postgres_url()
    try:
        admin = await asyncpg.connect(url, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        reason = (f"PostgreSQL unreachable at {redact_url(url)} ({exc}); set "
                  "ALERTBOT_TEST_POSTGRES_URL to use another server")
        if os.environ.get("ALERTBOT_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " (ALERTBOT_TEST_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    schema = f"{prefix}_{uuid.uuid4().hex[:16]}"
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        yield schema
    finally:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()


def schema_url(schema: str) -> str:
    """The test server's URL with `schema` as the search path."""
    url = postgres_url()
    return f"{url}{'&' if '?' in url else '?'}search_path={schema}"
