-- 003_logins.sql - login challenges, codes, rate-limit ledgers, deliveries.
--
-- Codes are stored only as keyed hashes (key_id names the hash key so it
-- can rotate). Destinations in the rate-limit ledger are keyed hashes too:
-- no table here holds a code or a phone number in clear.

CREATE TABLE mfa.logins (
    login_id     uuid PRIMARY KEY,
    contact_id   text NOT NULL REFERENCES mfa.users (contact_id),
    status       text NOT NULL,
    methods      text[] NOT NULL,
    ip           text,
    user_agent   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    verified_at  timestamptz,
    locked_at    timestamptz,
    -- wrong tries are counted (in their own statement) before the compare
    tries        integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    last_code_at timestamptz,
    sends        integer NOT NULL DEFAULT 0,

    CONSTRAINT logins_status_chk CHECK (status IN
        ('pending', 'code_sent', 'verified', 'locked', 'expired',
         'cancelled')),
    CONSTRAINT logins_methods_chk
        CHECK (methods <@ ARRAY['email', 'sms']::text[]),
    CONSTRAINT logins_counters_chk
        CHECK (tries >= 0 AND sends >= 0 AND max_attempts > 0)
);
-- open logins of a contact (demotion cancels them), newest first
CREATE INDEX logins_contact ON mfa.logins (contact_id, created_at);

CREATE TABLE mfa.codes (
    code_id       bigserial PRIMARY KEY,
    login_id      uuid NOT NULL
                  REFERENCES mfa.logins (login_id) ON DELETE CASCADE,
    delivery_id   uuid NOT NULL UNIQUE,
    channel       text NOT NULL CHECK (channel IN ('email', 'sms')),
    code_hash     bytea NOT NULL,
    key_id        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    superseded_at timestamptz,
    used_at       timestamptz
);
-- One live code per login: a resend supersedes the old code in the same
-- transaction before inserting the new one, and this index makes a second
-- live code impossible (an expired but unused code still counts until it
-- is superseded). It is also the index the verify lookup uses.
CREATE UNIQUE INDEX codes_live ON mfa.codes (login_id)
    WHERE used_at IS NULL AND superseded_at IS NULL;

-- Every code request, whatever its outcome: rate limits count requests,
-- not deliveries. dest_hash is a keyed hash of the destination (never the
-- address or number) for the per-number daily SMS limit.
CREATE TABLE mfa.code_requests (
    id         bigserial PRIMARY KEY,
    login_id   uuid REFERENCES mfa.logins (login_id) ON DELETE SET NULL,
    contact_id text NOT NULL,
    channel    text NOT NULL CHECK (channel IN ('email', 'sms')),
    dest_hash  bytea,
    region     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    outcome    text
);
CREATE INDEX code_requests_contact ON mfa.code_requests (contact_id, created_at);
CREATE INDEX code_requests_dest ON mfa.code_requests (dest_hash, created_at)
    WHERE dest_hash IS NOT NULL;
CREATE INDEX code_requests_login ON mfa.code_requests (login_id, created_at);

-- Wrong codes per user across all of that user's logins (the hourly
-- budget that stops parallel logins from multiplying the guesses).
CREATE TABLE mfa.verify_failures (
    id         bigserial PRIMARY KEY,
    contact_id text NOT NULL,
    login_id   uuid REFERENCES mfa.logins (login_id) ON DELETE SET NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX verify_failures_contact ON mfa.verify_failures (contact_id, at);

-- One row per message to send (a code or a notice), written by the
-- worker that queues it and advanced by the dispatch worker. attempts
-- counts provider calls; last_error carries the provider's code and text.
CREATE TABLE mfa.deliveries (
    delivery_id         uuid PRIMARY KEY,
    login_id            uuid
                        REFERENCES mfa.logins (login_id) ON DELETE SET NULL,
    contact_id          text,
    channel             text NOT NULL CHECK (channel IN ('email', 'sms')),
    kind                text NOT NULL CHECK (kind IN ('code', 'notice')),
    status              text NOT NULL DEFAULT 'queued'
                        CHECK (status IN ('queued', 'sent', 'failed',
                                          'dropped')),
    attempts            integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error          text,
    provider_message_id text,
    -- an ambiguous provider failure (5xx/timeout after sending) was
    -- retried once: the recipient may have two messages
    possible_duplicate  boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz,
    finished_at         timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_login ON mfa.deliveries (login_id)
    WHERE login_id IS NOT NULL;
CREATE INDEX deliveries_contact ON mfa.deliveries (contact_id, created_at);
CREATE INDEX deliveries_created ON mfa.deliveries (created_at);
