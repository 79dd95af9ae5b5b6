/*
 * mfa_producer.h - publish Portal MFA events from C and wait for replies.
 *
 * libmfa-producer is what the portal and the CRM link to talk to the MFA
 * workers over RabbitMQ (pkg-config --cflags --libs mfa-producer). It
 * builds the event envelope of docs/events.md, checks it with the same
 * validator the workers use, and publishes it to the exchange mfa.events
 * with the type as routing key: persistent, content_type
 * application/json, message_id = event_id, type = the event type, with
 * publisher confirms and the mandatory flag. A publish returns OK only
 * once the broker has taken the event over; a refused, nacked or
 * unroutable event is an error, never silence.
 *
 *     char id[MFA_PRODUCER_ID_LEN], login[MFA_PRODUCER_ID_LEN], err[512];
 *     char *reply = NULL, data[256];
 *     struct mfa_producer_options o = {.url = getenv("MFA_AMQP_URL")};
 *     struct mfa_producer *p = mfa_producer_new(&o, err, sizeof(err));
 *
 *     mfa_producer_uuid(login);
 *     snprintf(data, sizeof(data),
 *              "{\"login_id\":\"%s\",\"contact_id\":\"c-42\"}", login);
 *     if (mfa_producer_call(p, "login.started", data, NULL, 10000, id,
 *                           &reply, err, sizeof(err)) == MFA_PRODUCER_OK)
 *         puts(reply);        // {"login_id":…,"status":"pending",…}
 *     else
 *         fprintf(stderr, "%s\n", err);
 *     free(reply);
 *     mfa_producer_free(p);
 *
 * Conventions: functions return an enum mfa_producer_status (0 = OK) and
 * write a sentence for the user into err (errlen bytes, err may be NULL).
 * An invalid event names the field ("data.login_id: not a UUID").
 *
 * Threads and state: a handle is one AMQP connection and may be used by
 * one thread at a time; use one handle per thread. The library keeps no
 * global state of its own (libsodium's sodium_init() is called, which is
 * safe to repeat and thread-safe), installs no signal handlers and does
 * not exit the process (only running out of memory aborts it, as in the
 * workers). It connects at the first use, and when the
 * connection broke in between (broker restart, idle timeout) it
 * reconnects and publishes again: the event keeps its event_id, and the
 * workers process an event_id once, so a repeat is harmless.
 *
 * Limits of librabbitmq-c 0.11 that a caller should know: a publish can
 * block while the broker stops reading from the socket (memory or disk
 * alarm) until the TCP buffer drains; all other waits are bounded by
 * confirm_timeout_ms or the call's timeout. Replies are read only while a
 * call waits for them: a reply arriving after its call timed out is
 * dropped.
 */
#ifndef MFA_PRODUCER_H
#define MFA_PRODUCER_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A UUID in text and its NUL: event ids, login ids. */
#define MFA_PRODUCER_ID_LEN 37

enum mfa_producer_status {
    MFA_PRODUCER_OK = 0,
    /* The input was refused (unknown type, bad JSON, a field the workers
     * would refuse); err names it. Nothing was published. */
    MFA_PRODUCER_INVALID = 1,
    /* The broker could not be reached or refused the login. Nothing was
     * published. */
    MFA_PRODUCER_UNREACHABLE = 2,
    /* The broker answered no: it returned the event because no queue is
     * bound to its routing key (the workers' topology is missing), or it
     * nacked it. The event was not delivered. */
    MFA_PRODUCER_REFUSED = 3,
    /* Sent, but no confirm within confirm_timeout_ms or the connection
     * was lost: unknown whether the broker has it. Publish it again with
     * the same event_id (harmless if it did arrive). */
    MFA_PRODUCER_UNCONFIRMED = 4,
    /* mfa_producer_call: published and confirmed, but no reply within
     * the timeout (no worker running, or the workers are behind). */
    MFA_PRODUCER_NO_REPLY = 5,
};

struct mfa_producer_options {
    /* amqp://user:password@host:port/vhost or amqps://… (TLS, the peer
     * and its host name are verified). Required. */
    const char *url;
    /* Shown by the broker (management UI, rabbitmqctl list_connections)
     * and sent as the messages' app_id. NULL = "mfa-producer". */
    const char *name;
    /* amqps: a CA bundle to trust. NULL = the system's CAs. */
    const char *ca_file;
    /* How long to wait for the broker's confirm of a publish, and for
     * any other broker answer. 0 = 5000. */
    int confirm_timeout_ms;
    /* AMQP heartbeat in seconds. 0 = off (the default): heartbeats are
     * only serviced inside library calls, and a broken connection is
     * noticed and re-made at the next publish anyway. */
    int heartbeat_s;
    /* On connecting, the library declares the exchanges and work queues
     * (idempotent) so an event never goes to a queue that does not exist
     * yet. Declaring needs the workers' queue settings: queue_type
     * (NULL or "classic", or "quorum") and, for quorum, delivery_limit
     * (0 = 20), as amqp.queue_type / amqp.delivery_limit in the workers'
     * configuration. A mismatch fails the connect with a message from
     * the broker ("inequivalent arg 'x-queue-type'"). */
    const char *queue_type;
    int delivery_limit;
    /* 1 = declare nothing: for a broker user that may only publish to
     * mfa.events. Events then need the workers' queues to exist. */
    int no_declare;
    /* mfa_producer_publish_batch: events in flight before waiting for
     * their confirms. 0 = 1000. */
    int window;
};

