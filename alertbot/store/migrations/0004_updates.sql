-- Update ids received from chat platforms (Telegram webhook deliveries), so an update that is
-- delivered twice, or retried after a lost answer, is handled once even when the copies reach
-- different processes. The primary key makes the first INSERT win; retention forgets old ids.

CREATE TABLE received_updates (
    platform TEXT NOT NULL,
    update_id BIGINT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (platform, update_id)
);

CREATE INDEX received_updates_at ON received_updates (received_at);
