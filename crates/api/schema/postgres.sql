-- The API's storage on PostgreSQL: the table of sqlite.sql, in
-- PostgreSQL's types; the queries of notes.rs run unchanged on both.
-- Idempotent: run at every start (see notes::connect).
CREATE TABLE IF NOT EXISTS notes (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- never reused after a delete
    owner_iss  TEXT   NOT NULL,
    owner_sub  TEXT   NOT NULL,
    text       TEXT   NOT NULL,
    -- RFC 3339 text in UTC, as SQLite writes it, e.g. 2026-11-26T20:00:00Z.
    created_at TEXT   NOT NULL
        DEFAULT (to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
);

CREATE INDEX IF NOT EXISTS notes_by_owner ON notes (owner_iss, owner_sub, id);
