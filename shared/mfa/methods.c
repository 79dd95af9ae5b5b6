/*
 * methods.c - the verification methods a portal user may be offered.
 *
 * Callers: workers/codes (login.started, login.code_requested), mfactl
 * (user show), unit tests (methods_decide, methods_sms_settings_complete).
 * Security notes: reasons are for operators and logs, so they never hold
 * a full address or number (the stored phone_reason and block reason do
 * not echo the number: see phone.h and the SMS worker); the destinations
 * copied into struct methods are personal data and leave only masked
 * (methods_hints). The SMS secret itself is never read: only whether it
 * is there.
 */
#include "mfa/methods.h"
#include "mfa/phone.h"
#include "mfa/policy.h"

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

/* The user's row and, in one round trip, the SMS settings row. */
static const char SQL_FACTS[] = "SELECT " METHODS_FACTS_SQL "FROM mfa.users u "
                                "LEFT JOIN mfa.settings s ON s.name = 'sms' "
                                "WHERE u.contact_id = $1";

static const char *const method_names[METHOD_COUNT] = {"email", "sms"};

const char *
method_name(enum method_id m)
{
    if ((int)m < 0 || m >= METHOD_COUNT)
        return NULL;
    return method_names[m];
}

int
method_from_name(const char *name)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i < METHOD_COUNT; i++) {
        if (strcmp(name, method_names[i]) == 0)
            return i;
    }
    return -1;
}

