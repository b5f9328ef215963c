-- The credential vault (services/secrets). Every secret column holds a
-- base64 envelope `v1 | key_id | salt | nonce | ciphertext`; `key_id`
-- repeats the envelope's key id so rotation can find and count entries
-- without decrypting them.
CREATE TABLE relay_host_options (
    host           TEXT NOT NULL,
    key            TEXT NOT NULL,
    value_envelope TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (host, key)
);
CREATE INDEX relay_host_options_key_id_idx ON relay_host_options (key_id);

CREATE TABLE relay_credentials (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    kind                TEXT NOT NULL,
    secret_envelope     TEXT NOT NULL,
    passphrase_envelope TEXT,
    key_id              TEXT NOT NULL,
    meta                TEXT NOT NULL DEFAULT '{}',
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX relay_credentials_key_id_idx ON relay_credentials (key_id);

-- Master keys ever used; retired once no entry references them.
CREATE TABLE vault_keys (
    key_id     TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

-- Vault settings, e.g. the Argon2id salt for passphrase master keys.
CREATE TABLE vault_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
