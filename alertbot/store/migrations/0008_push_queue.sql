-- Push queue: readings accepted by signed push ingest on any process, waiting for the leader's
-- poller to detect on them (docs/replicas.md, "Push ingest on standbys"). One row per accepted
-- request; `payload` is the validated readings and their catalog tokens as JSON. A row is
-- pending while `processed_at` is NULL; retention deletes processed rows after a day.
-- Times are UNIX seconds like every other table.

CREATE TABLE pushed_readings (
    id            INTEGER PRIMARY KEY,
    received_at   REAL NOT NULL,
    payload       TEXT NOT NULL,
    processed_at  REAL
);

CREATE INDEX pushed_readings_pending ON pushed_readings (id) WHERE processed_at IS NULL;
