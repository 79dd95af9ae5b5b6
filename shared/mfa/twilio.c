/*
 * twilio.c - one Twilio Messages API request on a libcurl easy handle:
 * the account check, the request, the classification of the answer.
 *
 * Callers: mfa-sms (workers/sms, through its curl multi handle) and
 * `mfactl settings sms test` (curl_easy_perform), so an operator's test
 * goes through the exact code the worker uses; twilio_account_check also
 * through sms_settings_use (mfa-sms, once per change of the settings row)
 * and `mfactl settings sms set`. Knows nothing of jobs, queues or the
 * database.
 *
 * The From number is checked for its E.164 form only (phone_e164.h), not
 * for validity: that needs libphonenumber's C++ stack, ~4 MiB resident in
 * every mfa-sms process for a row that changes once in a long while.
 * `mfactl settings sms set` runs the full phone_check() before it stores
 * the row, so what the worker reads was valid when it was written.
 *
 * Why the classes (DESIGN.md "Library facts"): creating a message is not
 * idempotent. 429 (Twilio 20429) was never processed, and a request that
 * never left (DNS, connect, TLS handshake) cannot have been: both are safe
 * to send again. A 5xx or a connection lost or timed out after the
 * request went out may have created the message: the caller retries such
 * an answer at most once. Any other 4xx says the request itself is wrong
 * (21211 invalid number, 21610 unsubscribed, ...): never retried.
 *
 * Security notes: the client secret exists here only while the
 * Authorization header is built (wiped temporaries) and in that header,
 * which twilio_call_clear wipes; the form holds the code and is wiped
 * too. libcurl copies neither (CURLOPT_POSTFIELDS points at our buffer),
 * except into its own request buffer while sending. Provider texts may
 * quote the recipient's number: twilio_scrub masks it before the text
 * reaches a log or a column. The URL holds no secret.
 */
#include "mfa/twilio.h"
#include "mfa/phone_e164.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sodium.h>

#define TWILIO_FORM_MAX 8192
#define TWILIO_USER_AGENT "portal-mfa-sms/" MFA_VERSION
/* The shortest From number taken: the shortest valid numbers anywhere
 * (Niue, Saint Helena: a 3-digit calling code and 4 digits) have 7. */
#define TWILIO_FROM_DIGITS_MIN 7

