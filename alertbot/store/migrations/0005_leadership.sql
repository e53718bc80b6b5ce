-- Leadership epochs and replica heartbeats. Outbox writes carry the writer's epoch and are
-- refused when it is older than `leadership.epoch` (fencing). On SQLite one process always
-- leads and each start begins a new epoch; on PostgreSQL the same row is a lease that
-- replicas take over when it expires (expires_at, judged on the database clock).

CREATE TABLE leadership (
    name         TEXT PRIMARY KEY,
    epoch        INTEGER NOT NULL,
    holder       TEXT NOT NULL,
    acquired_at  REAL NOT NULL,
    expires_at   REAL
);

CREATE TABLE replicas (
    replica_id    TEXT PRIMARY KEY,
    started_at    REAL NOT NULL,
    heartbeat_at  REAL NOT NULL,
    role          TEXT NOT NULL
);
