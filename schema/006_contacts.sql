-- 006_contacts.sql - what mfa-contact-sync keeps beside the CRM's values.
--
-- phone_input   the phone number exactly as the CRM sent it (valid or not).
--               A number in national form ("020 123 4567") means another
--               number in another country, so when the CRM changes only the
--               contact's country the worker reads the stored input again
--               for the new region. Never in a view: like phone_e164 it is
--               written by mfa_worker only.
-- email_set_at  occurred_at of the CRM event that set the current email. A
--               user.email_confirmed older than it confirmed an earlier
--               address and is ignored as stale. (Confirmations are compared
--               with this and not with last_applied_at: a display-name
--               change must not make a genuine confirmation stale.)
--
-- Privileges: INSERT on mfa.users is table-wide for mfa_worker (004), so it
-- covers these columns; UPDATE is per column and granted here. mfa_portal
-- and mfa_operator get nothing on mfa.users (004).

ALTER TABLE mfa.users ADD COLUMN IF NOT EXISTS phone_input text;
ALTER TABLE mfa.users ADD COLUMN IF NOT EXISTS email_set_at timestamptz;

-- The envelope refuses longer phone fields (64 characters); a row that
-- holds one was not written by the worker.
ALTER TABLE mfa.users DROP CONSTRAINT IF EXISTS users_phone_input_chk;
ALTER TABLE mfa.users ADD CONSTRAINT users_phone_input_chk
    CHECK (char_length(phone_input) BETWEEN 1 AND 64);

GRANT UPDATE (phone_input, email_set_at) ON mfa.users TO mfa_worker;

COMMENT ON COLUMN mfa.users.phone_input IS
    'Phone as the CRM sent it; re-read when the country changes. Worker only.';
COMMENT ON COLUMN mfa.users.email_set_at IS
    'occurred_at of the event that set the current email (confirmation order).';
