-- Charts on grade alerts, per destination (/charts on|off, `alertbot throttle --charts`).
-- Off by default: a destination sees pictures only after a moderator asked for them.
-- The PostgreSQL twin of alertbot/store/migrations/0007_charts.sql.

ALTER TABLE destinations ADD COLUMN charts INTEGER NOT NULL DEFAULT 0;
