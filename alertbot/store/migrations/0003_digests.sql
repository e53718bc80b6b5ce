-- Scheduled digests. A destination's schedule is its spec as typed ("daily 09:00
-- Europe/Berlin only"; '' = none) and when it was set (no digest for a period that ended
-- before). Each finished period of a destination is decided once: queued (its message is a
-- change of kind scheduled_digest with one outbox row), empty (nothing changed) or skipped
-- (it ended too long before the bot could send it). The UNIQUE key makes a second digest for
-- the same period impossible, whatever restarts or repeated checks happen. No foreign key to
-- changes: retention may delete the change once its outbox row is finished.

ALTER TABLE destinations ADD COLUMN digest TEXT NOT NULL DEFAULT '';
ALTER TABLE destinations ADD COLUMN digest_since REAL;

CREATE TABLE scheduled_digests (
    id            INTEGER PRIMARY KEY,
    platform      TEXT NOT NULL,
    chat_id       TEXT NOT NULL,
    thread_id     TEXT NOT NULL DEFAULT '',
    period_key    TEXT NOT NULL,
    period_start  REAL NOT NULL,
    period_end    REAL NOT NULL,
    outcome       TEXT NOT NULL,
    change_id     TEXT NOT NULL DEFAULT '',
    changes       INTEGER NOT NULL DEFAULT 0,
    decided_at    REAL NOT NULL,
    UNIQUE (platform, chat_id, thread_id, period_key)
);
