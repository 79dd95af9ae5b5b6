/*
 * dispatch.h - the steps every dispatch job shares (mfa-email, mfa-sms).
 *
 * A dispatch.code or dispatch.notice job names a delivery row. Before any
 * provider I/O the handler reads its facts (read with the whole batch,
 * one statement before the BEGIN) and checks the row (dispatch_start)
 * and, for a code, that the code is still alive
 * (dispatch_code_alive); when the job
 * ends the row is written, an audit row added and a result published to
 * mfa.results (code.* or notice.*: dispatch_end, dispatch_sent), all in
 * the job's transaction. What the provider is and what the worker logs
 * stay in the worker. Both workers also start the same way
 * (dispatch_setup: templates and the curl multi handle).
 */
#ifndef RUNTIME_DISPATCH_H
#define RUNTIME_DISPATCH_H

#include <json-c/json.h>

#include "mfa/db.h"
#include "mfa/delivery.h"
#include "mfa/tmpl.h"
#include "runtime/curlm.h"
#include "runtime/worker.h"

/* The delivery a job is about, as its audit rows and results name it. */
struct dispatch_target {
    const char *channel; /* "email" | "sms": actions <channel>.<what>,
                            actor mfa-<channel> (the channel's worker) */
    int notice;          /* a notice (email) rather than a code */
    const char *delivery_id;
    const char *login_id; /* codes; NULL for notices */
    const char *contact_id;
    const char *to_masked; /* masked recipient, or NULL before it is known */
};

/*
 * A dispatch worker's start-up (its init hook): loads the templates it
 * declares (files, from templates.dir: a missing file or placeholder is
 * logged naming the file), creates the curl multi handle that drives its
 * provider I/O and keeps read_sql, its handlers' read (DISPATCH_READ_SQL
 * below, a static string). 0, or -1 logged with nothing left allocated.
 */
int dispatch_setup(const struct mfa_config *cfg, const struct tmpl_file *files,
                   size_t nfiles, const char *read_sql, struct tmpl_set **tmpl,
                   struct curlm **curlm) __attribute__((warn_unused_result));

/* A failed statement: RETRY with the database's message. Call it right
 * after the failure so the runtime sees the error class. */
enum mfa_verdict dispatch_db_fail(struct job *job);

/* Adds key to an audit detail or result when val is set and non-empty. */
void dispatch_detail_add(struct json_object *d, const char *key,
                         const char *val);

/*
 * What a dispatch job's handler reads before any provider I/O, in one
 * statement for a whole batch: per job its delivery, the delivery's code
 * and login (mfa/delivery.h's DELIVERY_FACTS_COLS), and the worker's own
 * columns of the job's contact. sql is DISPATCH_READ_SQL(cols, joins):
 * cols a select list over the worker's joins, which join on r.cid (the
 * job's contact_id); they start at column DISPATCH_COL_USER.
 */
#define DISPATCH_READ_SQL(cols, joins)                                         \
    "SELECT r.did::text, r.cid, " DELIVERY_FACTS_COLS ", " cols " "            \
    "FROM unnest($1::uuid[], $2::text[]) AS r(did, cid) " DELIVERY_FACTS_JOIN  \
    " " joins
#define DISPATCH_COL_DELIVERY 2
#define DISPATCH_COL_USER (2 + DELIVERY_FACTS_NCOLS)

/* worker_spec's batch hooks for a dispatch worker (the statement
 * dispatch_setup was given, for the batch's handler jobs; its rows; the
 * end of the batch). The runtime runs one batch at a time, so the rows
 * live here until batch_done. */
int dispatch_batch_read(struct worker *w, struct job *const *jobs, size_t n,
                        struct db_stmt *st, int max);
void dispatch_batch_result(struct worker *w, PGresult **res, int n);
void dispatch_batch_done(struct worker *w);

/* A job's row of facts: res (not the caller's to clear) and row. */
struct dispatch_facts {
    PGresult *res;
    int row;
    PGresult *own; /* read for this job alone (the careful way) */
};

