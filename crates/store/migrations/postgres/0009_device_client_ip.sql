-- The address a device authorization came from (the client IP as the gateway resolved it), so
-- the approval page can show it before anyone approves; empty for rows from before.
ALTER TABLE device_authorizations ADD COLUMN client_ip TEXT NOT NULL DEFAULT '';
