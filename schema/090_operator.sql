-- 090_operator.sql - what mfactl reads as mfa_operator (status, metrics,
-- user show), through read-only views like those of 004.
--
-- 004 gives operators the portal's three views and the SMS settings
-- without the sealed secret. An operator also needs to know *why* a
-- method is not offered (the email's and phone's status and reason, a
-- phone blocked by Twilio), whether the SMS secret is set (without
-- reading it), a user's notices as well as code deliveries, and the
-- lockouts and wrong tries for monitoring. Nothing here exposes a code
-- hash, a sealed secret, the raw CRM phone input or a destination hash.
--
-- Like 004's views these are owned by the migrating superuser and read
-- the tables with its rights; an INSTEAD OF trigger (004's function)
-- makes them read-only.

CREATE VIEW mfa.operator_users AS
SELECT contact_id, organization_id, display_name, locale, country,
       email, email_status, email_reason, email_confirmed,
       phone_e164, phone_status, phone_reason, phone_type,
       phone_sms_capable, phone_sms_blocked,
       enabled, created_at, updated_at
  FROM mfa.users;

-- secret_set says whether a sealed secret is stored; the secret itself
-- stays unreadable for operators (004).
CREATE VIEW mfa.settings_state AS
SELECT name, value, secret_sealed IS NOT NULL AS secret_set,
       updated_at, updated_by
  FROM mfa.settings;

CREATE VIEW mfa.operator_deliveries AS
SELECT delivery_id, login_id, contact_id, channel, kind, status, attempts,
       last_error, possible_duplicate, created_at, sent_at, finished_at
  FROM mfa.deliveries;

CREATE VIEW mfa.operator_logins AS
SELECT login_id, contact_id,
       CASE WHEN status IN ('pending', 'code_sent') AND expires_at < now()
            THEN 'expired'
            ELSE status
       END AS status,
       methods, ip, created_at, expires_at, verified_at, locked_at,
       tries, max_attempts, sends
  FROM mfa.logins;

COMMENT ON VIEW mfa.operator_users IS
    'Portal users with the reasons a method is not offered (operators).';
COMMENT ON VIEW mfa.settings_state IS
    'System settings; secret_set instead of the sealed secret (operators).';
COMMENT ON VIEW mfa.operator_deliveries IS
    'Every delivery, codes and notices (operators).';
COMMENT ON VIEW mfa.operator_logins IS
    'Login challenges with their counters (operators).';

CREATE TRIGGER operator_users_read_only
    INSTEAD OF INSERT OR UPDATE OR DELETE ON mfa.operator_users
    FOR EACH ROW EXECUTE FUNCTION mfa.view_read_only();
CREATE TRIGGER settings_state_read_only
    INSTEAD OF INSERT OR UPDATE OR DELETE ON mfa.settings_state
    FOR EACH ROW EXECUTE FUNCTION mfa.view_read_only();
CREATE TRIGGER operator_deliveries_read_only
    INSTEAD OF INSERT OR UPDATE OR DELETE ON mfa.operator_deliveries
    FOR EACH ROW EXECUTE FUNCTION mfa.view_read_only();
CREATE TRIGGER operator_logins_read_only
    INSTEAD OF INSERT OR UPDATE OR DELETE ON mfa.operator_logins
    FOR EACH ROW EXECUTE FUNCTION mfa.view_read_only();

REVOKE ALL ON mfa.operator_users, mfa.settings_state,
    mfa.operator_deliveries, mfa.operator_logins FROM PUBLIC;
GRANT SELECT ON mfa.operator_users, mfa.settings_state,
    mfa.operator_deliveries, mfa.operator_logins TO mfa_operator;
-- The audit trail holds statuses and masks only, the failures ledger ids
-- and times: both are for operators to read, never to write.
GRANT SELECT ON mfa.audit, mfa.verify_failures TO mfa_operator;

-- mfactl metrics counts the last hour's logins, verifications and wrong
-- tries every minute or so: without these it would read whole tables.
CREATE INDEX IF NOT EXISTS logins_created ON mfa.logins (created_at);
CREATE INDEX IF NOT EXISTS verify_failures_at ON mfa.verify_failures (at);