/* The library's version, "0.1.0". */
const char *mfa_producer_version(void);

/* ---- event types (no connection needed) ------------------------------ */

/* The event types the portal and the CRM publish, NULL-terminated:
 * contact.promoted, contact.changed, contact.demoted,
 * user.email_confirmed, login.started, login.code_requested,
 * login.code_submitted. */
const char *const *mfa_producer_types(void);

/* Writes a few lines on the type to out: what it does, its data fields
 * (required or optional), the reply, an example. -1 for a type that is
 * not in mfa_producer_types(). */
int mfa_producer_type_help(const char *type, FILE *out);

/* 1 when the workers answer this type on reply_to (login.*), else 0. */
int mfa_producer_type_replies(const char *type);

/* A new random (version 4) UUID, e.g. for a login_id. */
void mfa_producer_uuid(char out[MFA_PRODUCER_ID_LEN]);

/*
 * Builds and validates an event without publishing it. data_json is the
 * JSON object of the "data" field (NULL = {}); event_id NULL makes a new
 * one. On OK *body is the envelope as a malloc'd string (free() it) and
 * event_id_out (may be NULL) holds its event_id; otherwise *body is NULL,
 * the status is MFA_PRODUCER_INVALID and err names the field.
 */
int mfa_producer_build(const char *type, const char *data_json,
                       const char *event_id, char **body,
                       char event_id_out[MFA_PRODUCER_ID_LEN], char *err,
                       size_t errlen);

/*
 * The URL with its password replaced by "***", for messages and logs
 * (out holds n bytes and is always terminated).
 */
void mfa_producer_url_redact(const char *url, char *out, size_t n);

/* ---- the connection ------------------------------------------------- */

struct mfa_producer;

/* A handle for the options (copied). NULL with err when the options are
 * unusable (no URL, not amqp:// or amqps://, unknown queue_type). Does
 * not connect yet. */
struct mfa_producer *mfa_producer_new(const struct mfa_producer_options *o,
                                      char *err, size_t errlen);

/* Closes the connection and frees the handle. NULL is fine. */
void mfa_producer_free(struct mfa_producer *p);

/* Connects now (publishing connects by itself): to find a bad URL or
 * password at start-up. OK or MFA_PRODUCER_UNREACHABLE. */
int mfa_producer_connect(struct mfa_producer *p, char *err, size_t errlen);

/*
 * Builds, validates and publishes one event and waits for the broker's
 * confirm. event_id NULL = a new one; event_id_out (may be NULL) receives
 * the event_id used, also on failure when one was made (keep it to
 * publish again after MFA_PRODUCER_UNCONFIRMED).
 */
int mfa_producer_publish(struct mfa_producer *p, const char *type,
                         const char *data_json, const char *event_id,
                         char event_id_out[MFA_PRODUCER_ID_LEN], char *err,
                         size_t errlen);

/*
 * Publishes like mfa_producer_publish() and waits up to timeout_ms (from
 * the start of the call) for the workers' reply, which arrives over
 * RabbitMQ's direct reply-to with correlation_id = event_id. On OK *reply
 * is the reply JSON as a malloc'd string (free() it), e.g.
 * {"login_id":"…","status":"pending","methods":["email"],…}; otherwise it
 * is NULL. Only login.* types are answered; other types end in
 * MFA_PRODUCER_NO_REPLY.
 */
int mfa_producer_call(struct mfa_producer *p, const char *type,
                      const char *data_json, const char *event_id,
                      int timeout_ms, char event_id_out[MFA_PRODUCER_ID_LEN],
                      char **reply, char *err, size_t errlen);

/* One event of a batch: body and event_id from mfa_producer_build(). */
struct mfa_producer_msg {
    const char *type;
    const char *body;
    const char *event_id;
    int status; /* set by mfa_producer_publish_batch */
};

/*
 * Bulk publishing (a CRM push of many contact.changed): publishes n built
 * events with up to `window` of them in flight at a time, each window
 * waiting for its confirms, instead of one round trip per event. Every
 * msgs[i].status is set: OK, INVALID (the body does not validate; not
 * sent), REFUSED, UNCONFIRMED, or UNREACHABLE (not sent: the broker went
 * away and a reconnect failed). A lost connection is re-made once per
 * window and the window published again. Returns OK when every event was
 * confirmed, else the first failing status; err describes it.
 */
int mfa_producer_publish_batch(struct mfa_producer *p,
                               struct mfa_producer_msg *msgs, size_t n,
                               char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
