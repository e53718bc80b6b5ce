-- Leadership epochs and replica heartbeats: the PostgreSQL twin of
-- alertbot/store/migrations/0005_leadership.sql. The lease row is judged on the database clock
-- (TIMESTAMPTZ, clock_timestamp()); alertbot/store/postgres/leadership.py runs this file too
-- (IF NOT EXISTS). Outbox writes carry the writer's epoch and are refused when it is older
-- than `leadership.epoch` (fencing).

CREATE TABLE IF NOT EXISTS leadership (
    name         TEXT PRIMARY KEY,
    epoch        BIGINT NOT NULL,
    holder       TEXT NOT NULL,
    acquired_at  TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS replicas (
    replica_id    TEXT PRIMARY KEY,
    started_at    TIMESTAMPTZ NOT NULL,
    heartbeat_at  TIMESTAMPTZ NOT NULL,
    role          TEXT NOT NULL
);
