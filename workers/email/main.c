/*
 * main.c - mfa-email: sends verification codes and change notices by
 * email (SMTP through libcurl), many sessions in flight from one loop.
 *
 * Consumes mfa.dispatch.email (dispatch.code from mfa-codes,
 * dispatch.notice from mfa-contact-sync). Everything else is the shared
 * runtime (shared/runtime) and handler.c, loop.c, smtp.c.
 */
#include "email.h"
#include "runtime/topology.h"

int
main(int argc, char **argv)
{
    static const struct worker_spec spec = {
        .name = "mfa-email",
        .queue = MFA_Q_DISPATCH_EMAIL,
        .summary = "Sends verification codes and notices by email (SMTP).",
        .init = email_init,
        .fini = email_fini,
        .handle = email_handle,
        .poll_fill = email_poll_fill,
        .poll_run = email_poll_run,
        .inflight = email_inflight,
        .data_free = free,
        .batch_max = 50,
        .batch_read = dispatch_batch_read,
        .batch_result = dispatch_batch_result,
        .batch_done = dispatch_batch_done,
    };

    return worker_main(argc, argv, &spec);
}
