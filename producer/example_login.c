/*
 * example_login - the portal's MFA login step, written against
 * libmfa-producer, as a model for portal developers.
 *
 *     example_login CONTACT_ID [AMQP_URL]       (URL default $MFA_AMQP_URL)
 *
 * After the portal has checked the password:
 *   1. login.started with a new login_id; the reply lists the methods to
 *      offer ("Choose Verification Method"), or says why there are none;
 *   2. the user picks one (asked on stdin when there are two);
 *   3. login.code_requested; the code goes out by email or SMS;
 *   4. the user types the code (stdin); login.code_submitted;
 *   5. "verified" completes the login. A wrong code may be typed again
 *      while the reply still allows attempts.
 * Exit status: 0 verified; 1 not verified (any other outcome, or bad
 * arguments); 2 the workers could not be reached or did not answer.
 *
 * Build against an installed library (`make install`):
 *     cc example_login.c $(pkg-config --cflags --libs mfa-producer) \
 *         -ljson-c -lsodium
 * (json-c reads the replies, libsodium wipes the typed code).
 *
 * Security notes: the code the user types is a secret: it is checked to
 * be digits, sent, and wiped; it is never printed. The hints in replies
 * are already masked by the workers.
 */
#include "mfa_producer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#define EX_TIMEOUT_MS 10000

enum { EX_VERIFIED = 0, EX_NOT_VERIFIED = 1, EX_UNAVAILABLE = 2 };

