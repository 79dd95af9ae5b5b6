/*
 * test_db_later.c - unit tests for the writes kept until COMMIT
 * (mfa/db_later.c): kept rows come back in order, rows of the same bulk
 * statement become one statement with quoted array literals, and with
 * defer off nothing is kept. No server: kept rows never touch it.
 */
#include "mfa/db.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static const char ONE[] = "INSERT one";
static const char ONE_ROWS[] = "INSERT one rows";
static const char OTHER[] = "INSERT other";

static void
test_rows_grouped_in_first_seen_order(void **state)
{
    struct db *db = db_new("");
    struct db_stmt st[8];
    const char *a[2] = {"plain", NULL};
    const char *b[2] = {"quote \" and \\ back", "{braces, comma}"};
    const char *c[1] = {"x"};
    int n;

    (void)state;
    db->defer = 1;
    assert_int_equal(db_defer_rows(db, ONE, ONE_ROWS, 2, a), 0);
    assert_int_equal(db_defer(db, OTHER, 1, c), 0);
    assert_int_equal(db_defer_rows(db, ONE, ONE_ROWS, 2, b), 0);
    assert_int_equal(db_later_count(db), 3);
    assert_int_equal(db->writes, 3);
    n = db_later_stmts(db, st, 8);
    assert_int_equal(n, 2);
    assert_ptr_equal(st[0].sql, ONE_ROWS);
    assert_int_equal(st[0].nparams, 2);
    assert_string_equal(st[0].params[0],
                        "{\"plain\",\"quote \\\" and \\\\ back\"}");
    assert_string_equal(st[0].params[1], "{NULL,\"{braces, comma}\"}");
    assert_ptr_equal(st[1].sql, OTHER);
    assert_string_equal(st[1].params[0], "x");
    db_later_clear(db);
    assert_int_equal(db_later_count(db), 0);
    db_free(db);
}

static void
test_a_single_row_keeps_its_own_statement(void **state)
{
    struct db *db = db_new("");
    struct db_stmt st[2];
    const char *a[2] = {"v", "w"};

    (void)state;
    db->defer = 1;
    assert_int_equal(db_defer_rows(db, ONE, ONE_ROWS, 2, a), 0);
    assert_int_equal(db_later_stmts(db, st, 2), 1);
    assert_ptr_equal(st[0].sql, ONE);
    assert_string_equal(st[0].params[1], "w");
    db_free(db);
}

static void
test_without_defer_it_runs_at_once(void **state)
{
    struct db *db = db_new("");
    const char *a[1] = {"v"};

    (void)state;
    /* No connection: running at once fails, nothing is kept. */
    assert_int_equal(db_defer(db, OTHER, 1, a), -1);
    assert_int_equal(db_later_count(db), 0);
    assert_int_equal(db->last, DB_ERR_CONN);
    db_free(db);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_grouped_in_first_seen_order),
        cmocka_unit_test(test_a_single_row_keeps_its_own_statement),
        cmocka_unit_test(test_without_defer_it_runs_at_once),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
