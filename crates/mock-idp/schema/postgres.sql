-- The IdP's tables on PostgreSQL (store.rs): the same tables, columns and
-- queries as on SQLite (sqlite.sql), in PostgreSQL's types. Idempotent: run
-- at every start.
--
-- Times are Unix seconds, as on SQLite: BIGINT (SQLite's INTEGER is 64-bit).
-- Flags (email_verified, revoked) stay integers 0/1, so that one query text
-- (`revoked = 0`) and one way of reading them serve both databases.
CREATE TABLE IF NOT EXISTS users (
    sub TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    given_name TEXT,
    family_name TEXT,
    email_verified INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT
);
-- One account per email address, whatever its letter case (the index
-- SQLite gets in Store::open).
CREATE UNIQUE INDEX IF NOT EXISTS users_username_lower ON users (lower(username));
CREATE TABLE IF NOT EXISTS consents (
    sub TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (sub, client_id)
);
CREATE TABLE IF NOT EXISTS signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_pem TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT,
    -- The order of insertion, which SQLite keeps in its implicit `rowid`:
    -- keys made in the same second stay in the order they were made.
    rowid BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE TABLE IF NOT EXISTS sessions (
    cookie_hash TEXT PRIMARY KEY,
    sid TEXT NOT NULL UNIQUE,
    sub TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS session_clients (
    sid TEXT NOT NULL,
    client_id TEXT NOT NULL,
    PRIMARY KEY (sid, client_id)
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    sub TEXT NOT NULL,
    scope TEXT NOT NULL,
    sid TEXT,
    auth_time BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    family_expires_at BIGINT NOT NULL,
    rotated_at BIGINT,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family_id);
-- A family's lock and revocation mark: a rotation checks it after storing
-- its new tokens, a revocation writes it first (see Store::revoke_family).
CREATE TABLE IF NOT EXISTS refresh_families (
    family_id TEXT PRIMARY KEY,
    revoked BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS access_tokens (
    jti TEXT PRIMARY KEY,
    family_id TEXT,
    client_id TEXT NOT NULL,
    sub TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    token_hash TEXT,
    scope TEXT,
    issued_at BIGINT
);
CREATE INDEX IF NOT EXISTS access_tokens_family ON access_tokens (family_id);
CREATE UNIQUE INDEX IF NOT EXISTS access_tokens_hash ON access_tokens (token_hash);