int
twilio_sid_ok(const char *s, const char *prefix)
{
    if (s == NULL || strlen(s) != TWILIO_SID_LEN || strncmp(s, prefix, 2))
        return 0;
    for (size_t i = 2; i < TWILIO_SID_LEN; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

void
twilio_account_wipe(struct twilio_account *a)
{
    sodium_memzero(a, sizeof(*a));
}

int
twilio_account_check(const char *client_id, const char *account_sid,
                     const char *from, const char *secret,
                     struct twilio_account *out, char *err, size_t errlen)
{
    const char *why;
    size_t n;
    int api_key;

    memset(out, 0, sizeof(*out));
    api_key = twilio_sid_ok(client_id, "SK");
    if (!api_key && !twilio_sid_ok(client_id, "AC")) {
        snprintf(err, errlen,
                 "client id: must be an Account SID (AC and 32 "
                 "hex digits) or an API key SID (SK and 32 hex digits)");
        return -1;
    }
    if (account_sid == NULL || account_sid[0] == '\0') {
        if (api_key) {
            snprintf(err, errlen,
                     "account sid: an API key (SK...) needs "
                     "the Account SID (AC...) it belongs to (--account-sid)");
            return -1;
        }
        account_sid = client_id;
    } else if (!twilio_sid_ok(account_sid, "AC")) {
        snprintf(err, errlen, "account sid: must be AC and 32 hex digits");
        return -1;
    }
    why = phone_e164_check(from, TWILIO_FROM_DIGITS_MIN);
    if (why != NULL) {
        /* The reasons are fixed strings: they never quote the input. */
        snprintf(err, errlen,
                 "from: must be a phone number in E.164 form such as "
                 "+15005550006 (%s)",
                 why);
        return -1;
    }
    n = secret ? strlen(secret) : 0;
    if (n == 0) {
        snprintf(err, errlen, "client secret: empty");
        return -1;
    }
    if (n > TWILIO_SECRET_MAX) {
        snprintf(err, errlen, "client secret: longer than %d bytes",
                 TWILIO_SECRET_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (secret[i] < 0x21 || secret[i] > 0x7E) {
            snprintf(err, errlen,
                     "client secret: only printable ASCII "
                     "without spaces is allowed");
            return -1;
        }
    }
    snprintf(out->client_id, sizeof(out->client_id), "%s", client_id);
    snprintf(out->account_sid, sizeof(out->account_sid), "%s", account_sid);
    snprintf(out->from, sizeof(out->from), "%s", from);
    memcpy(out->secret, secret, n + 1);
    return 0;
}

int
twilio_call_prepare(struct twilio_call *tc, const struct mfa_sms_config *sms,
                    const struct twilio_account *a, char *err, size_t errlen)
{
    char userpass[2 * TWILIO_SECRET_MAX + 2];
    char b64[sodium_base64_ENCODED_LEN(sizeof(userpass),
                                       sodium_base64_VARIANT_ORIGINAL)];
    char hdr[sizeof(b64) + 32];
    size_t blen, ulen;
    struct curl_slist *l;
    int rc = -1;

    blen = strlen(sms->twilio_api_base);
    while (blen > 0 && sms->twilio_api_base[blen - 1] == '/')
        blen--;
    if (!twilio_sid_ok(a->account_sid, "AC") ||
        (size_t)snprintf(tc->url, sizeof(tc->url),
                         "%.*s/2010-04-01/Accounts/%s/Messages.json", (int)blen,
                         sms->twilio_api_base,
                         a->account_sid) >= sizeof(tc->url)) {
        snprintf(err, errlen, "twilio: bad account SID or api base too long");
        return -1;
    }
    snprintf(tc->from, sizeof(tc->from), "%s", a->from);
    ulen = (size_t)snprintf(userpass, sizeof(userpass), "%s:%s", a->client_id,
                            a->secret);
    sodium_bin2base64(b64, sizeof(b64), (const unsigned char *)userpass, ulen,
                      sodium_base64_VARIANT_ORIGINAL);
    snprintf(hdr, sizeof(hdr), "Authorization: Basic %s", b64);
    /* Our header rather than CURLOPT_USERPWD: libcurl would keep its own
     * copies of the secret until the handle is reused or freed, ours is
     * wiped as soon as the request is over. */
    l = curl_slist_append(NULL, hdr);
    if (l == NULL)
        goto out;
    tc->headers = l;
    if ((l = curl_slist_append(tc->headers, "Accept: application/json")) ==
            NULL ||
        (l = curl_slist_append(tc->headers, "Expect:")) == NULL)
        goto out;
    rc = 0;
out:
    sodium_memzero(userpass, sizeof(userpass));
    sodium_memzero(b64, sizeof(b64));
    sodium_memzero(hdr, sizeof(hdr));
    if (rc != 0) {
        snprintf(err, errlen, "twilio: out of memory");
        twilio_call_clear(tc);
    }
    return rc;
}

/* RFC 3986 unreserved: what curl_easy_escape leaves as it is. */
#define TWILIO_UNRESERVED                                                      \
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"

/* &name=value, value percent-encoded as curl_easy_escape does (every
 * other octet as %XX), straight into the form: no escaped copy of the
 * code to wipe, no allocation per field. */
static int
twilio_form_add(struct twilio_call *tc, const char *name, const char *value)
{
    static const char hex[] = "0123456789ABCDEF";

    if ((tc->form.len && buf_append(&tc->form, "&", 1) != 0) ||
        buf_puts(&tc->form, name) != 0 || buf_append(&tc->form, "=", 1) != 0)
        return -1;
    while (*value) {
        size_t n = strspn(value, TWILIO_UNRESERVED);
        unsigned char c;
        char esc[3];

        if (n > 0 && buf_append(&tc->form, value, n) != 0)
            return -1;
        value += n;
        if (*value == '\0')
            break;
        c = (unsigned char)*value++;
        esc[0] = '%';
        esc[1] = hex[c >> 4];
        esc[2] = hex[c & 0xF];
        if (buf_append(&tc->form, esc, 3) != 0)
            return -1;
    }
    return 0;
}

static size_t
twilio_on_data(char *p, size_t size, size_t nmemb, void *arg)
{
    struct twilio_call *tc = arg;
    size_t n = size * nmemb;

    /* Past the cap the rest is dropped, not refused: a refusal would
     * abort the transfer and turn a clear answer into an ambiguous one. */
    if (tc->answer.len + n <= tc->answer.max)
        (void)!buf_append(&tc->answer, p, n);
    return n;
}

int
twilio_call_start(struct twilio_call *tc, CURL *easy,
                  const struct mfa_sms_config *sms, const struct twilio_msg *m,
                  char *err, size_t errlen)
{
    char validity[24];
    long ms = sms->timeout_seconds * 1000;

    buf_free(&tc->form);
    buf_free(&tc->answer);
    buf_init(&tc->form, TWILIO_FORM_MAX);
    buf_init(&tc->answer, TWILIO_ANSWER_MAX);
    tc->easy = easy;
    if (twilio_form_add(tc, "To", m->to) != 0 ||
        twilio_form_add(tc, "From", tc->from) != 0 ||
        twilio_form_add(tc, "Body", m->body) != 0)
        goto toolong;
    if (m->validity_s != 0) {
        long v = m->validity_s < 1                     ? 1
                 : m->validity_s > TWILIO_VALIDITY_MAX ? TWILIO_VALIDITY_MAX
                                                       : m->validity_s;

        snprintf(validity, sizeof(validity), "%ld", v);
        if (twilio_form_add(tc, "ValidityPeriod", validity) != 0)
            goto toolong;
    }
    if (m->status_callback != NULL && m->status_callback[0] != '\0' &&
        twilio_form_add(tc, "StatusCallback", m->status_callback) != 0)
        goto toolong;

    curl_easy_setopt(easy, CURLOPT_URL, tc->url);
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, tc->form.data);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)tc->form.len);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, tc->headers);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, twilio_on_data);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, tc);
    /* Answers are a few KiB of JSON, and a hundred requests may be in
     * flight: 4 KiB receive buffers instead of curl's 16. */
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, 4096L);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, TWILIO_USER_AGENT);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, ms);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    if (sms->ca_file != NULL && sms->ca_file[0] != '\0')
        curl_easy_setopt(easy, CURLOPT_CAINFO, sms->ca_file);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    return 0;
