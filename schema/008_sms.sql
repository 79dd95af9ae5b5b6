-- 008_sms.sql - what `mfactl settings sms` needs as mfa_operator.
--
-- 004 already lets operators write mfa.settings (INSERT, UPDATE, DELETE)
-- and read it without the sealed secret, and 090 adds mfa.settings_state
-- (secret_set instead of the secret) for `settings sms show`. What is
-- missing is the audit row that set, clear and test write in the same
-- transaction (actor 'mfactl', never a secret): operators may append to
-- the audit trail, never change or delete it, like the workers (004).
--
-- `settings sms test` has to open the stored secret, so it needs SELECT on
-- secret_sealed, which operators deliberately do not get: it runs with
-- the workers' role (or an administrator's). mfa_worker already has
-- SELECT on mfa.settings (004) and UPDATE (phone_sms_blocked) on
-- mfa.users for mfa-sms's 21610/21614 handling; nothing to add for it.

GRANT INSERT ON mfa.audit TO mfa_operator;
GRANT USAGE ON SEQUENCE mfa.audit_id_seq TO mfa_operator;

COMMENT ON COLUMN mfa.settings.secret_sealed IS
    'Client secret sealed with the master key (XChaCha20-Poly1305, AD '
    '"settings:sms"); written by mfactl, read by mfa-sms, never by operators.';
