/*
 * clock.c - RFC 3339 timestamps and the monotonic clock (see clock.h).
 *
 * Callers: the envelope parser and builder (shared/mfa/envelope.c,
 * envelope_build.c) for occurred_at and expires_at, the AMQP publisher's
 * confirm deadline (shared/runtime/mq_publish.c) and mfa-sms's request
 * deadlines.
 *
 * Security notes: timestamps come from other systems and are untrusted.
 * The parser reads a fixed layout with bounded lengths (strnlen), checks
 * every digit, month length and offset, and computes in 64 bits, so no
 * input can overflow or read past its end.
 */
#include "util/clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* n decimal digits at s, or -1. */
static int
clock_digits(const char *s, int n)
{
    int v = 0, i;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Days from 1970-01-01 to y-m-d, proleptic Gregorian (H. Hinnant). */
static int64_t
clock_days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int
clock_month_days(int y, int m)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : mdays[m - 1];
}

int
clock_rfc3339_parse(const char *s, int64_t *us)
{
    int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0, nd = 0;
    int64_t frac = 0, offset_min, utc_min;
    const char *p;

    /* date-time = YYYY-MM-DD "T" hh:mm:ss [.frac] ("Z" / +hh:mm / -hh:mm) */
    if (s == NULL || strnlen(s, 20) < 20 || s[4] != '-' || s[7] != '-' ||
        (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
        return -1;
    y = clock_digits(s, 4);
    mo = clock_digits(s + 5, 2);
    d = clock_digits(s + 8, 2);
    h = clock_digits(s + 11, 2);
    mi = clock_digits(s + 14, 2);
    sec = clock_digits(s + 17, 2);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > clock_month_days(y, mo) ||
        h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60)
        return -1;
    p = s + 19;
    if (*p == '.') {
        /* Nanoseconds are the most anyone sends; keep microseconds. */
        for (p++; *p >= '0' && *p <= '9'; p++, nd++)
            if (nd < 6)
                frac = frac * 10 + (*p - '0');
        if (nd < 1 || nd > 9)
            return -1;
        for (; nd < 6; nd++)
            frac *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        if (strnlen(p, 6) < 6 || p[3] != ':')
            return -1;
        oh = clock_digits(p + 1, 2);
        om = clock_digits(p + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return -1;
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    offset_min = sign * (oh * 60 + om);
    /* A leap second only exists at 23:59:60 UTC, whatever the offset. */
    utc_min = ((int64_t)h * 60 + mi - offset_min) % 1440;
    if (utc_min < 0)
        utc_min += 1440;
    if (sec == 60 && utc_min != 1439)
        return -1;
    *us = ((clock_days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 +
            (int64_t)mi * 60 + sec - offset_min * 60) *
           1000000) +
          frac;
    return 0;
}

void
clock_rfc3339_now(char out[CLOCK_RFC3339_MAX])
{
    struct timespec ts;
    struct tm tm;
    size_t n;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(out, CLOCK_RFC3339_MAX, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, CLOCK_RFC3339_MAX - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

long long
clock_mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
