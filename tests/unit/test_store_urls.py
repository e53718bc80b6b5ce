"""Database URLs: backend choice, PostgreSQL parameters and password redaction."""

from __future__ import annotations

import pytest

from alertbot.ports.store import StoreError
from alertbot.store.factory import store_from_url
from alertbot.store.postgres import PostgresStore
from alertbot.store.postgres.connection import DEFAULT_POOL_SIZE, PostgresUrl, pg
from alertbot.store.sqlite import SqliteStore
from alertbot.store.urls import redact_url, url_password


@pytest.mark.parametrize(("url", "redacted"), [
    ("postgresql://bot:hunter2@db:5432/a", "postgresql://bot:***@db:5432/a"),
    ("postgres://bot:p%40ss@db/a?sslmode=require", "postgres://bot:***@db/a?sslmode=require"),
    ("postgresql://bot@db/a", "postgresql://bot@db/a"),
    ("sqlite:///alertbot.db", "sqlite:///alertbot.db"),
])
def test_redact_url_hides_only_the_password(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_url_password_decodes_percent_escapes() -> None:
    assert url_password("postgresql://bot:p%40ss@db/a") == "p@ss"
    assert url_password("postgresql://bot@db/a") is None


def test_store_from_url_picks_the_backend() -> None:
    assert isinstance(store_from_url("sqlite:///a.db"), SqliteStore)
    assert isinstance(store_from_url("postgres://bot@db/a"), PostgresStore)
    with pytest.raises(StoreError, match="unsupported database URL mysql://…"):
        store_from_url("mysql://bot:hunter2@db/a")


def test_postgres_store_repr_never_shows_the_password() -> None:
    store = store_from_url("postgresql://bot:hunter2@db/a")
    assert "hunter2" not in repr(store) and "***" in repr(store)


def test_postgres_url_reads_own_parameters_and_passes_the_rest() -> None:
    url = PostgresUrl("postgresql://bot:pw@db/a?pool_size=9&statement_timeout=500"
                      "&sslmode=disable&search_path=s1")
    assert (url.pool_size, url.statement_timeout_ms) == (9, 500)
    assert url.dsn == "postgresql://bot:pw@db/a?sslmode=disable&search_path=s1"
    assert PostgresUrl("postgresql://bot@db/a").pool_size == DEFAULT_POOL_SIZE


@pytest.mark.parametrize("query", ["pool_size=0", "pool_size=many", "statement_timeout=-1"])
def test_postgres_url_bad_parameter_is_a_store_error_without_password(query: str) -> None:
    with pytest.raises(StoreError) as excinfo:
        PostgresUrl(f"postgresql://bot:hunter2@db/a?{query}")
    assert "hunter2" not in str(excinfo.value)


def test_postgres_url_redact_removes_raw_and_encoded_password() -> None:
    url = PostgresUrl("postgresql://bot:p%40ss@db/a")
    assert url.redact("auth failed for p@ss (p%40ss)") == "auth failed for *** (***)"


def test_pg_numbers_placeholders_in_order() -> None:
    assert pg("SELECT ? WHERE a = ? AND b IN (?, ?)") == "SELECT $1 WHERE a = $2 AND b IN ($3, $4)"


def test_pg_dump_command_drops_own_parameters_and_names_the_schema() -> None:
    from alertbot.store.postgres.maintenance import pg_dump_command

    command = pg_dump_command("postgresql://bot:***@db/a?pool_size=8&sslmode=require"
                              "&search_path=bot1", "/backups/a.dump")
    assert command == ("pg_dump --format=custom --schema=bot1 --file=/backups/a.dump "
                       "'postgresql://bot:***@db/a?sslmode=require'")