toolong:
    snprintf(err, errlen, "twilio: request form longer than %d bytes",
             TWILIO_FORM_MAX);
    buf_free(&tc->form);
    return -1;
}

void
twilio_scrub(const char *s, char *out, size_t n)
{
    struct buf b;
    char num[20], mask[32];

    if (n == 0)
        return;
    buf_init(&b, n > 1 ? n - 1 : 1);
    while (s != NULL && *s) {
        size_t d = s[0] == '+' ? strspn(s + 1, "0123456789") : 0;

        if (d >= 6) {
            snprintf(num, sizeof(num), "+%.*s", (int)(d > 15 ? 15 : d), s + 1);
            phone_mask(num, mask, sizeof(mask));
            if (buf_puts(&b, mask) != 0)
                break;
            s += 1 + d;
            continue;
        }
        if (buf_append(&b, s, 1) != 0)
            break;
        s++;
    }
    snprintf(out, n, "%s", b.data ? b.data : "");
    buf_free(&b);
}

/* The JSON answer, if it is one: code, message, sid, status. */
static void
twilio_parse_answer(const char *body, struct twilio_result *r, char *message,
                    size_t mlen)
{
    struct json_object *o, *v;
    const char *sid;

    message[0] = '\0';
    if (body == NULL || body[0] == '\0')
        return;
    o = json_tokener_parse(body);
    if (o == NULL)
        return;
    if (json_object_is_type(o, json_type_object)) {
        if (json_object_object_get_ex(o, "code", &v) &&
            json_object_is_type(v, json_type_int))
            r->error_code = (long)json_object_get_int64(v);
        if (json_object_object_get_ex(o, "message", &v) &&
            json_object_is_type(v, json_type_string))
            twilio_scrub(json_object_get_string(v), message, mlen);
        if (json_object_object_get_ex(o, "sid", &v) &&
            json_object_is_type(v, json_type_string)) {
            sid = json_object_get_string(v);
            if (twilio_sid_ok(sid, "SM") || twilio_sid_ok(sid, "MM"))
                snprintf(r->sid, sizeof(r->sid), "%s", sid);
        }
        if (json_object_object_get_ex(o, "status", &v) &&
            json_object_is_type(v, json_type_string))
            snprintf(r->status, sizeof(r->status), "%s",
                     json_object_get_string(v));
    }
    json_object_put(o);
}

