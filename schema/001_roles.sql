-- 001_roles.sql - the mfa schema, the migration ledger and the three roles.
--
-- Applied by `mfactl migrate` as a superuser, in one transaction, once per
-- database. Roles are cluster-wide while schemas are per database, so a
-- second database in the same cluster finds the roles already there: every
-- role is created only when absent, and an existing role is left exactly as
-- the operators configured it (password, connection limit, ...).
--
--   mfa_worker    the worker processes: read and write the tables (UPDATE
--                 only on the columns they own; see 004_views.sql)
--   mfa_portal    the portal: SELECT on the read views, nothing else; in
--                 particular it can never write an email or a phone number
--   mfa_operator  humans with mfactl: the read views and the SMS settings
--
-- The roles are created with LOGIN but no password: the operators set one
-- (ALTER ROLE ... PASSWORD) or map them in pg_hba.conf / pg_ident.conf.

CREATE SCHEMA IF NOT EXISTS mfa;

-- mfactl migrate creates this table itself before applying 001; it is
-- repeated here so the schema is complete when the files are applied by
-- hand (psql -1 -f).
CREATE TABLE IF NOT EXISTS mfa.schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['mfa_worker', 'mfa_portal', 'mfa_operator'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r)
        THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB '
                               'NOCREATEROLE NOREPLICATION', r);
            EXCEPTION
                -- Another database of the cluster being migrated at the
                -- same moment created it first: that is just as good.
                WHEN duplicate_object OR unique_violation THEN
                    NULL;
            END;
        END IF;
    END LOOP;
END
$roles$;

-- Nothing in mfa is visible to PUBLIC; each role gets what it needs.
REVOKE ALL ON SCHEMA mfa FROM PUBLIC;
GRANT USAGE ON SCHEMA mfa TO mfa_worker, mfa_portal, mfa_operator;
