-- 004_views.sql - the read views (the portal's and operators' contract)
-- and every privilege of the three roles.
--
-- The views are owned by the migrating superuser and, like all views
-- without security_invoker, read the tables with their owner's rights: a
-- role needs SELECT on the view only, never on the tables behind it.
--
-- PostgreSQL makes a simple one-table view automatically updatable.
-- Granting SELECT alone already keeps mfa_portal from writing through
-- them; an INSTEAD OF trigger that refuses every write makes them
-- read-only for everybody, the owner included, so a later GRANT ALL by
-- mistake still cannot turn mfa.portal_users into a way to change an
-- email or a phone number.
--
-- Column privileges: UPDATE is granted per column. Never grant UPDATE on
-- a table and then REVOKE some columns: a table-wide grant covers every
-- column and a column REVOKE does not take anything away from it.
-- A later migration that adds a column the workers must write has to
-- GRANT UPDATE (that column) to mfa_worker itself.

CREATE VIEW mfa.portal_users AS
SELECT contact_id, organization_id, display_name, email, email_confirmed,
       phone_e164, phone_status, enabled, updated_at
  FROM mfa.users;

CREATE VIEW mfa.login_status AS
SELECT login_id, contact_id,
       -- expiry is a matter of time, not of a worker having noticed it
       CASE WHEN status IN ('pending', 'code_sent') AND expires_at < now()
            THEN 'expired'
            ELSE status
       END AS status,
       methods, created_at, expires_at, verified_at,
       greatest(max_attempts - tries, 0) AS attempts_left
  FROM mfa.logins;

CREATE VIEW mfa.delivery_status AS
SELECT delivery_id, login_id, channel, status, attempts, last_error,
       provider_message_id, created_at, sent_at
  FROM mfa.deliveries;

COMMENT ON VIEW mfa.portal_users IS
    'Portal users (read-only). phone_e164 is NULL unless phone_status = valid.';
COMMENT ON VIEW mfa.login_status IS
    'Login challenges (read-only); status expired once expires_at has passed.';
COMMENT ON VIEW mfa.delivery_status IS
    'Code and notice deliveries (read-only).';

CREATE FUNCTION mfa.view_read_only() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $fn$
BEGIN
    RAISE EXCEPTION 'mfa.% is a read-only view', TG_TABLE_NAME
        USING ERRCODE = 'feature_not_supported';
END
$fn$;
REVOKE ALL ON FUNCTION mfa.view_read_only() FROM PUBLIC;

CREATE TRIGGER portal_users_read_only
    INSTEAD OF INSERT OR UPDATE OR DELETE ON mfa.portal_users
    FOR EACH ROW EXECUTE FUNCTION mfa.view_read_only();
CREATE TRIGGER login_status_read_only
    INSTEAD OF INSERT OR UPDATE OR DELETE ON mfa.login_status
    FOR EACH ROW EXECUTE FUNCTION mfa.view_read_only();
CREATE TRIGGER delivery_status_read_only
    INSTEAD OF INSERT OR UPDATE OR DELETE ON mfa.delivery_status
    FOR EACH ROW EXECUTE FUNCTION mfa.view_read_only();

-- Start from nothing: no role (and not PUBLIC) has anything on these
-- objects except what follows.
REVOKE ALL ON ALL TABLES IN SCHEMA mfa FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA mfa FROM PUBLIC;

---------------------------------------------------------------- mfa_worker
GRANT SELECT, INSERT, DELETE
    ON mfa.inbox, mfa.users, mfa.logins, mfa.codes, mfa.code_requests,
       mfa.verify_failures, mfa.deliveries
    TO mfa_worker;
-- The audit trail is append-only for the workers.
GRANT SELECT, INSERT ON mfa.audit TO mfa_worker;
-- The SMS worker reads the provider settings, sealed secret included;
-- only operators write them.
GRANT SELECT ON mfa.settings TO mfa_worker;
GRANT SELECT ON mfa.schema_migrations TO mfa_worker;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA mfa TO mfa_worker;

GRANT UPDATE (outputs) ON mfa.inbox TO mfa_worker;
-- Every column but the key and created_at, listed one by one: the CRM
-- data with email/phone and their statuses (mfa-contact-sync) and
-- phone_sms_blocked (mfa-sms).
GRANT UPDATE (organization_id, display_name, locale, country,
              email, email_status, email_reason, email_confirmed,
              phone_e164, phone_status, phone_reason, phone_type,
              phone_sms_capable, phone_sms_blocked,
              enabled, last_applied_at, updated_at)
    ON mfa.users TO mfa_worker;
-- Not contact_id, ip, user_agent, created_at, max_attempts, expires_at:
-- a challenge's owner, budget and lifetime are fixed when it opens.
GRANT UPDATE (status, methods, verified_at, locked_at, tries,
              last_code_at, sends)
    ON mfa.logins TO mfa_worker;
-- A code's hash, key and lifetime never change; it only ends.
GRANT UPDATE (superseded_at, used_at) ON mfa.codes TO mfa_worker;
GRANT UPDATE (outcome) ON mfa.code_requests TO mfa_worker;
GRANT UPDATE (status, attempts, last_error, provider_message_id,
              possible_duplicate, sent_at, finished_at, updated_at)
    ON mfa.deliveries TO mfa_worker;

---------------------------------------------------------------- mfa_portal
-- The three views and nothing else: no table, no sequence, no function.
GRANT SELECT ON mfa.portal_users, mfa.login_status, mfa.delivery_status
    TO mfa_portal;

-------------------------------------------------------------- mfa_operator
GRANT SELECT ON mfa.portal_users, mfa.login_status, mfa.delivery_status
    TO mfa_operator;
-- SMS settings management: write everything, read everything but the
-- sealed secret (an operator can replace or clear it, never read it back).
GRANT SELECT (name, value, updated_at, updated_by) ON mfa.settings
    TO mfa_operator;
GRANT INSERT, UPDATE, DELETE ON mfa.settings TO mfa_operator;
