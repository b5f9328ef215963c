-- The admin role: may use the dashboard and manage invitations.
-- 0/1: sqlx Any cannot decode SQLite BOOLEAN.
ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
