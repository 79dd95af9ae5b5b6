/*
 * test_clock.c - unit tests for util/clock: RFC 3339 parsing at its
 * edges (the full table is test_envelope.c's, through
 * envelope_time_parse), "now" written in the layout the parser reads and
 * the envelope promises, and the monotonic clock.
 */
#include "util/clock.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

static void
test_parse(void **state)
{
    int64_t us = -42;

    (void)state;
    assert_int_equal(clock_rfc3339_parse("1970-01-01T00:00:00Z", &us), 0);
    assert_true(us == 0);
    assert_int_equal(clock_rfc3339_parse("1970-01-01T01:00:00.5+01:00", &us),
                     0);
    assert_true(us == 500000);
    /* Leap second only at 23:59:60 UTC: counts as the next second. */
    assert_int_equal(clock_rfc3339_parse("2016-12-31T23:59:60Z", &us), 0);
    assert_true(us == INT64_C(1483228800000000));
    assert_int_equal(clock_rfc3339_parse("2016-12-31T22:59:60Z", &us), -1);
    assert_int_equal(clock_rfc3339_parse("2023-02-29T00:00:00Z", &us), -1);
    assert_int_equal(clock_rfc3339_parse(NULL, &us), -1);
    assert_int_equal(clock_rfc3339_parse("2026-11-29T10:00:00", &us), -1);
}

static void
test_now(void **state)
{
    char now[CLOCK_RFC3339_MAX];
    struct timespec before, after;
    int64_t us;

    (void)state;
    /* The same clock as clock_rfc3339_now(): time() may lag it by a tick. */
    clock_gettime(CLOCK_REALTIME, &before);
    clock_rfc3339_now(now);
    clock_gettime(CLOCK_REALTIME, &after);
    /* 2026-11-29T10:00:00.123Z: UTC with milliseconds. */
    assert_int_equal(strlen(now), 24);
    assert_int_equal(now[10], 'T');
    assert_int_equal(now[19], '.');
    assert_int_equal(now[23], 'Z');
    assert_int_equal(clock_rfc3339_parse(now, &us), 0);
    /* Milliseconds, truncated: within [before, after] at that precision. */
    assert_true(us / 1000 >=
                (int64_t)before.tv_sec * 1000 + before.tv_nsec / 1000000);
    assert_true(us / 1000 <=
                (int64_t)after.tv_sec * 1000 + after.tv_nsec / 1000000);
}

static void
test_mono(void **state)
{
    long long a, b;

    (void)state;
    a = clock_mono_ms();
    b = clock_mono_ms();
    assert_true(a > 0);
    assert_true(b >= a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_now),
        cmocka_unit_test(test_mono),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
