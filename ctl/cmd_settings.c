/*
 * cmd_settings.c - `mfactl settings sms set|show|clear|test`: the
 * system-wide Twilio settings (Client ID, Client Secret, From number).
 *
 *   set --client-id ID --from NUMBER [--account-sid AC...]
 *        the secret from $MFA_SMS_CLIENT_SECRET or stdin (a prompt
 *        without echo on a terminal), never from argv; everything is
 *        checked (twilio_account_check) before it is stored, and the
 *        From number's validity too (phone_check): mfa-sms checks only
 *        its form, to run without libphonenumber
 *   show [--json]   the settings with the secret shown only as "set"
 *   clear [--yes]   asks first unless --yes (or stdin answers y)
 *   test --to NUMBER
 *        one SMS through the worker's own client code (mfa/twilio.c);
 *        prints Twilio's answer with the Message SID
 *
 * The row layout is mfa/sms_settings.h's; mfa-sms reads it for every job
 * and mfa-codes offers SMS only while it is complete, so set and clear
 * take effect without restarting anything. set, clear and test write an
 * audit row (actor "mfactl") in the same transaction.
 *
 * Security notes: the secret is sealed with the master key (keys_load:
 * set and test need it) before it reaches the database, and wiped from
 * memory right after; show reads mfa.settings_state, which an operator
 * may read, and never the sealed secret. test needs a role that may read
 * secret_sealed (the workers'), since operators cannot. Audit rows and
 * output hold no secret; phone numbers in audit rows are masked.
 */
#include "ctl/ctl.h"
#include "mfa/audit.h"
#include "mfa/phone.h"
#include "mfa/sms_settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>

#define SETTINGS_SECRET_ENV "MFA_SMS_CLIENT_SECRET"

/* The database role that ran the command: who did it, as far as the
 * database can tell (operators log in with their own roles). */
static const char SQL_DB_USER[] = "SELECT session_user::text";

static void
settings_usage(FILE *out)
{
    fprintf(out,
            "usage: mfactl settings sms set --client-id ID --from NUMBER "
            "[--account-sid AC...]\n"
            "           (the client secret from $%s or stdin)\n"
            "       mfactl settings sms show [--json]\n"
            "       mfactl settings sms clear [--yes]\n"
            "       mfactl settings sms test --to NUMBER\n",
            SETTINGS_SECRET_ENV);
}

/* Options of the four verbs; unknown ones are usage errors. */
struct settings_opts {
    const char *client_id, *account_sid, *from, *to;
    int yes, json;
};

static int
settings_parse(int argc, char **argv, struct settings_opts *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;

        if (strcmp(a, "--client-id") == 0 && more)
            o->client_id = argv[++i];
        else if (strcmp(a, "--account-sid") == 0 && more)
            o->account_sid = argv[++i];
        else if (strcmp(a, "--from") == 0 && more)
            o->from = argv[++i];
        else if (strcmp(a, "--to") == 0 && more)
            o->to = argv[++i];
        else if (strcmp(a, "--yes") == 0)
            o->yes = 1;
        else if (strcmp(a, "--json") == 0)
            o->json = 1;
        else
            return -1;
    }
    return 0;
}

/*
 * The secret: $MFA_SMS_CLIENT_SECRET, else one line of stdin (prompted,
 * without echo, on a terminal). 0, or -1 with a message printed.
 */
