/*
 * methods.h - which verification methods a portal user may be offered,
 * and, for each one that may not, why.
 *
 * Callers: mfa-codes (login.started offers these; login.code_requested
 * checks again, because the user's data or the SMS settings may have
 * changed since) and mfactl (user show). The decision itself,
 * methods_decide(), is pure and unit-tested; methods_check() only reads
 * the facts from PostgreSQL.
 *
 * The rules (DESIGN.md "The user-visible flow"):
 *   email  iff the address is valid and confirmed;
 *   sms    iff the phone is valid, SMS-capable, not blocked by the
 *          provider (21610 unsubscribed, 21614 not a mobile), in an allowed
 *          region (phone.sms_allowed_regions, empty = all), and the
 *          system-wide SMS settings are complete: a row mfa.settings
 *          name 'sms' whose value has non-empty "client_id",
 *          "account_sid" and "from", and a sealed secret.
 * The settings are read on every call so running workers see an
 * operator's change without a restart.
 */
#ifndef MFA_METHODS_H
#define MFA_METHODS_H

#include <stddef.h>

#include "mfa/addr.h"
#include "mfa/db.h"
#include "util/cfg.h"

enum method_id { METHOD_EMAIL = 0, METHOD_SMS, METHOD_COUNT };

#define METHOD_WHY_MAX 128

/* What the decision needs, as stored; strings may be NULL. */
struct method_facts {
    int found;   /* the contact is a portal user */
    int enabled; /* and not demoted */
    const char *email, *email_status, *email_reason;
    int email_confirmed;
    const char *phone_e164, *phone_status, *phone_reason;
    int phone_sms_capable;
    const char *phone_sms_blocked;
    int sms_settings_complete;
};

struct methods {
    int found;
    int enabled;
    int offered[METHOD_COUNT];
    /* "" when offered, else a reason for operators, e.g.
     * "email: not confirmed", "sms: settings incomplete" (never a full
     * address or number) */
    char why[METHOD_COUNT][METHOD_WHY_MAX];
    /* The destinations, only for offered methods ("" otherwise). They are
     * personal data: mask them (methods_hints) before they leave. */
    char email[ADDR_EMAIL_MAX + 1];
    char phone[20];
    char region[3]; /* the phone's region when SMS is offered */
};

/* "email" / "sms"; NULL out of range. */
const char *method_name(enum method_id m);
/* METHOD_EMAIL / METHOD_SMS, or -1 for anything else (also NULL). */
int method_from_name(const char *name);

/*
 * 1 when the SMS settings row is complete: value_json (the jsonb as
 * text, may be NULL) is an object with non-blank string "client_id",
 * "account_sid" and "from", and has_secret says the secret is stored.
 */
int methods_sms_settings_complete(const char *value_json, int has_secret);

/* Pure: fills out from f. allowed: the SMS regions, NULL or empty = all. */
void methods_decide(const struct method_facts *f,
                    const struct cfg_strlist *allowed, struct methods *out);

/*
 * Reads the user's row and the SMS settings and decides. 0 (out->found
 * says whether the contact exists), or -1 on a database error (db->last
 * and db->errmsg set; inside a transaction, stop using it). Needs SELECT
 * on mfa.users and on mfa.settings including secret_sealed (mfa_worker,
 * or an administrator for mfactl).
 */
int methods_check(struct db *db, const char *contact_id,
                  const struct cfg_strlist *allowed, struct methods *out)
    __attribute__((warn_unused_result));

/*
 * The same facts read by a caller's own query, to save it a round trip:
 * METHODS_FACTS_SQL is a select list over "mfa.users u LEFT JOIN
 * mfa.settings s ON s.name = 'sms'" of METHODS_FACTS_NCOLS columns, and
 * methods_from_row() decides from them, starting at column col of row
 * (a user that exists: out->found is 1).
 */
#define METHODS_FACTS_SQL                                                      \
    " u.enabled, u.email, u.email_status, u.email_reason, "                    \
    " u.email_confirmed, u.phone_e164, u.phone_status, u.phone_reason, "       \
    " u.phone_sms_capable, u.phone_sms_blocked, s.value::text, "               \
    " s.secret_sealed IS NOT NULL "
#define METHODS_FACTS_NCOLS 12
void methods_from_row(const PGresult *res, int row, int col,
                      const struct cfg_strlist *allowed, struct methods *out);

/* Number of offered methods. */
int methods_count(const struct methods *m);

/*
 * Masked hints for the reply: "j***@example.com", "+31 6** *** *78", each
 * "" unless its method is offered (a hint for a method the portal cannot
 * use would only leak data).
 */
void methods_hints(const struct methods *m, char *email_hint, size_t en,
                   char *phone_hint, size_t pn);

#endif
