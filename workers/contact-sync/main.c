/*
 * mfa-contact-sync - applies the CRM's contact events to the portal users.
 *
 * Consumes mfa.contact-sync (contact.promoted, contact.changed,
 * contact.demoted, user.email_confirmed); the handler lives in handler.c.
 * Everything else (AMQP, transactions, inbox, retries, shutdown) is the
 * shared runtime's. Writes email and phone columns as mfa_worker, the only
 * role allowed to.
 */
#include "runtime/topology.h"
#include "runtime/worker.h"

#include "handler.h"

int
main(int argc, char **argv)
{
    static const struct worker_spec spec = {
        .name = "mfa-contact-sync",
        .queue = MFA_Q_CONTACT_SYNC,
        .summary = "Applies CRM contact events (promotion, changes, "
                   "demotion, email confirmation) to the portal users.",
        .handle = contact_handle,
        /* Contact events are small SQL units; a batch shares one COMMIT. */
        .batch_max = 100,
    };

    return worker_main(argc, argv, &spec);
}