void dispatch_facts_free(struct dispatch_facts *f);

/*
 * A dispatch job's start: a dispatch.code for t's channel, its facts read
 * (*f: dispatch_facts_free after, whatever the answer), its delivery row
 * checked. 1 go on; 0 already final (a duplicate or a replay from the
 * dead-letter queue: *v = MFA_OK, nothing sent); -1 with *v set (another
 * channel's job, no such row, or not t's kind, channel and login: REJECT,
 * the reason saying the row "is not <what> for this login", what being
 * e.g. "an SMS code"; the database: RETRY).
 */
int dispatch_start(struct job *job, const struct dispatch_target *t,
                   struct dispatch_facts *f, const char *what,
                   enum mfa_verdict *v) __attribute__((warn_unused_result));

/*
 * A dispatch.code's code: 1 alive (code filled); 0 must not go out,
 * code->why says why (no code, superseded, used, expired, expiring, login
 * closed) and the caller drops the delivery with it; -1 with *v set (the
 * login's user is not t->contact_id: REJECT).
 */
int dispatch_code_alive(struct job *job, const struct dispatch_target *t,
                        const struct dispatch_facts *f, long min_remaining_s,
                        struct delivery_code *code, enum mfa_verdict *v)
    __attribute__((warn_unused_result));

/*
 * The job's sealed code (dispatch.code) into clear (cap bytes): the seal
 * binds it to t's login and delivery. 0, or -1 with *v: a code that does
 * not open (wrong key, tampered) fails its delivery for good and is
 * dead-lettered for a look, the 'failed' row kept; or the verdict of a
 * failed write.
 */
int dispatch_code_open(struct job *job, const struct dispatch_target *t,
                       const unsigned char *seal_key, char *clear, size_t cap,
                       enum mfa_verdict *v) __attribute__((warn_unused_result));

/* One audit row by mfa-<channel> for t and the job's event; takes detail
 * (masked values only). 0 or -1. */
int dispatch_audit(struct job *job, const struct dispatch_target *t,
                   const char *action, struct json_object *detail)
    __attribute__((warn_unused_result));

/* The result event for subscribers, what = "sent", "failed", "dropped":
 * code.<what> {delivery_id, login_id, channel, error?,
 * provider_message_id?}, or notice.<what> with contact_id and template
 * instead of login_id. Published after COMMIT. */
void dispatch_result(struct job *job, const struct dispatch_target *t,
                     const char *what, const char *error,
                     const char *provider_id);

/*
 * A provider attempt that will be retried (mfa/delivery.h's
 * delivery_attempt, the new count in *attempts when given): 1 recorded;
 * 0 the delivery ended meanwhile (logged, *v = MFA_OK, nothing more to
 * record); -1 database error (*v its verdict).
 */
int dispatch_attempt(struct job *job, const struct dispatch_target *t,
                     const char *reason, int ambiguous, long *attempts,
                     enum mfa_verdict *v) __attribute__((warn_unused_result));

/*
 * Not sent and never will be ("dropped"), or failed for good ("failed"):
 * the row (attempted: a provider call was made), the audit row
 * <channel>.<status> {delivery_id, to?, reason or error}, the result.
 * MFA_OK, or the database error's verdict. The caller logs. A delivery
 * no longer queued (final meanwhile) gets nothing more: logged, MFA_OK.
 */
enum mfa_verdict dispatch_end(struct job *job, const struct dispatch_target *t,
                              const char *status, const char *reason,
                              int attempted);

/*
 * The provider took it: the row 'sent' with provider_id, the audit row
 * <channel>.sent {delivery_id, to, provider_message_id, possible_duplicate
 * when the row says an ambiguous answer was retried}, the result
 * code.sent / notice.sent. MFA_OK, or the database error's verdict. The
 * caller logs. Final meanwhile: as dispatch_end.
 */
enum mfa_verdict dispatch_sent(struct job *job, const struct dispatch_target *t,
                               const char *provider_id);

#endif
