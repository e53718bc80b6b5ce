-- Initial schema. Timestamps are UTC epoch seconds (REAL); ids of chats are TEXT because
-- platforms disagree on their shape (Telegram int64, Discord snowflakes, webhook hashes).

CREATE TABLE tokens (
    token_id    INTEGER PRIMARY KEY,
    symbol      TEXT NOT NULL,
    name        TEXT NOT NULL,
    slug        TEXT NOT NULL DEFAULT '',
    updated_at  REAL NOT NULL
);
CREATE INDEX tokens_symbol ON tokens (symbol);

-- Latest reading and detection state per (token, kind).
CREATE TABLE readings (
    token_id       INTEGER NOT NULL,
    kind           TEXT NOT NULL,
    value          REAL NOT NULL,
    label          TEXT NOT NULL DEFAULT '',
    source_ts      REAL NOT NULL,
    band           INTEGER NOT NULL DEFAULT 0,
    alerted_value  REAL NOT NULL,
    fired_at       REAL,
    updated_at     REAL NOT NULL,
    PRIMARY KEY (token_id, kind)
);

CREATE TABLE changes (
    id           INTEGER PRIMARY KEY,
    change_id    TEXT NOT NULL UNIQUE,
    token_id     INTEGER NOT NULL,
    symbol       TEXT NOT NULL,
    name         TEXT NOT NULL,
    slug         TEXT NOT NULL DEFAULT '',
    kind         TEXT NOT NULL,
    from_value   REAL NOT NULL,
    to_value     REAL NOT NULL,
    from_label   TEXT NOT NULL DEFAULT '',
    to_label     TEXT NOT NULL DEFAULT '',
    direction    TEXT NOT NULL,
    cause        TEXT NOT NULL DEFAULT '',
    source_ts    REAL NOT NULL,
    detected_at  REAL NOT NULL
);
CREATE INDEX changes_series ON changes (token_id, kind, detected_at);

-- A chat, channel, thread or URL that receives alerts, with its moderators' settings.
CREATE TABLE destinations (
    platform       TEXT NOT NULL,
    chat_id        TEXT NOT NULL,
    thread_id      TEXT NOT NULL DEFAULT '',
    max_alerts     INTEGER NOT NULL DEFAULT 10,
    window_s       REAL NOT NULL DEFAULT 3600,
    quiet_start    TEXT,
    quiet_end      TEXT,
    quiet_tz       TEXT,
    mute_until     REAL,
    settle_s       REAL NOT NULL DEFAULT 0,
    modes          TEXT NOT NULL DEFAULT '',
    address        TEXT,
    label          TEXT NOT NULL DEFAULT '',
    paused_at      REAL,
    paused_reason  TEXT NOT NULL DEFAULT '',
    created_at     REAL NOT NULL,
    PRIMARY KEY (platform, chat_id, thread_id)
);

-- token_id 0 means every tracked token; kinds is a bit mask.
CREATE TABLE subscriptions (
    id          INTEGER PRIMARY KEY,
    platform    TEXT NOT NULL,
    chat_id     TEXT NOT NULL,
    thread_id   TEXT NOT NULL DEFAULT '',
    token_id    INTEGER NOT NULL,
    kinds       INTEGER NOT NULL,
    created_at  REAL NOT NULL,
    UNIQUE (platform, chat_id, thread_id, token_id),
    FOREIGN KEY (platform, chat_id, thread_id)
        REFERENCES destinations (platform, chat_id, thread_id)
);
CREATE INDEX subscriptions_token ON subscriptions (token_id);

-- One row per (change, destination). state: pending -> sending -> sent | dead, or held /
-- suppressed by the throttle. msg_key is set once the row is committed to a message (its
-- idempotency key, shared by every row of a digest).
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    change_pk        INTEGER NOT NULL REFERENCES changes (id),
    platform         TEXT NOT NULL,
    chat_id          TEXT NOT NULL,
    thread_id        TEXT NOT NULL DEFAULT '',
    state            TEXT NOT NULL DEFAULT 'pending',
    reason           TEXT NOT NULL DEFAULT '',
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL NOT NULL,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    last_error       TEXT NOT NULL DEFAULT '',
    message_id       TEXT NOT NULL DEFAULT '',
    msg_key          TEXT,
    silent           INTEGER NOT NULL DEFAULT 0,
    sent_at          REAL,
    UNIQUE (change_pk, platform, chat_id, thread_id)
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_destination ON outbox (platform, chat_id, thread_id, state);
CREATE INDEX outbox_msg_key ON outbox (msg_key);

-- One row per platform message (a digest is one message); the throttle's rate history.
CREATE TABLE messages (
    id          INTEGER PRIMARY KEY,
    platform    TEXT NOT NULL,
    chat_id     TEXT NOT NULL,
    thread_id   TEXT NOT NULL DEFAULT '',
    msg_key     TEXT NOT NULL,
    message_id  TEXT NOT NULL DEFAULT '',
    alerts      INTEGER NOT NULL,
    sent_at     REAL NOT NULL
);
CREATE INDEX messages_destination ON messages (platform, chat_id, thread_id, sent_at);

-- Every throttle and delivery decision with its reason (explained by /why).
CREATE TABLE decisions (
    id          INTEGER PRIMARY KEY,
    at          REAL NOT NULL,
    platform    TEXT NOT NULL,
    chat_id     TEXT NOT NULL,
    thread_id   TEXT NOT NULL DEFAULT '',
    outbox_id   INTEGER,
    change_pk   INTEGER,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX decisions_destination ON decisions (platform, chat_id, thread_id, at);

-- Settings changes, pauses, re-keys: who did what and why.
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    at          REAL NOT NULL,
    platform    TEXT NOT NULL DEFAULT '',
    chat_id     TEXT NOT NULL DEFAULT '',
    thread_id   TEXT NOT NULL DEFAULT '',
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '',
    actor       TEXT NOT NULL DEFAULT ''
);

CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
