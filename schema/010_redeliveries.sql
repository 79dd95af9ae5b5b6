-- 010_redeliveries.sql - runs of redelivered messages on classic queues.
--
-- A quorum queue dead-letters a message after x-delivery-limit deliveries;
-- a classic queue has no such counter, so a message that kills its worker
-- every time would come back forever. The runtime (shared/runtime/
-- redeliver.c) counts each run of a redelivered message here, committed
-- before the run, and dead-letters it past amqp.delivery_limit runs. The
-- row goes once the message has been handled or dead-lettered.

CREATE TABLE mfa.redeliveries (
    consumer text NOT NULL,
    event_id uuid NOT NULL,
    runs     integer NOT NULL CHECK (runs > 0),
    last_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

REVOKE ALL ON mfa.redeliveries FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON mfa.redeliveries TO mfa_worker;
GRANT SELECT ON mfa.redeliveries TO mfa_operator;
