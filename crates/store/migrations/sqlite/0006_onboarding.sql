-- First run, invitations and device activation. Every code is stored as
-- its hex SHA-256 only.

-- One-time setup codes (one per authz start while no user exists; any live
-- code is accepted by any replica).
CREATE TABLE setup_codes (
    code_hash  TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE invitations (
    id         TEXT PRIMARY KEY,
    code_hash  TEXT NOT NULL UNIQUE,
    username   TEXT NOT NULL DEFAULT '',  -- '' lets the invitee choose
    admin      INTEGER NOT NULL DEFAULT 0,  -- 0/1
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    used_by    TEXT,
    revoked_at BIGINT
);

-- kind 'agent' | 'cli'. No token is ever stored here: it is minted when the
-- device polls after approval, and handed out once (delivered_at).
CREATE TABLE device_authorizations (
    id               TEXT PRIMARY KEY,
    device_code_hash TEXT NOT NULL UNIQUE,
    user_code_hash   TEXT NOT NULL UNIQUE,
    kind             TEXT NOT NULL,
    hostname         TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    approved_at      BIGINT,
    user_id          TEXT,
    node_name        TEXT,
    scopes           TEXT,
    delivered_at     BIGINT
);
CREATE INDEX device_authorizations_expires_at_idx ON device_authorizations (expires_at);
