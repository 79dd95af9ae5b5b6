/*
 * mfa-codes - login challenges: offers methods, issues codes, verifies.
 *
 * Consumes mfa.login (login.started, login.code_requested,
 * login.code_submitted) and answers each on its reply_to; codes leave
 * sealed for mfa-email / mfa-sms through mfa.dispatch, outcomes go to
 * mfa.results. The handler lives in handler.c and its three siblings;
 * AMQP, transactions, the inbox, retries and shutdown are the runtime's.
 */
#include "runtime/topology.h"
#include "runtime/worker.h"

#include "codes.h"

int
main(int argc, char **argv)
{
    static const struct worker_spec spec = {
        .name = "mfa-codes",
        .queue = MFA_Q_LOGIN,
        .summary = "Opens login challenges, issues verification codes and "
                   "verifies them.",
        .handle = codes_handle,
        /* Small SQL units: a batch shares one COMMIT. Row locks are held
         * to the batch's end, so keep it moderate for competing workers. */
        .batch_max = 50,
        .batch_key = codes_batch_key,
        .batch_read = codes_batch_read,
        .batch_result = codes_batch_result,
        .batch_done = codes_batch_done,
        .batch_read_locks = 1,
    };

    return worker_main(argc, argv, &spec);
}
