/*
 * verify.c - mfa-codes: login.code_submitted checks a typed code.
 *
 * Called by handler.c inside the runtime's transaction. Steps:
 *   1. the login's owner (unknown -> unknown_login); lock the user's row
 *      so the per-user failure budget cannot be raced by parallel logins;
 *   2. count the try FIRST, in one conditional UPDATE of the login that
 *      also takes its row lock: only an open, unexpired login with tries
 *      below max_attempts gets one more. Two workers racing on one login
 *      queue on that lock, so no more than max_attempts tries are ever
 *      counted. No row: locked -> locked; verified, cancelled or timed
 *      out -> expired;
 *   3. the user's hourly budget (codes.max_failures_per_user_per_hour,
 *      across all of the user's logins) already spent -> lock, locked;
 *   4. a typed code that is not exactly codes.length digits, or a login
 *      with no live code, is a wrong try (no compare needed);
 *   5. the latest unused, unsuperseded code: expired (or hashed under
 *      another master key) -> expired; else compare the keyed hashes in
 *      constant time;
 *   6. right: consume the code with one conditional UPDATE (used_at IS
 *      NULL), mark the login verified, publish login.verified -> verified;
 *      wrong: a verify_failures row; when the login's tries or the user's
 *      budget reach their limit the login locks (login.locked published)
 *      -> locked with attempts_left 0, else invalid with attempts_left
 *      (the smaller of what the login and the user have left).
 * An already verified login is never verified again, with any code: the
 * reply is expired (the challenge is over; start a new login), and no try
 * is counted. A duplicate of the verifying event itself gets its stored
 * reply from the runtime.
 * Round trips: step 1 (codes_owner_lock) with steps 2-5 in one (SQL_TRY:
 * the counted try and what the later steps read); step 6: right, the code and
 * the login together (SQL_USE_CODE); wrong, the failure row, and the lock
 * when it comes; then the audit row (audit_event).
 *
 * Security notes: the typed code is only hashed (bound to the login) and
 * compared with code_hash_equal (sodium_memcmp); both hashes are wiped.
 * No log line, audit row, result event, reply or job_fail() text holds the
 * typed code.
 */
#include "codes.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "mfa/policy.h"
#include "runtime/topology.h"
#include "util/log.h"

/*
 * Steps 2 to 5 in one statement, after the owner's lock in its round trip
 * (codes_owner_lock). The conditional UPDATE counts the try and takes the
 * login's row lock: only an open, unexpired login with tries below
 * max_attempts gets one more. Beside it, from the statement's snapshot:
 * the login's state (what the reply says when no try was counted: the
 * UPDATE changed nothing then), the user's failures of the last hour and
 * the latest live code, locked. The user's lock keeps those still: every
 * try, failure and code of the user is written under it.
 * clock_timestamp(): the batch's now() may be older than a competing
 * worker's commit we waited for, and expiry must be judged on the clock.
 */
static const char SQL_TRY[] =
    "WITH t AS (UPDATE mfa.logins SET tries = tries + 1 "
    " WHERE login_id = $1 AND status IN ('pending', 'code_sent') "
    " AND expires_at > clock_timestamp() AND tries < max_attempts "
    " RETURNING tries, max_attempts) "
    "SELECT t.tries, t.max_attempts, l.status, l.tries >= l.max_attempts, "
    " (SELECT count(*) FROM mfa.verify_failures f "
    "  WHERE f.contact_id = l.contact_id "
    "  AND f.at > clock_timestamp() - interval '1 hour'), "
    " c.code_id, encode(c.code_hash, 'hex'), c.key_id, "
    " c.expires_at <= clock_timestamp(), c.channel "
    "FROM mfa.logins l LEFT JOIN t ON true "
    "LEFT JOIN LATERAL (SELECT code_id, code_hash, key_id, expires_at, "
    "  channel FROM mfa.codes WHERE login_id = $1 AND used_at IS NULL "
    "  AND superseded_at IS NULL "
    "  ORDER BY code_id DESC LIMIT 1 FOR UPDATE) c ON true "
    "WHERE l.login_id = $1";
