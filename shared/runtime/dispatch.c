/*
 * dispatch.c - a dispatch job's common steps (see dispatch.h).
 *
 * Callers: mfa-email and mfa-sms (workers/email/handler.c,
 * workers/sms/handler.c), from their handlers inside the runtime's
 * transaction and from their completions, which run in a transaction of
 * their own after the provider answered. Rows, audit entries and results
 * are written together, so a rolled-back job leaves none of them.
 * dispatch_setup is their init hooks' (workers/email/loop.c,
 * workers/sms/loop.c).
 *
 * Security notes: no code, secret or clear address passes through here.
 * Audit details and result events get ids, reasons and the masked
 * recipient only; reasons are the workers' texts (scrubbed provider
 * answers, masked addresses). job_fail() texts reach logs and dead-letter
 * headers, so they name ids, never event data.
 */
#include "runtime/dispatch.h"
#include "mfa/audit.h"
#include "runtime/topology.h"
#include "util/log.h"

#include <stdio.h>
#include <string.h>

int
dispatch_setup(const struct mfa_config *cfg, const struct tmpl_file *files,
               size_t nfiles, struct tmpl_set **tmpl, struct curlm **curlm)
{
    char err[512];

    *curlm = NULL;
    *tmpl = tmpl_load(cfg->templates.dir, cfg->templates.default_locale, files,
                      nfiles, err, sizeof(err));
    if (*tmpl == NULL) {
        log_error("%s", err);
        return -1;
    }
    *curlm = curlm_new();
    if (*curlm == NULL) {
        log_error("libcurl: cannot create a multi handle");
        tmpl_free(*tmpl);
        *tmpl = NULL;
        return -1;
    }
    return 0;
}

enum mfa_verdict
dispatch_db_fail(struct job *job)
{
    job_fail(job, "database: %s", job_db(job)->errmsg);
    return MFA_RETRY;
}

void
dispatch_detail_add(struct json_object *d, const char *key, const char *val)
{
    if (val != NULL && *val)
        json_object_object_add(d, key, json_object_new_string(val));
}

int
dispatch_check(struct job *job, const struct dispatch_target *t,
               const char *what, enum mfa_verdict *v)
{
    struct delivery del;
    int rc = delivery_get(job_db(job), t->delivery_id, 0, &del);

    if (rc < 0) {
        *v = dispatch_db_fail(job);
        return -1;
    }
    if (rc == 0) {
        job_fail(job, "no delivery %s", t->delivery_id);
        *v = MFA_REJECT;
        return -1;
    }
    if (strcmp(del.kind, t->notice ? "notice" : "code") != 0 ||
        strcmp(del.channel, t->channel) != 0 ||
        (t->login_id && strcmp(del.login_id, t->login_id) != 0)) {
        job_fail(job, "delivery %s is not %s for this login", t->delivery_id,
                 what);
        *v = MFA_REJECT;
        return -1;
    }
    if (delivery_is_final(del.status)) {
        /* A duplicate or a replay from the dead-letter queue. */
        log_kv(LOGL_INFO, "delivery already final; nothing sent", "delivery_id",
               t->delivery_id, "status", del.status, NULL);
        *v = MFA_OK;
        return 0;
    }
    return 1;
}

int
dispatch_code_alive(struct job *job, const struct dispatch_target *t,
                    long min_remaining_s, struct delivery_code *code,
                    enum mfa_verdict *v)
{
    int rc =
        delivery_code_get(job_db(job), t->delivery_id, min_remaining_s, code);

    if (rc < 0) {
        *v = dispatch_db_fail(job);
        return -1;
    }
    if (rc == 0) {
        code->reason = "no code for this delivery";
        snprintf(code->why, sizeof(code->why), "%s", code->reason);
        return 0;
    }
    if (code->reason != NULL)
        return 0;
    if (strcmp(code->contact_id, t->contact_id) != 0) {
        job_fail(job, "contact_id does not match the login's user");
        *v = MFA_REJECT;
        return -1;
    }
    return 1;
}

int
dispatch_audit(struct job *job, const struct dispatch_target *t,
               const char *action, struct json_object *detail)
{
    char actor[24];
    int rc;

    snprintf(actor, sizeof(actor), "mfa-%s", t->channel);
    rc = audit_write(
        job_db(job), actor, action, t->contact_id, t->login_id,
        job_event(job)->event_id,
        json_object_to_json_string_ext(detail, JSON_C_TO_STRING_PLAIN));
    json_object_put(detail);
    return rc;
}

void
dispatch_result(struct job *job, const struct dispatch_target *t,
                const char *what, const char *error, const char *provider_id)
{
    struct json_object *d = json_object_new_object();
    char type[32];

    snprintf(type, sizeof(type), "%s.%s", t->notice ? "notice" : "code", what);
    json_object_object_add(d, "delivery_id",
                           json_object_new_string(t->delivery_id));
    if (t->notice) {
        json_object_object_add(d, "contact_id",
                               json_object_new_string(t->contact_id));
        json_object_object_add(d, "template",
                               json_object_new_string("contact_changed"));
    } else {
        json_object_object_add(d, "login_id",
                               json_object_new_string(t->login_id));
    }
    json_object_object_add(d, "channel", json_object_new_string(t->channel));
    dispatch_detail_add(d, "error", error);
    dispatch_detail_add(d, "provider_message_id", provider_id);
    job_emit(job, MFA_EX_RESULTS, type, type, d);
}

enum mfa_verdict
dispatch_end(struct job *job, const struct dispatch_target *t,
             const char *status, const char *reason, int attempted)
{
    int dropped = strcmp(status, "dropped") == 0;
    struct json_object *a;
    char action[24];

    if (delivery_final(job_db(job), t->delivery_id, status, reason,
                       attempted) != 0)
        return dispatch_db_fail(job);
    a = json_object_new_object();
    dispatch_detail_add(a, "delivery_id", t->delivery_id);
    dispatch_detail_add(a, "to", t->to_masked);
    dispatch_detail_add(a, dropped ? "reason" : "error", reason);
    snprintf(action, sizeof(action), "%s.%s", t->channel, status);
    if (dispatch_audit(job, t, action, a) != 0)
        return dispatch_db_fail(job);
    dispatch_result(job, t, dropped ? "dropped" : "failed", reason, NULL);
    return MFA_OK;
}

enum mfa_verdict
dispatch_sent(struct job *job, const struct dispatch_target *t,
              const char *provider_id, int possible_duplicate)
{
    struct json_object *a;
    char action[24];

    if (delivery_sent(job_db(job), t->delivery_id, provider_id) != 0)
        return dispatch_db_fail(job);
    a = json_object_new_object();
    dispatch_detail_add(a, "delivery_id", t->delivery_id);
    dispatch_detail_add(a, "to", t->to_masked);
    dispatch_detail_add(a, "provider_message_id", provider_id);
    if (possible_duplicate)
        json_object_object_add(a, "possible_duplicate",
                               json_object_new_boolean(1));
    snprintf(action, sizeof(action), "%s.sent", t->channel);
    if (dispatch_audit(job, t, action, a) != 0)
        return dispatch_db_fail(job);
    dispatch_result(job, t, "sent", NULL, provider_id);
    return MFA_OK;
}
