/* test_tmpl.c - message templates: load-time checks, locales, rendering
 * (mfa/tmpl), and the templates shipped in config/templates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mfa/mail.h"
#include "mfa/tmpl.h"

static const char *const req_code[] = {"code", NULL};
static const char *const allow_all[] = {"display_name", "portal_name",
                                        "minutes", NULL};

static const struct tmpl_file FILES[] = {
    {"s.txt", 0, 1, NULL, allow_all},
    {"b.txt", 0, 0, req_code, allow_all},
    {"b.html", 1, 0, req_code, allow_all},
};
#define NFILES (sizeof(FILES) / sizeof(FILES[0]))

/* A scratch template tree per test, removed afterwards. */
struct tree {
    char dir[64];
};

static void
put(struct tree *t, const char *loc, const char *file, const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", t->dir, loc);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", t->dir, loc, file);
    f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void
put_locale(struct tree *t, const char *loc, const char *greeting)
{
    char b[256];

    snprintf(b, sizeof(b), "%s {{display_name}}", greeting);
    put(t, loc, "s.txt", b);
    snprintf(b, sizeof(b), "%s {{display_name}},\ncode: {{code}}\n", greeting);
    put(t, loc, "b.txt", b);
    snprintf(b, sizeof(b), "<p>%s {{display_name}}</p><b>{{ code }}</b>\n",
             greeting);
    put(t, loc, "b.html", b);
}

static int
setup(void **state)
{
    struct tree *t = calloc(1, sizeof(*t));

    snprintf(t->dir, sizeof(t->dir), "/tmp/test_tmpl.XXXXXX");
    if (mkdtemp(t->dir) == NULL)
        return -1;
    put_locale(t, "en", "Hello");
    put_locale(t, "nl", "Hallo");
    put_locale(t, "pt-BR", "Olá");
    *state = t;
    return 0;
}

static int
teardown(void **state)
{
    struct tree *t = *state;
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
    if (system(cmd) != 0)
        return -1;
    free(t);
    return 0;
}

static struct tmpl_set *
load(struct tree *t, char *err, size_t n)
{
    return tmpl_load(t->dir, "en", FILES, NFILES, err, n);
}

static char *
render(struct tmpl_set *s, const char *loc, const char *file, const char *name)
{
    struct tmpl_var v[] = {{"display_name", name}, {"code", "123456"}};
    struct buf b;
    char err[256];

    buf_init(&b, 4096);
    assert_int_equal(tmpl_render(s, loc, file, v, 2, &b, err, sizeof(err)), 0);
    return buf_steal(&b);
}

