/*
 * fuzz_addr.c - libFuzzer target for the small-text checks of mfa/addr.h
 * (email syntax and masks, UUIDs, strict UTF-8, control bytes) and the
 * address checks mfa-email applies before a header (mail.h:
 * mail_address_check, mail_split_address).
 *
 * Input: any bytes. The UTF-8 check sees them raw (NULs included) and is
 * compared with a reference decoder (fuzz.h); everything else sees them as
 * the C string a caller would hold.
 *
 * Security notes: the checks are the promises that keep addresses out of
 * trouble downstream: an accepted address has one "@", no blank or control
 * byte, bounded parts; a mask shows one character of the local part and
 * never a truncated remainder; what may go into a header is plain ASCII.
 */
#include "fuzz.h"
#include "mfa/addr.h"
#include "mfa/mail.h"

#include <sodium.h>

static int
is_ascii_upper_safe(char c)
{
    return c >= 'a' && c <= 'z';
}

static void
check_email(const char *s)
{
    char reason[128], tiny[4];
    int rc = addr_email_check(s, reason, sizeof(reason));
    size_t len = strlen(s);
    const char *at = strchr(s, '@');

    /* The answer does not depend on whether a reason is wanted. */
    FUZZ_CHECK(addr_email_check(s, NULL, 0) == rc);
    memset(tiny, 'Z', sizeof(tiny));
    FUZZ_CHECK(addr_email_check(s, tiny, sizeof(tiny)) == rc);
    FUZZ_CHECK(memchr(tiny, '\0', sizeof(tiny)) != NULL);
    if (rc != 0) {
        FUZZ_CHECK(reason[0] != '\0' && fuzz_printable(reason));
        return;
    }
    FUZZ_CHECK(reason[0] == '\0');
    FUZZ_CHECK(len >= 3 && len <= ADDR_EMAIL_MAX);
    FUZZ_CHECK(fuzz_utf8_ok((const unsigned char *)s, len));
    for (size_t i = 0; i < len; i++)
        FUZZ_CHECK((unsigned char)s[i] > 0x20 && s[i] != 0x7f);
    FUZZ_CHECK(at != NULL && strchr(at + 1, '@') == NULL);
    FUZZ_CHECK(at > s && (size_t)(at - s) <= ADDR_LOCAL_MAX);
    FUZZ_CHECK(strchr(at + 1, '.') != NULL);
    FUZZ_CHECK(s[0] != '.' && at[-1] != '.' && at[1] != '.' &&
               s[len - 1] != '.');
    FUZZ_CHECK(strstr(s, "..") == NULL);
}

/*
 * addr_email_mask() at size n: untouched for n == 0, else terminated within
 * n and either "***" (or what of it fits) or exactly the first character
 * of the local part, "***", "@" and the domain.
 */
static void
check_mask(const char *s, size_t n)
{
    char out[320];
    const char *at = strchr(s, '@');
    size_t first;

    memset(out, 'Z', sizeof(out));
    addr_email_mask(s, out, n);
    if (n == 0) {
        FUZZ_CHECK(out[0] == 'Z');
        return;
    }
    FUZZ_CHECK(strnlen(out, n) < n);
    if (strncmp(out, "***", n - 1 < 3 ? n - 1 : 3) == 0 &&
        strlen(out) == (n - 1 < 3 ? n - 1 : 3))
        return;
    FUZZ_CHECK(at != NULL && at > s);
    first = strlen(out) - 3 - strlen(at);
    FUZZ_CHECK(first >= 1 && first <= 4 && first <= (size_t)(at - s));
    FUZZ_CHECK(memcmp(out, s, first) == 0);
    FUZZ_CHECK(memcmp(out + first, "***", 3) == 0);
    FUZZ_CHECK(strcmp(out + first + 3, at) == 0);
    /* A whole UTF-8 character, never half of one. */
    FUZZ_CHECK(fuzz_utf8_ok((const unsigned char *)out, first));
    FUZZ_CHECK(!addr_has_control(out));
}

