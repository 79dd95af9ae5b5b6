/*
 * twilio.h - Twilio's Messages API (2010-04-01) on a libcurl easy handle.
 *
 * One request: POST {api_base}/2010-04-01/Accounts/{AccountSid}/Messages.json
 * with HTTP basic auth (Client ID and secret: an Account SID with its auth
 * token, or an API key SK... with its secret) and the form fields To,
 * From, Body, ValidityPeriod and StatusCallback; the answer is classified
 * for the caller (sent, safe to retry, ambiguous, refused, bad
 * credentials). The transfer itself is the caller's: mfa-sms adds the
 * handle to its curl multi handle, `mfactl settings sms test` runs
 * curl_easy_perform, so both go through exactly this code.
 *
 * Usage: twilio_call_prepare (URL and Authorization header; the secret is
 * not kept), twilio_call_start (form and options on an easy handle), run
 * the transfer, twilio_call_result, twilio_call_clear (wipes everything).
 */
#ifndef MFA_TWILIO_H
#define MFA_TWILIO_H

#include <stddef.h>

#include <curl/curl.h>

#include "mfa/settings.h"
#include "util/buf.h"

#define TWILIO_SID_LEN 34         /* "AC" / "SK" / "SM" + 32 hex digits */
#define TWILIO_SECRET_MAX 256     /* bytes of a client secret */
#define TWILIO_VALIDITY_MAX 14400 /* ValidityPeriod ceiling, seconds */
#define TWILIO_ANSWER_MAX (64 * 1024)

/* The system-wide account (mfa.settings 'sms'). Wipe with
 * twilio_account_wipe(): secret is the client secret in clear. */
struct twilio_account {
    char client_id[TWILIO_SID_LEN + 1];   /* AC... or SK... */
    char account_sid[TWILIO_SID_LEN + 1]; /* AC..., the URL's account */
    char from[20];                        /* E.164 */
    char secret[TWILIO_SECRET_MAX + 1];
};

/* 1 when s is prefix ("AC", "SK", "SM", "MM") and 32 hex digits. */
int twilio_sid_ok(const char *s, const char *prefix);

/*
 * Checks an account as an operator types it or the settings row holds it
 * and fills out: client_id an Account SID or an API key; account_sid
 * required for an API key, else (NULL or "") the Client ID; from in E.164
 * form ("+", 8 to 15 digits, no leading 0, a known calling code), which
 * is not validity: `mfactl settings sms set` runs phone_check() on it too
 * before storing, so that mfa-sms needs no libphonenumber; secret
 * non-empty, printable, at most TWILIO_SECRET_MAX bytes. 0, or -1 with
 * err naming the field (never quoting the secret or the number).
 */
int twilio_account_check(const char *client_id, const char *account_sid,
                         const char *from, const char *secret,
                         struct twilio_account *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void twilio_account_wipe(struct twilio_account *a);

/* What to send. */
struct twilio_msg {
    const char *to;              /* E.164 */
    const char *body;            /* UTF-8 */
    long validity_s;             /* 0 = no ValidityPeriod; else clamped to
                                    1..TWILIO_VALIDITY_MAX */
    const char *status_callback; /* NULL or "" = none */
};

/* One request; zero it before twilio_call_prepare. */
struct twilio_call {
    char url[512];
    char from[20];
    struct curl_slist *headers; /* Authorization (secret!), Accept */
    struct buf form;            /* request body: holds the code */
    struct buf answer;          /* response body, capped */
    CURL *easy;                 /* set by twilio_call_start */
};

enum twilio_outcome {
    TWILIO_SENT,      /* 2xx: Twilio took the message (sid) */
    TWILIO_RETRY,     /* never processed: 429, or the request never went
                         out (DNS, connect, TLS): safe to send again */
    TWILIO_AMBIGUOUS, /* 5xx, or the connection failed or timed out after
                         the request went out: it may have been sent */
    TWILIO_REFUSED,   /* 4xx: will not work with this request (error_code
                         says why: 21211, 21610, ...) */
    TWILIO_AUTH,      /* 401/403: the settings' credentials are wrong */
};

struct twilio_result {
    enum twilio_outcome outcome;
    long http;                    /* status, 0 when none came */
    long error_code;              /* Twilio's "code", 0 if none */
    long retry_after;             /* Retry-After seconds, -1 if none */
    int request_sent;             /* bytes of the request went out */
    char sid[TWILIO_SID_LEN + 1]; /* "SM..." when sent */
    char status[24];              /* Twilio's message status ("queued") */
    /* For last_error and logs: "21211 The 'To' number +31 6** *** *78
     * is not valid", "HTTP 503", "connect: ..."; numbers masked. */
    char text[300];
};

/*
 * URL and Authorization for account on sms (api_base). Takes nothing
 * from account after returning. 0, or -1 with err.
 */
int twilio_call_prepare(struct twilio_call *tc,
                        const struct mfa_sms_config *sms,
                        const struct twilio_account *account, char *err,
                        size_t errlen) __attribute__((warn_unused_result));

/*
 * Builds the form for m and sets every option of easy for this request
 * (URL, headers, body, TLS verification with sms->ca_file, timeouts,
 * write callback). The easy handle may be fresh or reused (connections
 * are then reused). 0, or -1 with err.
 */
int twilio_call_start(struct twilio_call *tc, CURL *easy,
                      const struct mfa_sms_config *sms,
                      const struct twilio_msg *m, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Classifies a finished transfer (code and curl_error from libcurl;
 * curl_error may be NULL). */
void twilio_call_result(struct twilio_call *tc, CURLcode code,
                        const char *curl_error, struct twilio_result *out);

/* The classification itself, from what the transfer left (for
 * twilio_call_result and tests): libcurl's code, the HTTP status (0 for
 * none), whether request bytes went out, the response body (may be NULL)
 * and libcurl's error text (may be NULL). retry_after is left -1. */
void twilio_classify(CURLcode code, long http, int request_sent,
                     const char *body, const char *curl_error,
                     struct twilio_result *out);

/* Detaches from the easy handle and wipes form, headers and answer. */
void twilio_call_clear(struct twilio_call *tc);

/* "+31612345678" anywhere in s becomes its mask; out gets n-1 bytes at
 * most. For provider texts that quote the recipient. */
void twilio_scrub(const char *s, char *out, size_t n);

const char *twilio_outcome_name(enum twilio_outcome o);

#endif
