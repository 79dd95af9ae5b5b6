/*
 * log.h - structured logging: one JSON object per line on stderr.
 *
 * {"time":"…Z","level":"info","worker":"mfa-codes","event_id":"…",
 *  "msg":"…", <fields>}
 *
 * Never pass a code, secret, full email address or phone number: mask with
 * addr_email_mask / phone_mask first. Call sites that log user data are
 * reviewed for that.
 */
#ifndef UTIL_LOG_H
#define UTIL_LOG_H

enum log_level { LOGL_DEBUG, LOGL_INFO, LOGL_WARN, LOGL_ERROR, LOGL_FATAL };

void log_open(const char *worker);
void log_set_level(enum log_level lvl);
/* "debug", "info", "warn", "error": 0 on success. */
int log_level_parse(const char *s, enum log_level *out);
/* Context added to every following line until cleared with NULL. */
void log_set_event(const char *event_id);

void log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* msg, then NULL-terminated pairs of string key and string value. */
void log_kv(enum log_level lvl, const char *msg, ...) __attribute__((sentinel));

#define log_debug(...) log_msg(LOGL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOGL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOGL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOGL_ERROR, __VA_ARGS__)

/* Start-up failure: log and exit(1). Only before the event loop runs. */
void fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

#endif
