-- The API's storage on SQLite: one table of notes, each owned by one user.
-- Idempotent: run at every start (see notes::connect).
--
-- A user is (issuer, subject): `sub` is unique only within its issuer
-- (OpenID Connect Core 1.0 section 2), so both are kept, and a change of
-- --issuer can never hand one IdP's user another IdP's notes.
CREATE TABLE IF NOT EXISTS notes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused after a delete
    owner_iss  TEXT    NOT NULL,
    owner_sub  TEXT    NOT NULL,
    text       TEXT    NOT NULL,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

CREATE INDEX IF NOT EXISTS notes_by_owner ON notes (owner_iss, owner_sub, id);
