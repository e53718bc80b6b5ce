-- Per-destination, per-token mutes set with the Mute button on an alert: alerts of that
-- token to that destination are suppressed (reason token_muted) until `until`. At most one
-- row per destination and token; an ended mute is replaced by the next one. Times are UNIX
-- seconds like every other table. The PostgreSQL twin of
-- alertbot/store/migrations/0006_token_mutes.sql.

CREATE TABLE token_mutes (
    platform    TEXT COLLATE "C" NOT NULL,
    chat_id     TEXT COLLATE "C" NOT NULL,
    thread_id   TEXT COLLATE "C" NOT NULL DEFAULT '',
    token_id    BIGINT NOT NULL,
    until       DOUBLE PRECISION NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    actor       TEXT COLLATE "C" NOT NULL DEFAULT '',
    PRIMARY KEY (platform, chat_id, thread_id, token_id)
);
