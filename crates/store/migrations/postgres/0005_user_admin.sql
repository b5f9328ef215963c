-- The admin role: may use the dashboard and manage invitations.
ALTER TABLE users ADD COLUMN admin BOOLEAN NOT NULL DEFAULT FALSE;