/* A string member of a reply, or "" when absent. */
static const char *
ex_str(struct json_object *o, const char *key)
{
    struct json_object *v;

    if (json_object_object_get_ex(o, key, &v) &&
        json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return "";
}

/*
 * Publishes and waits; *out is the parsed reply. EX_VERIFIED (here: "ok")
 * or EX_UNAVAILABLE after telling the user why.
 */
static int
ex_call(struct mfa_producer *p, const char *type, const char *data,
        struct json_object **out)
{
    char id[MFA_PRODUCER_ID_LEN], err[1024];
    char *reply = NULL;
    int st;

    *out = NULL;
    st = mfa_producer_call(p, type, data, NULL, EX_TIMEOUT_MS, id, &reply, err,
                           sizeof(err));
    if (st != MFA_PRODUCER_OK) {
        fprintf(stderr, "%s: %s\n", type, err);
        return EX_UNAVAILABLE;
    }
    *out = json_tokener_parse(reply);
    free(reply);
    if (*out == NULL || !json_object_is_type(*out, json_type_object)) {
        fprintf(stderr, "%s: the reply is not a JSON object\n", type);
        json_object_put(*out);
        *out = NULL;
        return EX_UNAVAILABLE;
    }
    return EX_VERIFIED;
}

/* One line of stdin without its line end; NULL at end of input. */
static char *
ex_read_line(const char *prompt, char *buf, size_t n)
{
    printf("%s", prompt);
    fflush(stdout);
    if (fgets(buf, (int)n, stdin) == NULL)
        return NULL;
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf;
}

/* Step 1 and 2: the methods offered, and the user's choice. */
static int
ex_choose(struct mfa_producer *p, const char *login_id, const char *contact_id,
          char *method, size_t n)
{
    struct json_object *data, *reply = NULL, *methods;
    const char *status;
    char line[64];
    size_t count;
    int rc = EX_NOT_VERIFIED;

    /* json-c escapes the CRM's contact_id for us. */
    data = json_object_new_object();
    json_object_object_add(data, "login_id", json_object_new_string(login_id));
    json_object_object_add(data, "contact_id",
                           json_object_new_string(contact_id));
    rc = ex_call(p, "login.started", json_object_to_json_string(data), &reply);
    json_object_put(data);
    if (rc != EX_VERIFIED)
        goto out;
    rc = EX_NOT_VERIFIED;
    status = ex_str(reply, "status");
    if (strcmp(status, "pending") != 0) {
        if (strcmp(status, "no_method") == 0)
            printf("No verification method is available for this account: "
                   "contact your administrator.\n");
        else
            printf("Login refused: %s\n", status);
        goto out;
    }
    if (!json_object_object_get_ex(reply, "methods", &methods) ||
        !json_object_is_type(methods, json_type_array) ||
        (count = json_object_array_length(methods)) == 0) {
        printf("No verification method offered.\n");
        goto out;
    }
    printf("Choose Verification Method:\n");
    for (size_t i = 0; i < count; i++) {
        const char *m =
            json_object_get_string(json_object_array_get_idx(methods, i));

        printf("  %s  %s\n", m,
               strcmp(m, "email") == 0 ? ex_str(reply, "email_hint")
                                       : ex_str(reply, "phone_hint"));
    }
    snprintf(method, n, "%s",
             json_object_get_string(json_object_array_get_idx(methods, 0)));
    while (count > 1) {
        int offered = 0;

        if (ex_read_line("Method: ", line, sizeof(line)) == NULL)
            goto out;
        for (size_t i = 0; i < count; i++)
            offered |=
                strcmp(line, json_object_get_string(
                                 json_object_array_get_idx(methods, i))) == 0;
        if (offered) {
            snprintf(method, n, "%s", line);
            break;
        }
        printf("Please type one of the methods listed.\n");
    }
    rc = EX_VERIFIED;
out:
    json_object_put(reply);
    return rc;
}

/* Step 3: ask for the code to be sent. */
static int
ex_request(struct mfa_producer *p, const char *login_id, const char *method)
{
    struct json_object *reply = NULL;
    char data[160];
    int rc;

    snprintf(data, sizeof(data), "{\"login_id\":\"%s\",\"method\":\"%s\"}",
             login_id, method);
    rc = ex_call(p, "login.code_requested", data, &reply);
    if (rc != EX_VERIFIED)
        return rc;
    if (strcmp(ex_str(reply, "status"), "sent") == 0) {
        printf("A code was sent by %s. It is valid until %s.\n", method,
               ex_str(reply, "expires_at"));
    } else {
        printf("No code sent: %s\n", ex_str(reply, "status"));
        rc = EX_NOT_VERIFIED;
    }
    json_object_put(reply);
    return rc;
}

/* Steps 4 and 5: read codes until verified or no attempts are left. */
static int
ex_submit(struct mfa_producer *p, const char *login_id)
{
    struct json_object *reply = NULL, *left;
    char code[80], data[200];
    const char *status;
    int rc = EX_NOT_VERIFIED;

    for (;;) {
        if (ex_read_line("Code: ", code, sizeof(code)) == NULL)
            break;
        if (code[0] == '\0' || strspn(code, "0123456789") != strlen(code)) {
            printf("The code is the digits of the message.\n");
            continue;
        }
        snprintf(data, sizeof(data), "{\"login_id\":\"%s\",\"code\":\"%s\"}",
                 login_id, code);
        sodium_memzero(code, sizeof(code));
        rc = ex_call(p, "login.code_submitted", data, &reply);
        sodium_memzero(data, sizeof(data));
        if (rc != EX_VERIFIED)
            break;
        status = ex_str(reply, "status");
        if (strcmp(status, "verified") == 0) {
            printf("Verified: login complete.\n");
            break;
        }
        rc = EX_NOT_VERIFIED;
        if (strcmp(status, "invalid") != 0 ||
            !json_object_object_get_ex(reply, "attempts_left", &left) ||
            json_object_get_int(left) <= 0) {
            printf("Not verified: %s\n", status);
            break;
        }
        printf("Wrong code; %d attempt(s) left.\n", json_object_get_int(left));
        json_object_put(reply);
        reply = NULL;
    }
    sodium_memzero(code, sizeof(code));
    json_object_put(reply);
    return rc;
}

int
main(int argc, char **argv)
{
    struct mfa_producer_options o;
    struct mfa_producer *p = NULL;
    char login_id[MFA_PRODUCER_ID_LEN], method[64], err[512];
    int rc = EX_UNAVAILABLE;

    if (argc < 2 || argc > 3 || argv[1][0] == '-') {
        fprintf(stderr,
                "usage: example_login CONTACT_ID [AMQP_URL]\n"
                "The portal's MFA step: login.started, choose a method, "
                "login.code_requested,\nread the code on stdin, "
                "login.code_submitted. URL default: $MFA_AMQP_URL.\n");
        return EX_NOT_VERIFIED;
    }
    memset(&o, 0, sizeof(o));
    o.url = argc == 3 ? argv[2] : getenv("MFA_AMQP_URL");
    o.name = "example_login";
    p = mfa_producer_new(&o, err, sizeof(err));
    if (p == NULL) {
        fprintf(stderr, "example_login: %s\n", err);
        goto out;
    }
    mfa_producer_uuid(login_id);
    rc = ex_choose(p, login_id, argv[1], method, sizeof(method));
    if (rc == EX_VERIFIED)
        rc = ex_request(p, login_id, method);
    if (rc == EX_VERIFIED)
        rc = ex_submit(p, login_id);
out:
    mfa_producer_free(p);
    return rc;
}
