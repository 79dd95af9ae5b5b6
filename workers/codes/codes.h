/*
 * codes.h - mfa-codes: the handler and what its files share.
 *
 * handler.c  dispatch by event type; audit, replies, error verdicts
 * batch.c    the batch's reads and locks, before the handlers
 * login.c    login.started: open a challenge, offer methods
 * send.c     login.code_requested: policy, new code, dispatch job
 * verify.c   login.code_submitted: count the try, compare, verify or lock
 */
#ifndef CODES_CODES_H
#define CODES_CODES_H

#include "runtime/worker.h"

#define CODES_ACTOR "mfa-codes"
/* A contact_id as stored: the envelope allows 64 characters, up to 4
 * UTF-8 bytes each, plus the NUL. */
#define CODES_CONTACT_MAX (64 * 4 + 1)

/* login.started, login.code_requested, login.code_submitted; any other
 * type is rejected (dead-lettered with the reason). */
enum mfa_verdict codes_handle(struct job *job);
/* worker_spec.batch_key: a login's events never share a batch. */
const char *codes_batch_key(const struct envelope *ev);
/* worker_spec.batch_read/batch_result/batch_done (batch.c): in one round
 * trip after the BEGIN, the facts of every login.started, and the lock of
 * every login.code_requested's owner, then its login, locked, with the
 * facts its checks read. */
int codes_batch_read(struct worker *w, struct job *const *jobs, size_t n,
                     struct db_stmt *st, int max);
void codes_batch_result(struct worker *w, PGresult **res, int n);
void codes_batch_done(struct worker *w);

/* The batch's statements for jobs[0..n), parameters kept until
 * *_batch_clear: login.c's one (the facts of every login.started) and
 * send.c's two (the owners of every login.code_requested locked, then
 * their logins locked with their facts). They return how many they
 * filled, 0 for none of their events, -1 when they cannot be built; the
 * result of the last one, taken; the end of the batch. */
int login_batch_stmt(struct job *const *jobs, size_t n, struct db_stmt *st);
void login_batch_take(PGresult *res);
void login_batch_clear(void);
int send_batch_stmt(const struct mfa_config *cfg, struct job *const *jobs,
                    size_t n, struct db_stmt *st);
void send_batch_take(PGresult *res);
void send_batch_clear(void);

enum mfa_verdict codes_login_started(struct job *job);
enum mfa_verdict codes_code_requested(struct job *job);
enum mfa_verdict codes_code_submitted(struct job *job);

/* ---- shared by the three (handler.c) -------------------------------- */

const struct mfa_config *codes_cfg(struct job *job);

/* A failed statement: RETRY with the database's message. Call it right
 * after the failure (before any other statement) so the runtime sees the
 * error class (deadlock, lock timeout: run again in place). */
enum mfa_verdict codes_dberr(struct job *job, const char *what);

/*
 * Appends an audit row (actor mfa-codes). detail (owned, may be NULL)
 * gets the event's type and occurred_at added; it must hold statuses and
 * masked values only, never a code. login_id and contact_id may be NULL.
 * 0 or -1 (database error).
 */
int codes_audit(struct job *job, const char *action, const char *contact_id,
                const char *login_id, struct json_object *detail)
    __attribute__((warn_unused_result));

/* A reply object {login_id, status}; the caller adds the rest and hands
 * it to job_reply(). */
struct json_object *codes_reply_new(const char *login_id, const char *status);

/* Parses a PostgreSQL float8/bigint text; NULL gives dflt. */
double codes_num(const char *v, double dflt);

/*
 * The login's owner into contact_id (CODES_CONTACT_MAX bytes; "" for an
 * unknown login), with the owner's mfa.users row locked FOR NO KEY UPDATE
 * - the first lock of code_requested and code_submitted, taken in the
 * order mfa-contact-sync takes them (user, then logins, then codes) -
 * and then next, which runs under that lock, in the same round trip. 0
 * with *res next's result (the caller's to PQclear), or -1 (database
 * error: codes_dberr).
 */
int codes_owner_lock(struct job *job, const char *login_id, char *contact_id,
                     const struct db_stmt *next, PGresult **res)
    __attribute__((warn_unused_result));

#endif
