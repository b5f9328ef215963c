-- Token checks join nodes on their current token (CheckTokens runs every
-- few seconds per gateway).
CREATE INDEX nodes_token_id_idx ON nodes (token_id);
