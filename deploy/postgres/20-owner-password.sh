#!/bin/sh
# First start only (docker-entrypoint-initdb.d): the owner role from postgres-roles.sql gets its
# password, read from the environment so it never lands in a file.
set -eu
psql -v ON_ERROR_STOP=1 --username postgres --dbname phirepass \
  -v pw="$PHIREPASS_DB_OWNER_PASSWORD" <<'SQL'
ALTER ROLE phirepass_owner PASSWORD :'pw';
SQL