/* The code consumed (only if still live) and the login verified, in one
 * round trip; no row back: the code was spent elsewhere. The login's id
 * beside the code's: the live-code test matches the partial index
 * codes_live, which a generic plan made on stale statistics once scanned
 * whole for the code_id (5 ms a call at 230,000 live codes, measured in
 * make bench); with login_id = $2 every index it may pick is a key. */
static const char SQL_USE_CODE[] =
    "WITH u AS (UPDATE mfa.codes SET used_at = clock_timestamp() "
    " WHERE code_id = $1 AND login_id = $2 AND used_at IS NULL "
    " AND superseded_at IS NULL RETURNING 1), "
    "v AS (UPDATE mfa.logins SET status = 'verified', "
    " verified_at = clock_timestamp() "
    " WHERE login_id = $2 AND status IN ('pending', 'code_sent') "
    " AND EXISTS (SELECT 1 FROM u)) "
    "SELECT 1 FROM u";
static const char SQL_FAILURE[] =
    "INSERT INTO mfa.verify_failures (contact_id, login_id, at) "
    "VALUES ($1, $2, clock_timestamp())";
static const char SQL_LOCK[] =
    "UPDATE mfa.logins SET status = 'locked', "
    " locked_at = clock_timestamp() "
    "WHERE login_id = $1 AND status IN ('pending', 'code_sent')";

/* The columns of SQL_TRY. */
enum {
    TRY_TRIES,
    TRY_MAX,
    TRY_STATUS,
    TRY_SPENT,
    TRY_FAILURES,
    TRY_CODE_ID,
    TRY_CODE_HASH,
    TRY_KEY_ID,
    TRY_CODE_EXPIRED,
    TRY_CHANNEL
};

/* One submission on its way through the steps. */
struct verify {
    struct job *job;
    const char *login_id;
    const char *code; /* typed, untrusted; never logged */
    char contact_id[CODES_CONTACT_MAX];
    long tries, max_attempts, failures, budget;
};

static void
verify_reply(struct verify *v, const char *status, long attempts_left)
{
    struct json_object *r = codes_reply_new(v->login_id, status);

    if (attempts_left >= 0)
        json_object_object_add(r, "attempts_left",
                               json_object_new_int64(attempts_left));
    job_reply(v->job, r);
}

/* An answer that changes nothing but the audit trail. */
static enum mfa_verdict
verify_answer(struct verify *v, const char *action, const char *status,
              const char *reason, long attempts_left)
{
    struct json_object *d = json_object_new_object();

    json_object_object_add(d, "status", json_object_new_string(status));
    json_object_object_add(d, "reason", json_object_new_string(reason));
    if (codes_audit(v->job, action, v->contact_id[0] ? v->contact_id : NULL,
                    v->login_id, d) != 0)
        return codes_dberr(v->job, "audit");
    log_kv(LOGL_INFO, "code not verified", "login_id", v->login_id, "status",
           status, "reason", reason, NULL);
    verify_reply(v, status, attempts_left);
    return MFA_OK;
}

/* Locks the login (if still open) and says so, to the portal and to
 * subscribers of mfa.results. */
static enum mfa_verdict
verify_lock(struct verify *v, const char *reason)
{
    const char *p[1] = {v->login_id};
    struct json_object *d;

    if (db_exec(job_db(v->job), SQL_LOCK, 1, p) != 0)
        return codes_dberr(v->job, "lock login");
    d = json_object_new_object();
    json_object_object_add(d, "reason", json_object_new_string(reason));
    json_object_object_add(d, "tries", json_object_new_int64(v->tries));
    json_object_object_add(d, "user_failures_last_hour",
                           json_object_new_int64(v->failures));
    if (codes_audit(v->job, "login.locked", v->contact_id, v->login_id, d) != 0)
        return codes_dberr(v->job, "audit");
    d = json_object_new_object();
    json_object_object_add(d, "login_id", json_object_new_string(v->login_id));
    json_object_object_add(d, "contact_id",
                           json_object_new_string(v->contact_id));
    json_object_object_add(d, "reason", json_object_new_string(reason));
    job_emit(v->job, MFA_EX_RESULTS, "login.locked", "login.locked", d);
    log_kv(LOGL_WARN, "login locked", "login_id", v->login_id, "contact_id",
           v->contact_id, "reason", reason, NULL);
    verify_reply(v, "locked", 0);
    return MFA_OK;
}

