-- outbox_msg_key indexed every row although msg_key is NULL until the throttle commits a row
-- to a message; every query by key names one (`msg_key = ?`, which SQLite matches to an index
-- WHERE msg_key IS NOT NULL), so only keyed rows are indexed and a fan-out writes one index
-- entry less per row. The SQLite twin of alertbot/store/postgres/migrations/0009_outbox_fanout.sql,
-- which also reshapes PostgreSQL's other outbox indexes and drops its foreign key for the
-- fan-out's speed (reasons there); SQLite keeps its key and its other indexes.

DROP INDEX outbox_msg_key;
CREATE INDEX outbox_msg_key ON outbox (msg_key) WHERE msg_key IS NOT NULL;