/* A string member with something besides blanks in it. */
static int
methods_has_text(struct json_object *o, const char *key)
{
    struct json_object *v;
    const char *s;

    if (!json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return 0;
    for (s = json_object_get_string(v); *s; s++) {
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return 1;
    }
    return 0;
}

/*
 * The workers read the settings row on every event and it hardly ever
 * changes: the answer for the last text seen (per thread, when it fits)
 * saves parsing it again. A changed row is a different text, so an
 * operator's change still counts at once. (The value holds no secret:
 * that is the sealed column, of which only its presence is read.)
 */
#define METHODS_MEMO_MAX 512
static _Thread_local char methods_memo_json[METHODS_MEMO_MAX];
static _Thread_local int methods_memo_ok;

int
methods_sms_settings_complete(const char *value_json, int has_secret)
{
    struct json_object *o;
    size_t len;
    int ok;

    if (value_json == NULL || !has_secret)
        return 0;
    len = strlen(value_json);
    if (len > 0 && len < METHODS_MEMO_MAX &&
        memcmp(methods_memo_json, value_json, len + 1) == 0)
        return methods_memo_ok;
    o = json_tokener_parse(value_json);
    ok = o != NULL && json_object_is_type(o, json_type_object) &&
         methods_has_text(o, "client_id") &&
         methods_has_text(o, "account_sid") && methods_has_text(o, "from");
    json_object_put(o);
    if (len > 0 && len < METHODS_MEMO_MAX) {
        memcpy(methods_memo_json, value_json, len + 1);
        methods_memo_ok = ok;
    }
    return ok;
}

static int
methods_is(const char *a, const char *b)
{
    return a != NULL && strcmp(a, b) == 0;
}

static void
methods_email(const struct method_facts *f, struct methods *out)
{
    char *why = out->why[METHOD_EMAIL];

    if (methods_is(f->email_status, "invalid"))
        snprintf(why, METHOD_WHY_MAX, "email: invalid: %s",
                 f->email_reason ? f->email_reason : "unknown reason");
    else if (f->email == NULL || !methods_is(f->email_status, "valid"))
        snprintf(why, METHOD_WHY_MAX, "email: missing");
    else if (!f->email_confirmed)
        snprintf(why, METHOD_WHY_MAX, "email: not confirmed");
    else if (strlen(f->email) >= sizeof(out->email))
        snprintf(why, METHOD_WHY_MAX, "email: too long");
    else {
        out->offered[METHOD_EMAIL] = 1;
        snprintf(out->email, sizeof(out->email), "%s", f->email);
    }
}

/* The user's own reasons come first: they say what to fix for this user,
 * while the settings are the same for everyone (mfactl settings sms show). */
static void
methods_sms(const struct method_facts *f, const struct cfg_strlist *allowed,
            struct methods *out)
{
    char *why = out->why[METHOD_SMS];
    char region[3] = "";

    /* "" when the number has no geographic region: never in a list. */
    if (f->phone_e164 != NULL && phone_region_of(f->phone_e164, region) != 0)
        region[0] = '\0';
    if (methods_is(f->phone_status, "invalid"))
        snprintf(why, METHOD_WHY_MAX, "sms: phone invalid: %s",
                 f->phone_reason ? f->phone_reason : "unknown reason");
    else if (f->phone_e164 == NULL || !methods_is(f->phone_status, "valid"))
        snprintf(why, METHOD_WHY_MAX, "sms: phone missing");
    else if (!f->phone_sms_capable)
        snprintf(why, METHOD_WHY_MAX, "sms: not a mobile number");
    else if (f->phone_sms_blocked != NULL)
        snprintf(why, METHOD_WHY_MAX, "sms: blocked (%.100s)",
                 f->phone_sms_blocked);
    else if (!policy_region_allowed(region, allowed))
        snprintf(why, METHOD_WHY_MAX, "sms: region %s not allowed",
                 region[0] ? region : "unknown");
    else if (!f->sms_settings_complete)
        snprintf(why, METHOD_WHY_MAX, "sms: settings incomplete");
    else if (strlen(f->phone_e164) >= sizeof(out->phone))
        snprintf(why, METHOD_WHY_MAX, "sms: phone invalid: too long");
    else {
        out->offered[METHOD_SMS] = 1;
        snprintf(out->phone, sizeof(out->phone), "%s", f->phone_e164);
        memcpy(out->region, region, sizeof(out->region));
    }
}

void
methods_decide(const struct method_facts *f, const struct cfg_strlist *allowed,
               struct methods *out)
{
    memset(out, 0, sizeof(*out));
    if (!f->found) {
        snprintf(out->why[METHOD_EMAIL], METHOD_WHY_MAX, "email: unknown user");
        snprintf(out->why[METHOD_SMS], METHOD_WHY_MAX, "sms: unknown user");
        return;
    }
    out->found = 1;
    out->enabled = f->enabled;
    /* A disabled user's methods are still worked out (mfactl shows them);
     * the caller refuses the login itself. */
    methods_email(f, out);
    methods_sms(f, allowed, out);
}

static int
methods_bool(const char *v)
{
    return v != NULL && v[0] == 't';
}

void
methods_from_row(const PGresult *res, int row, int col,
                 const struct cfg_strlist *allowed, struct methods *out)
{
    struct method_facts f;

    memset(&f, 0, sizeof(f));
    f.found = 1;
    f.enabled = methods_bool(db_get(res, row, col + 0));
    f.email = db_get(res, row, col + 1);
    f.email_status = db_get(res, row, col + 2);
    f.email_reason = db_get(res, row, col + 3);
    f.email_confirmed = methods_bool(db_get(res, row, col + 4));
    f.phone_e164 = db_get(res, row, col + 5);
    f.phone_status = db_get(res, row, col + 6);
    f.phone_reason = db_get(res, row, col + 7);
    f.phone_sms_capable = methods_bool(db_get(res, row, col + 8));
    f.phone_sms_blocked = db_get(res, row, col + 9);
    f.sms_settings_complete = methods_sms_settings_complete(
        db_get(res, row, col + 10), methods_bool(db_get(res, row, col + 11)));
    /* f points into res: decide while it is there. */
    methods_decide(&f, allowed, out);
}

int
methods_check(struct db *db, const char *contact_id,
              const struct cfg_strlist *allowed, struct methods *out)
{
    const char *p[1] = {contact_id};
    struct method_facts none;
    PGresult *res;

    res = db_query(db, SQL_FACTS, 1, p);
    if (res == NULL) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    if (PQntuples(res) == 1) {
        methods_from_row(res, 0, 0, allowed, out);
    } else {
        memset(&none, 0, sizeof(none));
        methods_decide(&none, allowed, out);
    }
    PQclear(res);
    return 0;
}

int
methods_count(const struct methods *m)
{
    int n = 0;

    for (int i = 0; i < METHOD_COUNT; i++)
        n += m->offered[i] != 0;
    return n;
}

void
methods_hints(const struct methods *m, char *email_hint, size_t en,
              char *phone_hint, size_t pn)
{
    if (en > 0)
        email_hint[0] = '\0';
    if (pn > 0)
        phone_hint[0] = '\0';
    if (m->offered[METHOD_EMAIL] && en > 0)
        addr_email_mask(m->email, email_hint, en);
    if (m->offered[METHOD_SMS] && pn > 0)
        phone_mask(m->phone, phone_hint, pn);
}
