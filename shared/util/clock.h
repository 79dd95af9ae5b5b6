/*
 * clock.h - time as the wire and the loop need it: RFC 3339 timestamps
 * (parsed to and written from UTC) and a monotonic millisecond clock.
 *
 * Knows nothing of MFA; the envelope parses (shared/mfa/envelope.c) and
 * writes (envelope_build.c) its timestamps with these.
 */
#ifndef UTIL_CLOCK_H
#define UTIL_CLOCK_H

#include <stdint.h>

/* "2026-11-29T10:00:00.123Z" and its NUL fit. */
#define CLOCK_RFC3339_MAX 40

/*
 * RFC 3339 date-time ("2026-11-29T10:00:00Z", "...10:00:00.5+01:00") to
 * microseconds since the epoch, UTC. Fractions beyond microseconds are
 * truncated; a leap second (:60 at 23:59 UTC) counts as the next second.
 * Impossible dates and times are refused. 0 or -1 (s NULL included).
 */
int clock_rfc3339_parse(const char *s, int64_t *us)
    __attribute__((warn_unused_result));

/* Now as RFC 3339 UTC with milliseconds: 2026-11-29T10:00:00.123Z. */
void clock_rfc3339_now(char out[CLOCK_RFC3339_MAX]);

/* Milliseconds on the monotonic clock (deadlines, not dates). */
long long clock_mono_ms(void);

#endif
