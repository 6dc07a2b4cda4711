-- The IdP's tables on SQLite (store.rs). Idempotent: run at every start.
-- Indexes on columns added since the first release are made by
-- Store::open, after it has added those columns to an older file.
CREATE TABLE IF NOT EXISTS users (
    sub TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    given_name TEXT,
    family_name TEXT,
    email_verified INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER
);
CREATE TABLE IF NOT EXISTS consents (
    sub TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (sub, client_id)
);
CREATE TABLE IF NOT EXISTS signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_pem TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
);
CREATE TABLE IF NOT EXISTS sessions (
    cookie_hash TEXT PRIMARY KEY,
    sid TEXT NOT NULL UNIQUE,
    sub TEXT NOT NULL,
    auth_time INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
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
    auth_time INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    family_expires_at INTEGER NOT NULL,
    rotated_at INTEGER,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens (family_id);
-- A family's lock and revocation mark: a rotation checks it after storing
-- its new tokens, a revocation writes it first (see Store::revoke_family).
CREATE TABLE IF NOT EXISTS refresh_families (
    family_id TEXT PRIMARY KEY,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS access_tokens (
    jti TEXT PRIMARY KEY,
    family_id TEXT,
    client_id TEXT NOT NULL,
    sub TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    token_hash TEXT,
    scope TEXT,
    issued_at INTEGER
);
CREATE INDEX IF NOT EXISTS access_tokens_family ON access_tokens (family_id);
