/*
 * mfa-testworker - a worker for testing the runtime itself (tests only).
 *
 * Consumes $MFA_TEST_QUEUE (default mfa.contact-sync) with the real
 * skeleton and a handler whose behaviour the test chooses through the
 * event's data.display_name (or data.code, for login events):
 *   "retry"     -> MFA_RETRY (transient failure, reason "test: transient")
 *   "reject"    -> MFA_REJECT
 *   "slow:N"    -> write the effect, then sleep N ms inside the transaction
 *   "dirty-reject" -> write the effect, then MFA_REJECT (the runtime must
 *                  undo this job's effect and keep its batch-mates')
 *   "sqlerror"  -> a statement fails (division by zero), then MFA_RETRY
 *   "crash"     -> the process kills itself (SIGKILL) on this message
 *   anything    -> write the effect row, reply {"status":"ok"}, emit
 *                  test.done to mfa.results
 * The effect is a row in mfa_test.effects(event_id), created by the tests.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/topology.h"
#include "runtime/worker.h"

static enum mfa_verdict
test_handle(struct job *job)
{
    const struct envelope *ev = job_event(job);
    const char *name = NULL;
    const char *p[1] = {ev->event_id};
    struct json_object *v;

    if (json_object_object_get_ex(ev->data, "display_name", &v) ||
        json_object_object_get_ex(ev->data, "code", &v))
        name = json_object_get_string(v);
    if (name && strcmp(name, "retry") == 0) {
        job_fail(job, "test: transient");
        return MFA_RETRY;
    }
    if (name && strcmp(name, "reject") == 0) {
        job_fail(job, "test: rejected");
        return MFA_REJECT;
    }
    if (name && strcmp(name, "crash") == 0)
        kill(getpid(), SIGKILL); /* dies on it, every time */
    if (name && strcmp(name, "sqlerror") == 0) {
        if (db_exec(job_db(job), "SELECT 1/0", 0, NULL) != 0)
            job_fail(job, "test: %s", job_db(job)->errmsg);
        else
            job_fail(job, "test: the statement did not fail");
        return MFA_RETRY;
    }
    if (db_exec(job_db(job),
                "INSERT INTO mfa_test.effects (event_id) VALUES ($1)", 1,
                p) != 0) {
        job_fail(job, "effect: %s", job_db(job)->errmsg);
        return MFA_RETRY;
    }
    if (name && strcmp(name, "dirty-reject") == 0) {
        job_fail(job, "test: rejected after writing");
        return MFA_REJECT;
    }
    if (name && strncmp(name, "slow:", 5) == 0) {
        long ms = strtol(name + 5, NULL, 10);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

        nanosleep(&ts, NULL);
    }
    {
        struct json_object *r = json_object_new_object();

        json_object_object_add(r, "status", json_object_new_string("ok"));
        job_reply(job, r);
    }
    {
        struct json_object *d = json_object_new_object();

        json_object_object_add(d, "for", json_object_new_string(ev->event_id));
        job_emit(job, MFA_EX_RESULTS, "test.done", "test.done", d);
    }
    return MFA_OK;
}

int
main(int argc, char **argv)
{
    static struct worker_spec spec = {
        .name = "mfa-testworker",
        .queue = MFA_Q_CONTACT_SYNC,
        .summary = "Runtime test worker (tests only).",
        .handle = test_handle,
        .batch_max = 50,
    };
    const char *q = getenv("MFA_TEST_QUEUE");

    if (q && *q)
        spec.queue = q;
    return worker_main(argc, argv, &spec);
}