/* A wrong try (already counted): recorded against the user's budget. */
static enum mfa_verdict
verify_wrong(struct verify *v, const char *reason)
{
    const char *p[2] = {v->contact_id, v->login_id};
    struct json_object *d;
    long left;

    if (db_exec(job_db(v->job), SQL_FAILURE, 2, p) != 0)
        return codes_dberr(v->job, "record failure");
    v->failures++;
    left =
        policy_attempts_left(v->max_attempts, v->tries, v->budget, v->failures);
    d = json_object_new_object();
    json_object_object_add(d, "reason", json_object_new_string(reason));
    json_object_object_add(d, "attempts_left", json_object_new_int64(left));
    if (codes_audit(v->job, "code.invalid", v->contact_id, v->login_id, d) != 0)
        return codes_dberr(v->job, "audit");
    log_kv(LOGL_INFO, "wrong code", "login_id", v->login_id, "contact_id",
           v->contact_id, "reason", reason, NULL);
    if (left == 0)
        return verify_lock(v, v->tries >= v->max_attempts
                                  ? "max_attempts"
                                  : "user_failure_budget");
    verify_reply(v, "invalid", left);
    return MFA_OK;
}

/* The code was right: consume it, close the login, tell everyone. */
static enum mfa_verdict
verify_right(struct verify *v, const char *code_id, const char *channel)
{
    const char *p[2] = {code_id, v->login_id};
    struct json_object *d;
    PGresult *res;
    int used;

    res = db_query(job_db(v->job), SQL_USE_CODE, 2, p);
    if (res == NULL)
        return codes_dberr(v->job, "use code");
    used = PQntuples(res) == 1;
    PQclear(res);
    /* Under the row lock this cannot miss; if it ever does, the code was
     * spent elsewhere and must not verify twice (nor did the login). */
    if (!used)
        return verify_wrong(v, "code already used");
    d = json_object_new_object();
    json_object_object_add(d, "channel", json_object_new_string(channel));
    json_object_object_add(d, "tries", json_object_new_int64(v->tries));
    if (codes_audit(v->job, "code.verified", v->contact_id, v->login_id, d) !=
        0)
        return codes_dberr(v->job, "audit");
    d = json_object_new_object();
    json_object_object_add(d, "login_id", json_object_new_string(v->login_id));
    json_object_object_add(d, "contact_id",
                           json_object_new_string(v->contact_id));
    json_object_object_add(d, "channel", json_object_new_string(channel));
    job_emit(v->job, MFA_EX_RESULTS, "login.verified", "login.verified", d);
    log_kv(LOGL_INFO, "login verified", "login_id", v->login_id, "contact_id",
           v->contact_id, "channel", channel, NULL);
    verify_reply(v, "verified", -1);
    return MFA_OK;
}

/* Steps 4-6: compare with the live code SQL_TRY read (try is its row). */
static enum mfa_verdict
verify_compare(struct verify *v, const PGresult *try)
{
    const struct mfa_config *cfg = codes_cfg(v->job);
    const struct mfa_keys *keys = worker_keys(job_worker(v->job));
    unsigned char stored[MFA_HASH_BYTES], typed[MFA_HASH_BYTES];
    const char *hex = db_get(try, 0, TRY_CODE_HASH);
    char code_id[24], channel[8];
    size_t n = 0;
    int equal;

    if (!policy_code_wellformed(v->code, cfg->codes.length))
        return verify_wrong(v, "not a well-formed code");
    if (db_get(try, 0, TRY_CODE_ID) == NULL)
        return verify_wrong(v, "no live code");
    if (db_get(try, 0, TRY_CODE_EXPIRED)[0] == 't')
        return verify_answer(v, "code.expired", "expired", "code expired", -1);
    if (strcmp(db_get(try, 0, TRY_KEY_ID), keys->key_id) != 0)
        /* Hashed under an earlier master key: cannot match any more. */
        return verify_answer(v, "code.expired", "expired",
                             "code from an earlier key", -1);
    if (sodium_hex2bin(stored, sizeof(stored), hex, strlen(hex), NULL, &n,
                       NULL) != 0 ||
        n != sizeof(stored)) {
        job_fail(v->job, "stored code hash of login %s is malformed",
                 v->login_id);
        return MFA_RETRY;
    }
    snprintf(code_id, sizeof(code_id), "%s", db_get(try, 0, TRY_CODE_ID));
    snprintf(channel, sizeof(channel), "%s", db_get(try, 0, TRY_CHANNEL));
    code_hash(keys, v->login_id, v->code, typed);
    equal = code_hash_equal(stored, typed);
    sodium_memzero(typed, sizeof(typed));
    sodium_memzero(stored, sizeof(stored));
    if (equal)
        return verify_right(v, code_id, channel);
    return verify_wrong(v, "code does not match");
}

