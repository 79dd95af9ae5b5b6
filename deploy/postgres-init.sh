#!/bin/sh
# postgres-init.sh - creates the Portal MFA roles with the passwords of
# .env when the postgres container initialises an empty data volume
# (compose.yaml mounts it into /docker-entrypoint-initdb.d; it runs once).
#
# It runs before `mfactl migrate` (the migrate service), whose
# 001_roles.sql leaves existing roles exactly as they are, so the
# passwords set here stay. To change one later: ALTER ROLE ... PASSWORD.
# The passwords travel as psql variables, never on a command line.
set -eu

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v worker_pw="${MFA_WORKER_DB_PASSWORD:-}" \
    -v operator_pw="${MFA_OPERATOR_DB_PASSWORD:-}" \
    -v portal_pw="${MFA_PORTAL_DB_PASSWORD:-}" <<'SQL'
CREATE ROLE mfa_worker LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
    NOREPLICATION PASSWORD :'worker_pw';
CREATE ROLE mfa_operator LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
    NOREPLICATION PASSWORD :'operator_pw';
CREATE ROLE mfa_portal LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
    NOREPLICATION PASSWORD :'portal_pw';
SQL