static int
settings_read_secret(char *out, size_t cap)
{
    const char *env = getenv(SETTINGS_SECRET_ENV);
    struct termios old, quiet;
    int tty = isatty(STDIN_FILENO), echo_off = 0;
    size_t n;

    out[0] = '\0';
    if (env != NULL && env[0] != '\0') {
        if (strlen(env) >= cap) {
            fprintf(stderr, "mfactl settings: $%s is too long\n",
                    SETTINGS_SECRET_ENV);
            return -1;
        }
        snprintf(out, cap, "%s", env);
        return 0;
    }
    if (tty) {
        fprintf(stderr, "Twilio client secret (not shown): ");
        if (tcgetattr(STDIN_FILENO, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            echo_off = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
        }
    }
    if (fgets(out, (int)cap, stdin) == NULL)
        out[0] = '\0';
    if (echo_off) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    n = strlen(out);
    if (n == cap - 1 && out[n - 1] != '\n') {
        sodium_memzero(out, cap);
        fprintf(stderr, "mfactl settings: the client secret is too long\n");
        return -1;
    }
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

/* The audit row of a verb (actor mfactl); d gets db_user added. */
static int
settings_audit(struct db *db, const char *action, struct json_object *d)
{
    PGresult *res = db_query(db, SQL_DB_USER, 0, NULL);
    const char *who;

    if (res == NULL)
        return -1;
    who = PQntuples(res) == 1 ? db_get(res, 0, 0) : NULL;
    if (who != NULL)
        json_object_object_add(d, "db_user", json_object_new_string(who));
    PQclear(res);
    return audit_write(
        db, "mfactl", action, NULL, NULL, NULL,
        json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN));
}

static struct mfa_keys *
settings_keys(struct ctl *c)
{
    char err[512];
    struct mfa_keys *k = keys_load(c->cfg.keys.master_key_file,
                                   c->cfg.keys.master_key, err, sizeof(err));

    if (k == NULL)
        fprintf(stderr, "mfactl settings: %s\n", err);
    return k;
}

/*
 * What twilio_account_check leaves to us: the From number valid per
 * libphonenumber and written exactly in its E.164 form. Checked here, once,
 * before the row is stored, rather than in every mfa-sms process. 0, or -1
 * with err.
 */
static int
settings_from_check(const char *from, char *err, size_t errlen)
{
    struct phone_result ph;

    if (phone_check(from, NULL, &ph) == 0 && ph.status == PHONE_VALID &&
        strcmp(ph.e164, from) == 0)
        return 0;
    /* phone_check's reasons never quote the input. */
    snprintf(err, errlen,
             "from: must be a valid phone number in E.164 form such as "
             "+15005550006%s%s%s",
             ph.reason[0] ? " (" : "", ph.reason, ph.reason[0] ? ")" : "");
    return -1;
}

static int
settings_set(struct ctl *c, const struct settings_opts *o)
{
    char secret[TWILIO_SECRET_MAX + 2], err[300], masked[32];
    struct twilio_account acct;
    struct mfa_keys *keys = NULL;
    struct json_object *d = NULL;
    struct db *db = NULL;
    int rc = 1;

    memset(&acct, 0, sizeof(acct));
    if (o->client_id == NULL || o->from == NULL || o->to || o->yes || o->json) {
        settings_usage(stderr);
        return 2;
    }
    if (settings_read_secret(secret, sizeof(secret)) != 0)
        goto out;
    if (twilio_account_check(o->client_id, o->account_sid, o->from, secret,
                             &acct, err, sizeof(err)) != 0 ||
        settings_from_check(acct.from, err, sizeof(err)) != 0) {
        fprintf(stderr, "mfactl settings: %s\n", err);
        goto out;
    }
    sodium_memzero(secret, sizeof(secret));
    if ((keys = settings_keys(c)) == NULL || (db = ctl_db(c)) == NULL)
        goto out;
    phone_mask(acct.from, masked, sizeof(masked));
    d = json_object_new_object();
    json_object_object_add(d, "client_id",
                           json_object_new_string(acct.client_id));
    json_object_object_add(d, "account_sid",
                           json_object_new_string(acct.account_sid));
    json_object_object_add(d, "from", json_object_new_string(masked));
    if (db_begin(db) != 0 ||
        sms_settings_save(db, keys, &acct, "mfactl") != 0 ||
        settings_audit(db, "settings.sms.set", d) != 0 || db_commit(db) != 0) {
        fprintf(stderr, "mfactl settings: database: %s\n", db->errmsg);
        db_rollback(db);
        goto out;
    }
    printf("sms settings stored: client id %s (%s), account %s, from %s, "
           "secret set\n",
           acct.client_id, acct.client_id[0] == 'S' ? "API key" : "Account SID",
           acct.account_sid, acct.from);
    rc = 0;
out:
    sodium_memzero(secret, sizeof(secret));
    twilio_account_wipe(&acct);
    json_object_put(d);
    db_free(db);
    keys_free(keys);
    return rc;
}

static int
settings_show(struct ctl *c, const struct settings_opts *o)
{
    struct sms_settings_view v;
    struct db *db;
    int complete;

    if (o->client_id || o->account_sid || o->from || o->to || o->yes) {
        settings_usage(stderr);
        return 2;
    }
    if ((db = ctl_db(c)) == NULL)
        return 1;
    if (sms_settings_show(db, &v) != 0) {
        fprintf(stderr, "mfactl settings: database: %s\n", db->errmsg);
        db_free(db);
        return 1;
    }
    db_free(db);
    complete = v.found && v.secret_set && v.client_id[0] && v.account_sid[0] &&
               v.from[0];
    if (o->json) {
        struct json_object *j = json_object_new_object();

        json_object_object_add(j, "complete",
                               json_object_new_boolean(complete));
        if (v.found) {
            json_object_object_add(j, "client_id",
                                   json_object_new_string(v.client_id));
            json_object_object_add(j, "account_sid",
                                   json_object_new_string(v.account_sid));
            json_object_object_add(j, "from", json_object_new_string(v.from));
            json_object_object_add(
                j, "secret",
                json_object_new_string(v.secret_set ? "set" : "not set"));
            json_object_object_add(j, "updated_at",
                                   json_object_new_string(v.updated_at));
            json_object_object_add(j, "updated_by",
                                   json_object_new_string(v.updated_by));
        }
        printf("%s\n", json_object_to_json_string_ext(
                           j, JSON_C_TO_STRING_PRETTY |
                                  JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(j);
        return 0;
    }
    if (!v.found) {
        printf("sms settings: not set (SMS is not offered)\n");
        return 0;
    }
    printf("sms settings: %s\n",
           complete ? "complete" : "incomplete (SMS is not offered)");
    printf("  client id:    %s%s\n", v.client_id[0] ? v.client_id : "-",
           v.client_id[0] == 'S'   ? " (API key)"
           : v.client_id[0] == 'A' ? " (Account SID)"
                                   : "");
    printf("  account sid:  %s\n", v.account_sid[0] ? v.account_sid : "-");
    printf("  from:         %s\n", v.from[0] ? v.from : "-");
    /* Never more than whether it is there: operators cannot read it. */
    printf("  secret:       %s\n", v.secret_set ? "set" : "not set");
    printf("  updated:      %s by %s\n", v.updated_at,
           v.updated_by[0] ? v.updated_by : "?");
    return 0;
}

/* Asks on stderr, reads y/yes from stdin. */
static int
settings_confirm(void)
{
    char line[16];

    fprintf(stderr, "Clear the SMS settings? SMS will no longer be offered. "
                    "[y/N] ");
    if (fgets(line, sizeof(line), stdin) == NULL)
        return 0;
    line[strcspn(line, "\r\n")] = '\0';
    return strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0;
}

static int
settings_clear(struct ctl *c, const struct settings_opts *o)
{
    struct json_object *d;
    struct db *db;
    int n, rc = 1;

    if (o->client_id || o->account_sid || o->from || o->to || o->json) {
        settings_usage(stderr);
        return 2;
    }
    if (!o->yes && !settings_confirm()) {
        fprintf(stderr, "mfactl settings: not cleared\n");
        return 1;
    }
    if ((db = ctl_db(c)) == NULL)
        return 1;
    d = json_object_new_object();
    if (db_begin(db) != 0 || (n = sms_settings_clear(db)) < 0) {
        fprintf(stderr, "mfactl settings: database: %s\n", db->errmsg);
        db_rollback(db);
        goto out;
    }
    json_object_object_add(d, "existed", json_object_new_boolean(n > 0));
    if (settings_audit(db, "settings.sms.clear", d) != 0 ||
        db_commit(db) != 0) {
        fprintf(stderr, "mfactl settings: database: %s\n", db->errmsg);
        db_rollback(db);
        goto out;
    }
    printf(n > 0 ? "sms settings cleared; SMS is no longer offered\n"
                 : "sms settings were not set; nothing to clear\n");
    rc = 0;
out:
    json_object_put(d);
    db_free(db);
    return rc;
}

/* Runs the request the worker would make, blocking: fine for a CLI. */
static int
settings_send(struct ctl *c, const struct twilio_account *acct, const char *to,
              struct twilio_result *res)
{
    struct twilio_call call;
    struct twilio_msg m;
    char body[160], err[300], errbuf[CURL_ERROR_SIZE] = "";
    CURLcode code;
    CURL *easy;
    int rc = -1;

    memset(&call, 0, sizeof(call));
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        (easy = curl_easy_init()) == NULL) {
        fprintf(stderr, "mfactl settings: libcurl does not initialise\n");
        return -1;
    }
    snprintf(body, sizeof(body),
             "%s: test message from mfactl; the SMS "
             "settings work.",
             c->cfg.templates.portal_name);
    memset(&m, 0, sizeof(m));
    m.to = to;
    m.body = body;
    m.validity_s = 600;
    m.status_callback = c->cfg.sms.status_callback;
    if (twilio_call_prepare(&call, &c->cfg.sms, acct, err, sizeof(err)) != 0 ||
        twilio_call_start(&call, easy, &c->cfg.sms, &m, err, sizeof(err))) {
        fprintf(stderr, "mfactl settings: %s\n", err);
        goto out;
    }
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errbuf);
    code = curl_easy_perform(easy);
    twilio_call_result(&call, code, errbuf, res);
    rc = 0;
out:
    twilio_call_clear(&call);
    curl_easy_cleanup(easy);
    curl_global_cleanup();
    return rc;
}

static int
settings_test(struct ctl *c, const struct settings_opts *o)
{
    struct twilio_account acct;
    struct twilio_result res;
    struct phone_result ph;
    struct mfa_keys *keys = NULL;
    struct json_object *d = NULL;
    struct db *db = NULL;
    char why[300], masked[32], http[16];
    int rc = 1, n;

    memset(&acct, 0, sizeof(acct));
    if (o->to == NULL || o->client_id || o->account_sid || o->from || o->yes ||
        o->json) {
        settings_usage(stderr);
        return 2;
    }
    if (phone_check(o->to, NULL, &ph) != 0 || ph.status != PHONE_VALID ||
        strcmp(ph.e164, o->to) != 0) {
        fprintf(stderr, "mfactl settings: --to must be a valid number in "
                        "E.164 form (+ and digits)\n");
        return 2;
    }
    if ((keys = settings_keys(c)) == NULL || (db = ctl_db(c)) == NULL)
        goto out;
    n = sms_settings_load(db, keys, &acct, why, sizeof(why));
    if (n != 1) {
        fprintf(stderr, "mfactl settings: %s\n", why);
        if (n == -1 && strcmp(db->sqlstate, "42501") == 0)
            fprintf(stderr, "mfactl settings: test opens the stored secret: "
                            "run it with a role that may read "
                            "mfa.settings.secret_sealed (the workers')\n");
        goto out;
    }
    if (settings_send(c, &acct, o->to, &res) != 0)
        goto out;
    printf("twilio: HTTP %ld, %s\n", res.http,
           twilio_outcome_name(res.outcome));
    if (res.sid[0])
        printf("  message sid:  %s\n", res.sid);
    if (res.status[0])
        printf("  status:       %s\n", res.status);
    if (res.outcome != TWILIO_SENT)
        printf("  error:        %s\n", res.text);
    if (res.outcome == TWILIO_AUTH)
        printf("  the Client ID or secret is wrong: set them again\n");
    phone_mask(o->to, masked, sizeof(masked));
    snprintf(http, sizeof(http), "%ld", res.http);
    d = json_object_new_object();
    json_object_object_add(d, "to", json_object_new_string(masked));
    json_object_object_add(d, "http", json_object_new_string(http));
    json_object_object_add(
        d, "outcome", json_object_new_string(twilio_outcome_name(res.outcome)));
    json_object_object_add(d, "provider_message_id",
                           json_object_new_string(res.sid));
    if (settings_audit(db, "settings.sms.test", d) != 0)
        fprintf(stderr, "mfactl settings: audit: %s\n", db->errmsg);
    rc = res.outcome == TWILIO_SENT ? 0 : 1;
out:
    twilio_account_wipe(&acct);
    json_object_put(d);
    db_free(db);
    keys_free(keys);
    return rc;
}

int
cmd_settings(struct ctl *c, int argc, char **argv)
{
    struct settings_opts o;

    if (argc < 3 || strcmp(argv[1], "sms") != 0 ||
        settings_parse(argc, argv, &o) != 0) {
        settings_usage(stderr);
        return 2;
    }
    if (strcmp(argv[2], "set") == 0)
        return settings_set(c, &o);
    if (strcmp(argv[2], "show") == 0)
        return settings_show(c, &o);
    if (strcmp(argv[2], "clear") == 0)
        return settings_clear(c, &o);
    if (strcmp(argv[2], "test") == 0)
        return settings_test(c, &o);
    settings_usage(stderr);
    return 2;
}
