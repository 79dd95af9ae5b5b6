-- 005_codes.sql - what mfa-codes relies on beyond 003_logins.sql.
--
-- The tables of 003 already fit mfa-codes; this file pins down the
-- meanings the worker gives to their columns, so a later reader (or
-- another writer) cannot drift from them:
--
-- mfa.code_requests.outcome  every request for a known login is recorded
--                            with the reply's status. Only 'sent' rows
--                            count toward the send limits (rate limits
--                            count requests, not deliveries: a code that
--                            is issued counts at once, whatever becomes of
--                            its email or SMS); refused requests are kept
--                            for the audit and do not extend a cooldown.
-- mfa.logins.tries           counted before the compare, in one
--                            conditional UPDATE, for every submission on
--                            an open login (so also for a malformed or
--                            expired code); the login locks on the try
--                            that leaves no attempts.
-- mfa.logins.status          'cancelled' also for a login.started that
--                            found no usable method (reply no_method): the
--                            attempt stays visible in mfa.login_status.
--
-- No new privileges: mfa_worker's column grants of 004 cover what
-- mfa-codes writes (logins: status, verified_at, locked_at, tries,
-- last_code_at, sends; codes: superseded_at, used_at).

ALTER TABLE mfa.code_requests DROP CONSTRAINT IF EXISTS code_requests_outcome_chk;
ALTER TABLE mfa.code_requests ADD CONSTRAINT code_requests_outcome_chk
    CHECK (outcome IN ('sent', 'rate_limited', 'method_unavailable',
                       'expired', 'locked'));

-- The per-user and per-number windows look only at accepted sends.
CREATE INDEX IF NOT EXISTS code_requests_contact_sent
    ON mfa.code_requests (contact_id, created_at) WHERE outcome = 'sent';
CREATE INDEX IF NOT EXISTS code_requests_dest_sent
    ON mfa.code_requests (dest_hash, created_at)
    WHERE outcome = 'sent' AND channel = 'sms';

COMMENT ON COLUMN mfa.code_requests.outcome IS
    'Reply status of the request; only sent counts toward the send limits.';
COMMENT ON COLUMN mfa.logins.tries IS
    'Submissions counted (before the compare) on this login; locks at max_attempts.';
