-- 002_core.sql - idempotency inbox, audit trail, portal users, settings.
--
-- Privileges are granted in 004_views.sql, once every table exists.

-- One row per processed event and consumer, written in the same
-- transaction as the event's effect; outputs holds the replies and
-- follow-up publishes so a redelivered duplicate gets the same answer.
CREATE TABLE mfa.inbox (
    consumer    text NOT NULL,
    event_id    uuid NOT NULL,
    event_type  text,
    received_at timestamptz NOT NULL DEFAULT now(),
    outputs     jsonb,
    PRIMARY KEY (consumer, event_id)
);

-- Every security-relevant step: who (actor: a worker name or an operator),
-- what, when. Never a code, a secret or an unmasked destination: detail
-- holds statuses and masks only. Append-only for the workers (no UPDATE,
-- no DELETE; see 004).
CREATE TABLE mfa.audit (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    action     text NOT NULL,
    contact_id text,
    login_id   uuid,
    event_id   uuid,
    detail     jsonb
);
CREATE INDEX audit_contact_at ON mfa.audit (contact_id, at);
CREATE INDEX audit_login ON mfa.audit (login_id) WHERE login_id IS NOT NULL;

-- Portal users, from the CRM's contact events only. A destination is
-- stored only when it is usable: an invalid email or phone leaves the
-- column NULL with the reason beside it, so the method is simply not
-- offered. The checks make that a property of the table, not a habit of
-- the code that writes it.
CREATE TABLE mfa.users (
    contact_id        text PRIMARY KEY,
    organization_id   text NOT NULL,
    display_name      text,
    locale            text,
    country           text,
    email             text,
    email_status      text NOT NULL DEFAULT 'missing',
    email_reason      text,
    email_confirmed   boolean NOT NULL DEFAULT false,
    phone_e164        text,
    phone_status      text NOT NULL DEFAULT 'missing',
    phone_reason      text,
    phone_type        text,
    phone_sms_capable boolean NOT NULL DEFAULT false,
    -- why SMS must not be offered to this number although it is valid,
    -- e.g. '21610 unsubscribed'; set by the SMS worker from Twilio's
    -- answer, cleared when the CRM changes the phone
    phone_sms_blocked text,
    enabled           boolean NOT NULL DEFAULT true,
    -- occurred_at of the last applied CRM event (older events are stale)
    last_applied_at   timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT users_email_status_chk
        CHECK (email_status IN ('valid', 'invalid', 'missing')),
    CONSTRAINT users_phone_status_chk
        CHECK (phone_status IN ('valid', 'invalid', 'missing')),
    -- a destination exactly when it is valid
    CONSTRAINT users_email_valid_chk
        CHECK ((email IS NOT NULL) = (email_status = 'valid')),
    CONSTRAINT users_phone_valid_chk
        CHECK ((phone_e164 IS NOT NULL) = (phone_status = 'valid')),
    CONSTRAINT users_phone_e164_chk
        CHECK (phone_e164 ~ '^\+[1-9][0-9]{1,14}$'),
    CONSTRAINT users_email_confirmed_chk
        CHECK (NOT email_confirmed OR email IS NOT NULL),
    CONSTRAINT users_sms_capable_chk
        CHECK (NOT phone_sms_capable OR phone_status = 'valid'),
    CONSTRAINT users_country_chk
        CHECK (country ~ '^[A-Z]{2}$')
);
CREATE INDEX users_organization ON mfa.users (organization_id);

-- System-wide settings, today the SMS provider's (Twilio Account SID,
-- From number in value; the client secret only sealed with the master
-- key in secret_sealed). Managed by operators with mfactl; operators may
-- write the sealed secret but not read it back (see 004).
CREATE TABLE mfa.settings (
    name          text PRIMARY KEY,
    value         jsonb,
    secret_sealed text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    text
);