static void
test_load_and_locales(void **state)
{
    struct tree *t = *state;
    char err[512];
    struct tmpl_set *s;

    put(t, ".", "README.md", "not a locale\n"); /* ignored */
    s = load(t, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(tmpl_locale_count(s), 3);
    assert_string_equal(tmpl_locale_name(s, 0), "en");
    assert_string_equal(tmpl_locale(s, "nl-BE"), "nl");
    assert_string_equal(tmpl_locale(s, "NL"), "nl");
    assert_string_equal(tmpl_locale(s, "nl_NL"), "nl");
    assert_string_equal(tmpl_locale(s, "pt_br"), "pt-BR");
    assert_string_equal(tmpl_locale(s, "pt"), "en"); /* no "pt" folder */
    assert_string_equal(tmpl_locale(s, "fr-FR"), "en");
    assert_string_equal(tmpl_locale(s, ""), "en");
    assert_string_equal(tmpl_locale(s, NULL), "en");
    tmpl_free(s);
}

static void
test_render_and_escape(void **state)
{
    struct tree *t = *state;
    char err[512];
    struct tmpl_set *s = load(t, err, sizeof(err));
    char *out;

    assert_non_null(s);
    out = render(s, "nl", "b.txt", "Jan & <Piet>");
    assert_string_equal(out, "Hallo Jan & <Piet>,\ncode: 123456\n");
    free(out);
    out = render(s, "nl", "b.html", "Jan & <Piet> \"'x'\"");
    assert_string_equal(out, "<p>Hallo Jan &amp; &lt;Piet&gt; "
                             "&quot;&#39;x&#39;&quot;</p><b>123456</b>\n");
    free(out);
    /* a subject stays one line whatever the value holds */
    out = render(s, "en", "s.txt", "Eve\r\nBcc: x@evil.example");
    assert_string_equal(out, "Hello Eve  Bcc: x@evil.example");
    assert_null(strpbrk(out, "\r\n"));
    free(out);
    /* unknown file or locale: error, not a crash */
    {
        struct buf b;

        buf_init(&b, 5);
        assert_int_not_equal(
            tmpl_render(s, "fr", "b.txt", NULL, 0, &b, err, sizeof(err)), 0);
        assert_int_not_equal(
            tmpl_render(s, "en", "x.txt", NULL, 0, &b, err, sizeof(err)), 0);
        /* output cap reached: error */
        assert_int_not_equal(
            tmpl_render(s, "en", "b.txt", NULL, 0, &b, err, sizeof(err)), 0);
        buf_free(&b);
    }
    tmpl_free(s);
}

/* Loading fails and the error names the file and the problem. */
static void
expect_error(struct tree *t, const char *want1, const char *want2)
{
    char err[512] = "";
    struct tmpl_set *s = load(t, err, sizeof(err));

    assert_null(s);
    if (strstr(err, want1) == NULL || (want2 && strstr(err, want2) == NULL))
        fail_msg("error \"%s\" lacks \"%s\"/\"%s\"", err, want1,
                 want2 ? want2 : "");
}

static void
test_missing_file(void **state)
{
    struct tree *t = *state;
    char path[256];

    snprintf(path, sizeof(path), "%s/nl/b.html", t->dir);
    assert_int_equal(unlink(path), 0);
    expect_error(t, "nl/b.html", "missing");
}

static void
test_missing_placeholder(void **state)
{
    struct tree *t = *state;

    put(t, "pt-BR", "b.html", "<p>no code here</p>\n");
    expect_error(t, "pt-BR/b.html", "{{code}}");
}

static void
test_unknown_placeholder(void **state)
{
    struct tree *t = *state;

    put(t, "nl", "b.txt", "{{code}} {{pasword}}\n");
    expect_error(t, "nl/b.txt", "{{pasword}}");
    /* a subject may not show the code: not in its allowed list */
    put(t, "nl", "b.txt", "{{code}}\n");
    put(t, "nl", "s.txt", "Code {{code}}\n");
    expect_error(t, "nl/s.txt", "{{code}}");
}

static void
test_bad_syntax(void **state)
{
    struct tree *t = *state;

    put(t, "en", "b.txt", "{{code}}\nline two {{code\n");
    expect_error(t, "en/b.txt", "line 2");
    put(t, "en", "b.txt", "{{code}} {{Code-X}}\n");
    expect_error(t, "en/b.txt", "bad placeholder");
    put(t, "en", "b.txt", "{{code}}\n");
    put(t, "en", "s.txt", "two\nlines\n");
    expect_error(t, "en/s.txt", "one line");
    put(t, "en", "s.txt", "bad \xC3\x28 utf-8\n");
    expect_error(t, "en/s.txt", "UTF-8");
    put(t, "en", "s.txt", "");
    expect_error(t, "en/s.txt", "empty");
}

static void
test_default_locale_missing(void **state)
{
    struct tree *t = *state;
    char err[512];

    assert_null(tmpl_load(t->dir, "de", FILES, NFILES, err, sizeof(err)));
    assert_non_null(strstr(err, "default_locale"));
    assert_null(tmpl_load("/nonexistent/templates", "en", FILES, NFILES, err,
                          sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/templates"));
}

/* The shipped templates: en, nl and de, all complete and translated. */
static void
test_shipped_templates(void **state)
{
    const char *locs[] = {"en", "nl", "de"};
    const char *never[] = {"Never share this code", "Deel deze code nooit",
                           "Geben Sie diesen Code niemals weiter"};
    struct tmpl_var v[] = {{"code", "482913"},
                           {"minutes", "5"},
                           {"display_name", "Jane <Doe>"},
                           {"portal_name", "Customer Portal"}};
    char err[512];
    struct tmpl_set *s;

    (void)state;
    s = tmpl_load("config/templates", "en", mail_template_files,
                  mail_template_nfiles, err, sizeof(err));
    if (s == NULL)
        fail_msg("%s", err);
    assert_int_equal(tmpl_locale_count(s), 3);
    for (size_t i = 0; i < 3; i++) {
        struct buf txt, html, subj;

        assert_string_equal(tmpl_locale(s, locs[i]), locs[i]);
        buf_init(&txt, TMPL_OUT_MAX);
        buf_init(&html, TMPL_OUT_MAX);
        buf_init(&subj, TMPL_OUT_MAX);
        assert_int_equal(
            tmpl_render(s, locs[i], "code.txt", v, 4, &txt, err, sizeof(err)),
            0);
        assert_int_equal(
            tmpl_render(s, locs[i], "code.html", v, 4, &html, err, sizeof(err)),
            0);
        assert_int_equal(tmpl_render(s, locs[i], "code.subject.txt", v, 4,
                                     &subj, err, sizeof(err)),
                         0);
        assert_non_null(strstr(txt.data, "482913"));
        assert_non_null(strstr(html.data, "482913"));
        assert_null(strstr(subj.data, "482913"));
        assert_non_null(strstr(txt.data, never[i]));
        assert_non_null(strstr(html.data, never[i]));
        assert_non_null(strstr(txt.data, "Jane <Doe>"));
        assert_non_null(strstr(html.data, "Jane &lt;Doe&gt;"));
        assert_null(strstr(html.data, "{{"));
        buf_free(&txt);
        buf_free(&html);
        buf_free(&subj);
    }
    tmpl_free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_and_locales, setup, teardown),
        cmocka_unit_test_setup_teardown(test_render_and_escape, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_placeholder, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_placeholder, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_syntax, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_locale_missing, setup,
                                        teardown),
        cmocka_unit_test(test_shipped_templates),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
