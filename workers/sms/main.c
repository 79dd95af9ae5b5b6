/*
 * main.c - mfa-sms: sends verification codes by SMS through Twilio's
 * Messages API, many requests in flight from one loop (curl multi).
 *
 * Consumes mfa.dispatch.sms (dispatch.code from mfa-codes). Everything
 * else is the shared runtime (shared/runtime) and handler.c, loop.c,
 * store.c; the Twilio client is shared/mfa/twilio.c (mfactl uses it too).
 */
#include "runtime/topology.h"
#include "sms.h"

static void
sms_data_free(void *data)
{
    sms_job_free(data);
}

int
main(int argc, char **argv)
{
    static const struct worker_spec spec = {
        .name = "mfa-sms",
        .queue = MFA_Q_DISPATCH_SMS,
        .summary = "Sends verification codes by SMS (Twilio).",
        .init = sms_init,
        .fini = sms_fini,
        .handle = sms_handle,
        .poll_fill = sms_poll_fill,
        .poll_run = sms_poll_run,
        .inflight = sms_inflight,
        .data_free = sms_data_free,
        .batch_max = 50,
        .batch_read = dispatch_batch_read,
        .batch_result = dispatch_batch_result,
        .batch_done = dispatch_batch_done,
    };

    return worker_main(argc, argv, &spec);
}
