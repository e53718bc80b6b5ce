"""One `alertbot run` per SQLite file: an advisory lock beside the database."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from alertbot.ports.store import StoreError

LOCK_SUFFIX = ".run-lock"


class AlreadyRunning(StoreError):
    """Another `alertbot run` holds this database."""


@contextlib.contextmanager
def single_run(path: str) -> Iterator[None]:
    """Hold the database's run lock, or raise StoreError naming the process holding it.

    The kernel releases the lock when the process ends in any way (even SIGKILL), so a crash
    never leaves a stale lock behind. Other commands (subscribe, lookup, db backup) do not take
    it: they are meant to run beside the bot.
    """
    if path == ":memory:":
        yield
        return
    lock_path = path + LOCK_SUFFIX
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot create {lock_path}: {exc.strerror or exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise AlreadyRunning(
                f"another `alertbot run` (pid {holder}) is using {path}; SQLite serves one "
                "bot at a time: stop it first, or point ALERTBOT_DATABASE_URL at another "
                "file") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
