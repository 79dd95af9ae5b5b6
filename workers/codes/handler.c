/*
 * handler.c - mfa-codes: one event of mfa.login, by type.
 *
 * Called by the runtime (worker_spec.handle) inside the transaction that
 * claimed the inbox row, so a duplicate event_id never gets here twice:
 * the runtime re-sends the reply stored with the first processing. Also
 * the helpers the three event files share: audit rows (written by
 * shared/mfa/audit.c), reply objects, database-error verdicts, and the
 * owner lookup that takes the first lock of a login's events.
 * Security notes: audit details carry statuses, ids and masked
 * destinations only; job_fail() texts end up in logs and dead-letter
 * headers, so they never quote event data (a typed code above all).
 */
#include "codes.h"
#include "mfa/audit.h"

#include <stdio.h>
#include <stdlib.h>

/* A login's contact_id always names a user (foreign key), so no row means
 * no such login. */
static const char SQL_OWNER_LOCK[] =
    "SELECT u.contact_id FROM mfa.users u "
    "WHERE u.contact_id = (SELECT l.contact_id FROM mfa.logins l "
    " WHERE l.login_id = $1) "
    "FOR NO KEY UPDATE OF u";

const struct mfa_config *
codes_cfg(struct job *job)
{
    return worker_config(job_worker(job));
}

enum mfa_verdict
codes_dberr(struct job *job, const char *what)
{
    job_fail(job, "%s: %s", what, job_db(job)->errmsg);
    return MFA_RETRY;
}

int
codes_audit(struct job *job, const char *action, const char *contact_id,
            const char *login_id, struct json_object *detail)
{
    return audit_event(job_db(job), CODES_ACTOR, action, contact_id, login_id,
                       job_event(job), detail);
}

struct json_object *
codes_reply_new(const char *login_id, const char *status)
{
    struct json_object *r = json_object_new_object();

    json_object_object_add(r, "login_id", json_object_new_string(login_id));
    json_object_object_add(r, "status", json_object_new_string(status));
    return r;
}

double
codes_num(const char *v, double dflt)
{
    char *end;
    double d;

    if (v == NULL || *v == '\0')
        return dflt;
    d = strtod(v, &end);
    return *end == '\0' ? d : dflt;
}

int
codes_owner_lock(struct job *job, const char *login_id, char *contact_id,
                 const struct db_stmt *next, PGresult **res)
{
    const char *p[1] = {login_id};
    struct db_stmt st[2] = {{SQL_OWNER_LOCK, 1, p, NULL}, *next};
    int n;

    contact_id[0] = '\0';
    *res = NULL;
    n = db_pipeline(job_db(job), st, 2);
    if (n == 2) {
        if (PQntuples(st[0].res) == 1)
            snprintf(contact_id, CODES_CONTACT_MAX, "%s",
                     db_get(st[0].res, 0, 0));
        *res = st[1].res;
        st[1].res = NULL;
    }
    PQclear(st[0].res);
    PQclear(st[1].res);
    return n == 2 ? 0 : -1;
}

const char *
codes_batch_key(const struct envelope *ev)
{
    switch (ev->type) {
    case EV_LOGIN_STARTED: return ev->u.login_started.login_id;
    case EV_LOGIN_CODE_REQUESTED: return ev->u.code_requested.login_id;
    case EV_LOGIN_CODE_SUBMITTED: return ev->u.code_submitted.login_id;
    default: return NULL;
    }
}

enum mfa_verdict
codes_handle(struct job *job)
{
    const struct envelope *ev = job_event(job);

    switch (ev->type) {
    case EV_LOGIN_STARTED: return codes_login_started(job);
    case EV_LOGIN_CODE_REQUESTED: return codes_code_requested(job);
    case EV_LOGIN_CODE_SUBMITTED: return codes_code_submitted(job);
    default:
        /* Routed here by mistake (a binding or a producer bug): it will
         * never succeed here, so dead-letter it now. */
        job_fail(job, "mfa-codes does not handle %s events",
                 ev->type_name ? ev->type_name : "unknown");
        return MFA_REJECT;
    }
}