/* Step 2 counted nothing: say why the login takes no tries, from the
 * state SQL_TRY read beside the UPDATE. */
static enum mfa_verdict
verify_closed(struct verify *v, const PGresult *try)
{
    const char *status = db_get(try, 0, TRY_STATUS);
    int spent = db_get(try, 0, TRY_SPENT)[0] == 't';

    if (strcmp(status, "locked") == 0)
        return verify_answer(v, "code.refused", "locked", "login locked", 0);
    if (spent &&
        (strcmp(status, "pending") == 0 || strcmp(status, "code_sent") == 0)) {
        /* Tries used up but not locked (cannot happen through this
         * worker, which locks on the last wrong try): lock it now. */
        v->tries = v->max_attempts;
        return verify_lock(v, "max_attempts");
    }
    if (strcmp(status, "verified") == 0)
        return verify_answer(v, "code.refused", "expired",
                             "login already verified", -1);
    return verify_answer(v, "code.refused", "expired", "login over", -1);
}

/* Steps 2-6 on SQL_TRY's row. */
static enum mfa_verdict
verify_counted(struct verify *v, const PGresult *try)
{
    /* Step 2: no try counted, the login takes none. */
    if (db_get(try, 0, TRY_TRIES) == NULL)
        return verify_closed(v, try);
    v->tries = (long)codes_num(db_get(try, 0, TRY_TRIES), 0);
    v->max_attempts = (long)codes_num(db_get(try, 0, TRY_MAX), 1);
    /* Step 3: the user's budget across all logins. */
    v->failures = (long)codes_num(db_get(try, 0, TRY_FAILURES), 0);
    if (v->failures >= v->budget)
        return verify_lock(v, "user_failure_budget");
    return verify_compare(v, try);
}

enum mfa_verdict
codes_code_submitted(struct job *job)
{
    const struct envelope *ev = job_event(job);
    const struct mfa_config *cfg = codes_cfg(job);
    enum mfa_verdict verdict;
    struct verify v;
    struct db_stmt st;
    const char *p[1];
    PGresult *res;

    memset(&v, 0, sizeof(v));
    v.job = job;
    v.login_id = ev->u.code_submitted.login_id;
    v.code = ev->u.code_submitted.code;
    v.budget = cfg->codes.max_failures_per_user_per_hour;
    v.max_attempts = cfg->codes.max_attempts;

    /* Step 1, and step 2 in the same round trip: the try is counted
     * before anything else is looked at. */
    p[0] = v.login_id;
    st = (struct db_stmt){SQL_TRY, 1, p, NULL};
    if (codes_owner_lock(job, v.login_id, v.contact_id, &st, &res) != 0)
        return codes_dberr(job, "lock user and count try");
    if (v.contact_id[0] == '\0') {
        PQclear(res);
        return verify_answer(&v, "code.refused", "unknown_login",
                             "no such login", -1);
    }
    if (PQntuples(res) != 1) {
        /* The owner query saw it; logins are never deleted here. */
        PQclear(res);
        job_fail(job, "login vanished while locking it");
        return MFA_RETRY;
    }
    verdict = verify_counted(&v, res);
    PQclear(res);
    return verdict;
}
