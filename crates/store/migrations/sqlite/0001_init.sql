-- Portable schema: TEXT ids (random 128-bit hex), BIGINT unix-millis
-- timestamps, scopes as space-separated TEXT.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,  -- 0/1: sqlx Any cannot decode SQLite BOOLEAN
    created_at    BIGINT NOT NULL
);

CREATE TABLE pat_tokens (
    id         TEXT PRIMARY KEY,
    token_id   TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id),
    name       TEXT NOT NULL DEFAULT '',
    scopes     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX pat_tokens_user_id_idx ON pat_tokens (user_id);

CREATE TABLE nodes (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    token_id   TEXT NOT NULL REFERENCES pat_tokens (token_id),
    name       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE INDEX nodes_user_id_idx ON nodes (user_id);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
