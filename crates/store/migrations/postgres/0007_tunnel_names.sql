-- Reserved `ssh -R` tunnel names (design note 002). Each is also a row of
-- target_names with kind 'tunnel', so its primary key keeps tunnels, nodes
-- and hosts in one namespace, race-free; grants on it use target_kind
-- 'tunnel' like those on nodes.
CREATE TABLE tunnel_names (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL REFERENCES users (id),
    created_at BIGINT NOT NULL
);
CREATE INDEX tunnel_names_user_id_idx ON tunnel_names (user_id);
