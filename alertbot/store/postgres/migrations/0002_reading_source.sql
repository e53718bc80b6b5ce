-- Which source produced each stored reading ("demo", "tokenmetrics"). A reading from another
-- source starts a new baseline instead of being compared with this one. Rows stored before
-- this migration have an unknown source (''), which is compatible with any source.

ALTER TABLE readings ADD COLUMN source TEXT COLLATE "C" NOT NULL DEFAULT '';
