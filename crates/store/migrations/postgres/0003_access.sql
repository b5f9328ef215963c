-- The access model: SSH keys, groups, direct hosts, one namespace of target
-- names, grants, and API tokens beside node tokens.

CREATE TABLE user_keys (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    fingerprint TEXT NOT NULL,
    algorithm   TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    comment     TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    UNIQUE (user_id, fingerprint)
);

CREATE TABLE user_groups (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id   TEXT NOT NULL REFERENCES user_groups (id),
    user_id    TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user_id_idx ON group_members (user_id);

CREATE TABLE hosts (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    ip         TEXT NOT NULL,
    port       BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Every target name (node or host) once: the primary key is what keeps a
-- host from taking a node's name and the other way round, race-free.
CREATE TABLE target_names (
    name      TEXT PRIMARY KEY,
    kind      TEXT NOT NULL,
    target_id TEXT NOT NULL
);
INSERT INTO target_names (name, kind, target_id) SELECT name, 'node', id FROM nodes;

-- principal_kind 'user' | 'group'; target_kind 'node' | 'host'. A revoked
-- grant is deleted (its history is in the audit events).
CREATE TABLE grants (
    id             TEXT PRIMARY KEY,
    principal_kind TEXT NOT NULL,
    principal_id   TEXT NOT NULL,
    target_kind    TEXT NOT NULL,
    target_id      TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    UNIQUE (principal_kind, principal_id, target_kind, target_id)
);
CREATE INDEX grants_target_idx ON grants (target_kind, target_id);

ALTER TABLE pat_tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'node';
