-- Per-destination, per-token mutes set with the Mute button on an alert: alerts of that
-- token to that destination are suppressed (reason token_muted) until `until`. At most one
-- row per destination and token; an ended mute is replaced by the next one. Portable SQL:
-- times are UNIX seconds like every other table.

CREATE TABLE token_mutes (
    platform    TEXT NOT NULL,
    chat_id     TEXT NOT NULL,
    thread_id   TEXT NOT NULL DEFAULT '',
    token_id    INTEGER NOT NULL,
    until       REAL NOT NULL,
    created_at  REAL NOT NULL,
    actor       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (platform, chat_id, thread_id, token_id)
);
