/* test_buf.c - the capped buffer (util/buf): appends and printf into the
 * free space or after growing, the cap (refused, buffer unchanged), reset,
 * steal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/buf.h"

static void
test_append_grows(void **state)
{
    struct buf b;
    char big[1000];

    (void)state;
    buf_init(&b, 4096);
    assert_string_equal(buf_cstr(&b), "");
    memset(big, 'x', sizeof(big));
    for (int i = 0; i < 4; i++)
        assert_int_equal(buf_append(&b, big, sizeof(big)), 0);
    assert_int_equal(b.len, 4000);
    assert_true(b.cap > b.len && b.cap <= b.max + 1);
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(buf_puts(&b, "end"), 0);
    assert_string_equal(b.data + 4000, "end");
    buf_free(&b);
    assert_null(b.data);
}

static void
test_printf_fits_and_grows(void **state)
{
    struct buf b;
    char want[600];

    (void)state;
    buf_init(&b, 4096);
    /* The first call has no storage yet, the second fits, the third
     * needs a larger block. */
    assert_int_equal(buf_printf(&b, "%s=%d", "a", 1), 0);
    assert_int_equal(buf_printf(&b, "&%s", "b"), 0);
    assert_string_equal(b.data, "a=1&b");
    assert_int_equal(buf_printf(&b, "%500s|", "z"), 0);
    snprintf(want, sizeof(want), "a=1&b%500s|", "z");
    assert_string_equal(b.data, want);
    assert_int_equal(b.len, strlen(want));
    buf_free(&b);
}

static void
test_cap(void **state)
{
    struct buf b;

    (void)state;
    buf_init(&b, 10);
    assert_int_equal(buf_puts(&b, "0123456"), 0);
    /* Over the cap: refused, nothing changed. */
    assert_int_equal(buf_append(&b, "7890", 4), -1);
    assert_int_equal(buf_printf(&b, "%s", "7890"), -1);
    assert_int_equal(b.len, 7);
    assert_string_equal(b.data, "0123456");
    /* Up to the cap exactly is fine, then nothing more. */
    assert_int_equal(buf_printf(&b, "%d", 789), 0);
    assert_string_equal(b.data, "0123456789");
    assert_int_equal(buf_printf(&b, "%s", ""), 0);
    assert_int_equal(buf_append(&b, "x", 1), -1);
    assert_int_equal(buf_printf(&b, "x"), -1);
    assert_string_equal(b.data, "0123456789");
    buf_free(&b);
}

static void
test_printf_cut_off_is_wiped(void **state)
{
    struct buf b;

    (void)state;
    buf_init(&b, 100);
    assert_int_equal(buf_puts(&b, "ab"), 0);
    /* Does not fit the first block (64) nor the cap: the part that was
     * written into the free space must not stay behind. */
    assert_int_equal(buf_printf(&b, "%150s", "secret"), -1);
    assert_int_equal(b.len, 2);
    for (size_t i = b.len; i < b.cap; i++)
        assert_int_equal(b.data[i], '\0');
    buf_free(&b);
}

static void
test_reset_and_steal(void **state)
{
    struct buf b;
    char *s;

    (void)state;
    buf_init(&b, 100);
    assert_int_equal(buf_puts(&b, "123456"), 0);
    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(buf_cstr(&b), "");
    assert_int_equal(buf_printf(&b, "%s", "kept"), 0);
    s = buf_steal(&b);
    assert_string_equal(s, "kept");
    assert_null(b.data);
    free(s);
    s = buf_steal(&b);
    assert_string_equal(s, "");
    free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_grows),
        cmocka_unit_test(test_printf_fits_and_grows),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_printf_cut_off_is_wiped),
        cmocka_unit_test(test_reset_and_steal),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