/* Errors that mean no connection ever carried the request. */
static int
twilio_never_sent(CURLcode code)
{
    switch (code) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_UNSUPPORTED_PROTOCOL: return 1;
    default: return 0;
    }
}

void
twilio_classify(CURLcode code, long http, int request_sent, const char *body,
                const char *curl_error, struct twilio_result *r)
{
    char message[200];

    memset(r, 0, sizeof(*r));
    r->retry_after = -1;
    r->http = http;
    r->request_sent = request_sent;
    if (code != CURLE_OK) {
        r->outcome = (!request_sent || twilio_never_sent(code))
                         ? TWILIO_RETRY
                         : TWILIO_AMBIGUOUS;
        snprintf(r->text, sizeof(r->text), "%s%s",
                 curl_error && *curl_error ? curl_error
                                           : curl_easy_strerror(code),
                 r->outcome == TWILIO_AMBIGUOUS ? " (after sending)" : "");
        return;
    }
    twilio_parse_answer(body, r, message, sizeof(message));
    if (http >= 200 && http < 300)
        r->outcome = TWILIO_SENT;
    else if (http == 429)
        r->outcome = TWILIO_RETRY;
    else if (http == 401 || http == 403)
        r->outcome = TWILIO_AUTH;
    else if (http >= 400 && http < 500)
        r->outcome = TWILIO_REFUSED;
    else
        r->outcome = TWILIO_AMBIGUOUS; /* 5xx, or nothing we understand */
    if (r->outcome == TWILIO_SENT)
        snprintf(r->text, sizeof(r->text), "%s",
                 r->status[0] ? r->status : "accepted");
    else if (r->error_code != 0)
        snprintf(r->text, sizeof(r->text), "%ld %s", r->error_code,
                 message[0] ? message : "(no message)");
    else
        snprintf(r->text, sizeof(r->text), "HTTP %ld%s%s", http,
                 message[0] ? " " : "", message);
}

void
twilio_call_result(struct twilio_call *tc, CURLcode code,
                   const char *curl_error, struct twilio_result *r)
{
    long http = 0, reqsize = 0;
    curl_off_t ra = 0;

    if (tc->easy != NULL) {
        if (curl_easy_getinfo(tc->easy, CURLINFO_RESPONSE_CODE, &http) !=
            CURLE_OK)
            http = 0;
        /* Bytes of request headers written: 0 means it never went out
         * (libcurl counts it anew for every transfer). */
        if (curl_easy_getinfo(tc->easy, CURLINFO_REQUEST_SIZE, &reqsize) !=
            CURLE_OK)
            reqsize = 0;
        if (curl_easy_getinfo(tc->easy, CURLINFO_RETRY_AFTER, &ra) != CURLE_OK)
            ra = 0;
    }
    twilio_classify(code, http, reqsize > 0, tc->answer.data, curl_error, r);
    if (ra > 0)
        r->retry_after = (long)ra;
}

void
twilio_call_clear(struct twilio_call *tc)
{
    if (tc->easy != NULL) {
        /* The handle may be reused: no pointers into freed memory. */
        curl_easy_setopt(tc->easy, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(tc->easy, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(tc->easy, CURLOPT_WRITEDATA, NULL);
        curl_easy_setopt(tc->easy, CURLOPT_WRITEFUNCTION, NULL);
        tc->easy = NULL;
    }
    for (struct curl_slist *l = tc->headers; l != NULL; l = l->next)
        if (l->data != NULL)
            sodium_memzero(l->data, strlen(l->data));
    curl_slist_free_all(tc->headers);
    tc->headers = NULL;
    /* buf_free wipes what it frees. */
    buf_free(&tc->form);
    buf_free(&tc->answer);
}

const char *
twilio_outcome_name(enum twilio_outcome o)
{
    switch (o) {
    case TWILIO_SENT: return "sent";
    case TWILIO_RETRY: return "retry";
    case TWILIO_AMBIGUOUS: return "ambiguous";
    case TWILIO_REFUSED: return "refused";
    case TWILIO_AUTH: return "auth";
    }
    return "?";
}