static void
check_equal_ci(const char *s)
{
    size_t len = strlen(s);
    char *up = fuzz_cstr((const uint8_t *)s, len);
    char *longer = malloc(len + 2);

    FUZZ_CHECK(longer != NULL);
    for (char *p = up; *p != '\0'; p++)
        if (is_ascii_upper_safe(*p))
            *p = (char)(*p - 'a' + 'A');
    FUZZ_CHECK(addr_email_equal_ci(s, s) == 1);
    FUZZ_CHECK(addr_email_equal_ci(s, up) == 1);
    FUZZ_CHECK(addr_email_equal_ci(up, s) == 1);
    memcpy(longer, s, len);
    memcpy(longer + len, "x", 2);
    FUZZ_CHECK(addr_email_equal_ci(s, longer) == 0);
    FUZZ_CHECK(addr_email_equal_ci(longer, s) == 0);
    FUZZ_CHECK(addr_email_equal_ci(s, NULL) == 0);
    free(up);
    free(longer);
}

static void
check_uuid(const char *s)
{
    char *copy;
    int rc = addr_uuid_check(s);

    if (rc != 0)
        return;
    FUZZ_CHECK(strlen(s) == ADDR_UUID_LEN);
    copy = fuzz_cstr((const uint8_t *)s, ADDR_UUID_LEN);
    addr_uuid_lower(copy);
    FUZZ_CHECK(addr_uuid_check(copy) == 0);
    FUZZ_CHECK(strspn(copy, "0123456789abcdef-") == ADDR_UUID_LEN);
    FUZZ_CHECK(addr_email_equal_ci(copy, s) == 1);
    free(copy);
}

/* What mfa-email would put in From:/To: (mail.h). */
static void
check_mail(const char *s)
{
    char name[256], addr[ADDR_EMAIL_MAX + 1], small[8];
    int rc;

    if (mail_address_check(s) == 0) {
        FUZZ_CHECK(addr_email_check(s, NULL, 0) == 0);
        for (const char *p = s; *p != '\0'; p++)
            FUZZ_CHECK(*p > 0x20 && *p < 0x7f &&
                       strchr("()<>[]:;,\\\"", *p) == NULL);
    }
    rc = mail_split_address(s, name, sizeof(name), addr, sizeof(addr));
    /* Without outputs only the address decides; with them a display name
     * that does not fit is refused too (never cut). */
    if (rc == 0)
        FUZZ_CHECK(mail_split_address(s, NULL, 0, NULL, 0) == 0);
    else if (mail_split_address(s, NULL, 0, addr, sizeof(addr)) == 0)
        FUZZ_CHECK(strlen(s) >= sizeof(name));
    if (rc == 0) {
        FUZZ_CHECK(mail_address_check(addr) == 0);
        FUZZ_CHECK(!addr_has_control(name));
        FUZZ_CHECK(strstr(s, addr) != NULL);
    }
    /* Too small outputs: refused, never overrun. */
    if (mail_split_address(s, small, sizeof(small), small, sizeof(small)) == 0)
        FUZZ_CHECK(strlen(small) < sizeof(small));
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        abort();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t sizes[] = {0, 1, 2, 3, 4, 5, 6, 8, 16, 64, 300};
    char *s = fuzz_cstr(data, size);
    int ctl = 0;

    /* Strict UTF-8, raw bytes: same verdict as the reference decoder. */
    FUZZ_CHECK((addr_utf8_check((const char *)data, size) == 0) ==
               fuzz_utf8_ok(data, size));
    for (const char *p = s; *p != '\0'; p++)
        ctl |= (unsigned char)*p < 0x20 || *p == 0x7f;
    FUZZ_CHECK(addr_has_control(s) == ctl);

    check_email(s);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        check_mask(s, sizes[i]);
    check_equal_ci(s);
    check_uuid(s);
    check_mail(s);
    free(s);
    return 0;
}
