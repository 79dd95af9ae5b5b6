/*
 * cmd_user.c - `mfactl user show CONTACT_ID [--json]`: one portal user as
 * support sees it: masked email and phone with their status, the methods
 * the portal would offer right now and why not, the last logins and the
 * last deliveries.
 *
 * The decision is mfa-codes' own (mfa/methods.h, methods_decide()), fed
 * from the operator views of schema/090 so this works as mfa_operator:
 * support sees exactly what the login flow would offer.
 *
 * Security notes: email and phone are shown masked (addr_email_mask,
 * phone_mask), also inside a provider's error text, which often quotes
 * the recipient. No code, hash or secret is read.
 */
#include "ctl/ctl.h"
#include "mfa/addr.h"
#include "mfa/methods.h"
#include "mfa/phone.h"
#include "mfa/scrub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#define USER_RECENT 10

/* Times are shown as RFC 3339 UTC: to_char(x AT TIME ZONE 'UTC',
 * 'YYYY-MM-DD"T"HH24:MI:SS"Z"'). */
static const char SQL_USER[] =
    "SELECT contact_id, organization_id, display_name, locale, email, "
    " email_status, email_reason, email_confirmed, phone_e164, phone_status, "
    " phone_reason, phone_type, phone_sms_capable, phone_sms_blocked, "
    " enabled, "
    " to_char(created_at AT TIME ZONE 'UTC',"
    "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    " to_char(updated_at AT TIME ZONE 'UTC',"
    "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
    "FROM mfa.operator_users WHERE contact_id = $1";
enum {
    U_ID,
    U_ORG,
    U_NAME,
    U_LOCALE,
    U_EMAIL,
    U_EMAIL_ST,
    U_EMAIL_WHY,
    U_EMAIL_OK,
    U_PHONE,
    U_PHONE_ST,
    U_PHONE_WHY,
    U_PHONE_TYPE,
    U_SMS_CAP,
    U_SMS_BLOCK,
    U_ENABLED,
    U_CREATED,
    U_UPDATED
};

static const char SQL_SMS[] =
    "SELECT value::text, secret_set FROM mfa.settings_state "
    "WHERE name = 'sms'";

static const char SQL_LOGINS[] =
    "SELECT login_id, "
    " to_char(created_at AT TIME ZONE 'UTC',"
    "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    " status, array_to_string(methods, ','), tries, max_attempts, sends, "
    " to_char(verified_at AT TIME ZONE 'UTC',"
    "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
    "FROM mfa.operator_logins WHERE contact_id = $1 "
    "ORDER BY created_at DESC LIMIT 10";

/* Notices have no login; codes are found through the login as well, in
 * case a producer left contact_id empty. */
static const char SQL_DELIVERIES[] =
    "SELECT "
    " to_char(created_at AT TIME ZONE 'UTC',"
    "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    " kind, channel, status, attempts, "
    " to_char(sent_at AT TIME ZONE 'UTC',"
    "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    " last_error, possible_duplicate "
    "FROM mfa.operator_deliveries "
    "WHERE contact_id = $1 OR login_id IN "
    " (SELECT login_id FROM mfa.operator_logins WHERE contact_id = $1) "
    "ORDER BY created_at DESC LIMIT 10";

static int
user_true(const char *v)
{
    return v != NULL && strcmp(v, "t") == 0;
}

static int
user_int(const char *v)
{
    return v != NULL ? (int)strtol(v, NULL, 10) : 0;
}

static const char *
user_str(const char *v)
{
    return v != NULL ? v : "";
}

/* The facts methods_decide() needs, from the user row and the settings. */
static void
user_facts(const PGresult *u, const PGresult *sms, struct method_facts *f)
{
    memset(f, 0, sizeof(*f));
    f->found = 1;
    f->enabled = user_true(db_get(u, 0, U_ENABLED));
    f->email = db_get(u, 0, U_EMAIL);
    f->email_status = db_get(u, 0, U_EMAIL_ST);
    f->email_reason = db_get(u, 0, U_EMAIL_WHY);
    f->email_confirmed = user_true(db_get(u, 0, U_EMAIL_OK));
    f->phone_e164 = db_get(u, 0, U_PHONE);
    f->phone_status = db_get(u, 0, U_PHONE_ST);
    f->phone_reason = db_get(u, 0, U_PHONE_WHY);
    f->phone_sms_capable = user_true(db_get(u, 0, U_SMS_CAP));
    f->phone_sms_blocked = db_get(u, 0, U_SMS_BLOCK);
    f->sms_settings_complete =
        PQntuples(sms) > 0 &&
        methods_sms_settings_complete(db_get(sms, 0, 0),
                                      user_true(db_get(sms, 0, 1)));
}

static void
user_json_str(struct json_object *o, const char *key, const char *v)
{
    json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

static struct json_object *
user_json(const PGresult *u, const struct methods *m, const char *email,
          const char *phone, const PGresult *lg, const PGresult *dl)
{
    struct json_object *o = json_object_new_object();
    struct json_object *meth = json_object_new_object();
    struct json_object *la = json_object_new_array();
    struct json_object *da = json_object_new_array();
    char scrubbed[512];

    user_json_str(o, "contact_id", db_get(u, 0, U_ID));
    user_json_str(o, "organization_id", db_get(u, 0, U_ORG));
    user_json_str(o, "display_name", db_get(u, 0, U_NAME));
    user_json_str(o, "locale", db_get(u, 0, U_LOCALE));
    json_object_object_add(o, "enabled", json_object_new_boolean(m->enabled));
    user_json_str(o, "email", email[0] ? email : NULL);
    user_json_str(o, "email_status", db_get(u, 0, U_EMAIL_ST));
    user_json_str(o, "email_reason", db_get(u, 0, U_EMAIL_WHY));
    json_object_object_add(
        o, "email_confirmed",
        json_object_new_boolean(user_true(db_get(u, 0, U_EMAIL_OK))));
    user_json_str(o, "phone", phone[0] ? phone : NULL);
    user_json_str(o, "phone_status", db_get(u, 0, U_PHONE_ST));
    user_json_str(o, "phone_reason", db_get(u, 0, U_PHONE_WHY));
    user_json_str(o, "phone_type", db_get(u, 0, U_PHONE_TYPE));
    user_json_str(o, "phone_sms_blocked", db_get(u, 0, U_SMS_BLOCK));
    for (int k = 0; k < METHOD_COUNT; k++) {
        struct json_object *x = json_object_new_object();

        json_object_object_add(x, "offered",
                               json_object_new_boolean(m->offered[k]));
        user_json_str(x, "why", m->offered[k] ? NULL : m->why[k]);
        json_object_object_add(meth, method_name((enum method_id)k), x);
    }
    json_object_object_add(o, "methods", meth);
    for (int r = 0; r < PQntuples(lg); r++) {
        struct json_object *x = json_object_new_object();

        user_json_str(x, "login_id", db_get(lg, r, 0));
        user_json_str(x, "created_at", db_get(lg, r, 1));
        user_json_str(x, "status", db_get(lg, r, 2));
        user_json_str(x, "methods", db_get(lg, r, 3));
        json_object_object_add(x, "tries",
                               json_object_new_int(user_int(db_get(lg, r, 4))));
        json_object_object_add(x, "max_attempts",
                               json_object_new_int(user_int(db_get(lg, r, 5))));
        json_object_object_add(x, "sends",
                               json_object_new_int(user_int(db_get(lg, r, 6))));
        user_json_str(x, "verified_at", db_get(lg, r, 7));
        json_object_array_add(la, x);
    }
    json_object_object_add(o, "logins", la);
    for (int r = 0; r < PQntuples(dl); r++) {
        struct json_object *x = json_object_new_object();

        user_json_str(x, "created_at", db_get(dl, r, 0));
        user_json_str(x, "kind", db_get(dl, r, 1));
        user_json_str(x, "channel", db_get(dl, r, 2));
        user_json_str(x, "status", db_get(dl, r, 3));
        json_object_object_add(x, "attempts",
                               json_object_new_int(user_int(db_get(dl, r, 4))));
        user_json_str(x, "sent_at", db_get(dl, r, 5));
        if (db_get(dl, r, 6) != NULL) {
            scrub_text(db_get(dl, r, 6), scrubbed, sizeof(scrubbed));
            user_json_str(x, "last_error", scrubbed);
        } else {
            user_json_str(x, "last_error", NULL);
        }
        json_object_object_add(
            x, "possible_duplicate",
            json_object_new_boolean(user_true(db_get(dl, r, 7))));
        json_object_array_add(da, x);
    }
    json_object_object_add(o, "deliveries", da);
    return o;
}

static void
user_print(const PGresult *u, const struct methods *m, const char *email,
           const char *phone, const PGresult *lg, const PGresult *dl)
{
    char scrubbed[512];

    printf("contact       %s (organization %s)\n", db_get(u, 0, U_ID),
           user_str(db_get(u, 0, U_ORG)));
    printf("name          %s\n", user_str(db_get(u, 0, U_NAME)));
    printf("enabled       %s\n", m->enabled ? "yes" : "no (demoted)");
    printf("email         %s (%s%s)\n", email[0] ? email : "-",
           user_str(db_get(u, 0, U_EMAIL_ST)),
           user_true(db_get(u, 0, U_EMAIL_OK)) ? ", confirmed"
           : email[0]                          ? ", not confirmed"
                                               : "");
    if (db_get(u, 0, U_EMAIL_WHY))
        printf("              reason: %s\n", db_get(u, 0, U_EMAIL_WHY));
    printf("phone         %s (%s%s%s)\n", phone[0] ? phone : "-",
           user_str(db_get(u, 0, U_PHONE_ST)),
           db_get(u, 0, U_PHONE_TYPE) ? ", " : "",
           user_str(db_get(u, 0, U_PHONE_TYPE)));
    if (db_get(u, 0, U_PHONE_WHY))
        printf("              reason: %s\n", db_get(u, 0, U_PHONE_WHY));
    if (db_get(u, 0, U_SMS_BLOCK))
        printf("              SMS blocked by the provider: %s\n",
               db_get(u, 0, U_SMS_BLOCK));
    printf("updated       %s\n", user_str(db_get(u, 0, U_UPDATED)));
    for (int k = 0; k < METHOD_COUNT; k++) {
        const char *name = method_name((enum method_id)k);
        const char *why = m->why[k];
        size_t nl = strlen(name);

        /* "sms: settings incomplete" reads "sms  not offered: settings
         * incomplete" here. */
        if (strncmp(why, name, nl) == 0 && why[nl] == ':')
            why += nl + 1 + (why[nl + 1] == ' ');
        printf("%-13s %-5s %s%s\n", k == 0 ? "methods now" : "", name,
               m->offered[k] ? "offered" : "NOT offered: ",
               m->offered[k] ? "" : why);
    }

    printf("\nLOGINS (last %d)\n", USER_RECENT);
    if (PQntuples(lg) == 0)
        printf("  none\n");
    else
        printf("%-36s  %-20s  %-9s  %-9s  %5s  %5s\n", "LOGIN_ID", "CREATED",
               "STATUS", "METHODS", "TRIES", "SENDS");
    for (int r = 0; r < PQntuples(lg); r++)
        printf("%-36s  %-20s  %-9s  %-9s  %2s/%-2s  %5s\n", db_get(lg, r, 0),
               db_get(lg, r, 1), db_get(lg, r, 2),
               user_str(db_get(lg, r, 3))[0] ? db_get(lg, r, 3) : "-",
               db_get(lg, r, 4), db_get(lg, r, 5), db_get(lg, r, 6));

    printf("\nDELIVERIES (last %d)\n", USER_RECENT);
    if (PQntuples(dl) == 0)
        printf("  none\n");
    else
        printf("%-20s  %-6s  %-7s  %-7s  %8s  %-20s  %s\n", "CREATED", "KIND",
               "CHANNEL", "STATUS", "ATTEMPTS", "SENT", "LAST_ERROR");
    for (int r = 0; r < PQntuples(dl); r++) {
        const char *err = db_get(dl, r, 6);

        if (err != NULL)
            scrub_text(err, scrubbed, sizeof(scrubbed));
        printf("%-20s  %-6s  %-7s  %-7s  %8s  %-20s  %s%s\n", db_get(dl, r, 0),
               db_get(dl, r, 1), db_get(dl, r, 2), db_get(dl, r, 3),
               db_get(dl, r, 4), db_get(dl, r, 5) ? db_get(dl, r, 5) : "-",
               err ? scrubbed : "-",
               user_true(db_get(dl, r, 7)) ? " (possible duplicate)" : "");
    }
}

static int
user_show(struct ctl *c, const char *contact_id, int as_json)
{
    const char *p[1] = {contact_id};
    PGresult *u = NULL, *sms = NULL, *lg = NULL, *dl = NULL;
    struct method_facts f;
    struct methods m;
    struct db *db = ctl_db(c);
    char email[ADDR_EMAIL_MAX + 8], phone[32];
    int rc = 1;

    if (db == NULL)
        return 1;
    u = db_query(db, SQL_USER, 1, p);
    if (u == NULL)
        goto dberr;
    if (PQntuples(u) == 0) {
        fprintf(stderr, "mfactl user: no portal user with contact_id %s\n",
                contact_id);
        goto out;
    }
    sms = db_query(db, SQL_SMS, 0, NULL);
    lg = sms ? db_query(db, SQL_LOGINS, 1, p) : NULL;
    dl = lg ? db_query(db, SQL_DELIVERIES, 1, p) : NULL;
    if (dl == NULL)
        goto dberr;
    user_facts(u, sms, &f);
    methods_decide(&f, &c->cfg.phone.sms_allowed_regions, &m);
    email[0] = phone[0] = '\0';
    if (db_get(u, 0, U_EMAIL))
        addr_email_mask(db_get(u, 0, U_EMAIL), email, sizeof(email));
    if (db_get(u, 0, U_PHONE))
        phone_mask(db_get(u, 0, U_PHONE), phone, sizeof(phone));
    if (as_json) {
        struct json_object *o = user_json(u, &m, email, phone, lg, dl);

        printf("%s\n", json_object_to_json_string_ext(
                           o, JSON_C_TO_STRING_PRETTY |
                                  JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
    } else {
        user_print(u, &m, email, phone, lg, dl);
    }
    /* methods_decide() copies the destinations of offered methods. */
    memset(&m, 0, sizeof(m));
    rc = 0;
    goto out;
dberr:
    fprintf(stderr, "mfactl user: %s\n", db->errmsg);
out:
    PQclear(u);
    PQclear(sms);
    PQclear(lg);
    PQclear(dl);
    db_free(db);
    return rc;
}

int
cmd_user(struct ctl *c, int argc, char **argv)
{
    const char *id = NULL;
    int as_json = 0;
    int bad = argc < 3 || strcmp(argv[1], "show") != 0;

    for (int i = 2; i < argc && !bad; i++) {
        if (strcmp(argv[i], "--json") == 0)
            as_json = 1;
        else if (argv[i][0] != '-' && id == NULL)
            id = argv[i];
        else
            bad = 1;
    }
    if (bad || id == NULL) {
        fprintf(stderr, "usage: mfactl user show CONTACT_ID [--json]\n");
        return 2;
    }
    return user_show(c, id, as_json);
}
