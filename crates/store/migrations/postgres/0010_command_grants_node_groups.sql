-- Command grants (issue #10): the commands a grant lets its principal run on a node,
-- comma-separated (`*`: every command the host declares); empty: none.
ALTER TABLE grants ADD COLUMN commands TEXT NOT NULL DEFAULT '';

-- Named groups of agent nodes; a grant's target may be one (target_kind 'node_group').
CREATE TABLE node_groups (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE node_group_members (
    group_id   TEXT NOT NULL REFERENCES node_groups (id),
    node_id    TEXT NOT NULL REFERENCES nodes (id),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, node_id)
);
CREATE INDEX node_group_members_node_id_idx ON node_group_members (node_id);
