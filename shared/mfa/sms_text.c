/*
 * sms_text.c - code SMS text: GSM-7 / UCS-2 sizing, rendering, the
 * one-segment start-up check.
 *
 * Callers: mfa-sms (sms_text_render per job, sms_text_check in its init
 * hook), tests/unit/test_sms_text.c. The character tables are GSM 03.38
 * (3GPP TS 23.038) default alphabet and its extension table, as Unicode
 * code points: this is what Twilio uses to decide between GSM-7 and UCS-2
 * (with smart encoding off, which is its default).
 *
 * Security notes: rendered texts hold a code; they live in struct buf,
 * which wipes on free, and the temporary rendering of the start-up check
 * uses a fixed dummy code.
 */
#include "mfa/sms_text.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* GSM 03.38 default alphabet outside printable ASCII. */
static const uint32_t gsm7_basic_extra[] = {
    0x0A,  0x0D,  0xA1,  0xA3,  0xA4,  0xA5,  0xA7,  0xBF,  0xC4, 0xC5,  0xC6,
    0xC7,  0xC9,  0xD1,  0xD6,  0xD8,  0xDC,  0xDF,  0xE0,  0xE4, 0xE5,  0xE6,
    0xE8,  0xE9,  0xEC,  0xF1,  0xF2,  0xF6,  0xF8,  0xF9,  0xFC, 0x393, 0x394,
    0x398, 0x39B, 0x39E, 0x3A0, 0x3A3, 0x3A6, 0x3A8, 0x3A9,
};
/* The extension table: an escape septet plus one. */
static const uint32_t gsm7_ext[] = {
    0x0C, '[', '\\', ']', '^', '{', '|', '}', '~', 0x20AC,
};

static const char *const sms_required[] = {"code", NULL};
static const char *const sms_allowed[] = {"code", "minutes", "portal_name",
                                          NULL};

const struct tmpl_file sms_template_files[] = {
    {"sms.txt", 0, 0, sms_required, sms_allowed},
};
const size_t sms_template_nfiles =
    sizeof(sms_template_files) / sizeof(sms_template_files[0]);

static int
sms_in(const uint32_t *set, size_t n, uint32_t cp)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == cp)
            return 1;
    return 0;
}

/* Septets for one code point in GSM-7: 1, 2 (extension table) or 0 when
 * GSM-7 cannot carry it. */
static int
sms_gsm7_septets(uint32_t cp)
{
    if (sms_in(gsm7_ext, sizeof(gsm7_ext) / sizeof(gsm7_ext[0]), cp))
        return 2;
    if (cp >= 0x20 && cp <= 0x7E)
        return cp == '`' ? 0 : 1;
    return sms_in(gsm7_basic_extra,
                  sizeof(gsm7_basic_extra) / sizeof(gsm7_basic_extra[0]), cp)
               ? 1
               : 0;
}

/* Decodes one UTF-8 sequence at s (n bytes left): its length, or 0 when
 * it is not well-formed (overlong, surrogate, beyond U+10FFFF, cut). */
static size_t
sms_utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len, i;
    uint32_t c;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        len = 2;
        c = s[0] & 0x1F;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3;
        c = s[0] & 0x0F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4;
        c = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))) ||
        (len == 4 && (c < 0x10000 || c > 0x10FFFF)))
        return 0;
    *cp = c;
    return len;
}

int
sms_text_size(const char *s, size_t len, struct sms_size *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t septets = 0, utf16 = 0, i = 0;
    int gsm = 1;

    memset(out, 0, sizeof(*out));
    while (i < len) {
        uint32_t cp;
        size_t k = sms_utf8_next(p + i, len - i, &cp);
        int sep;

        if (k == 0)
            return -1;
        i += k;
        utf16 += cp > 0xFFFF ? 2 : 1;
        sep = sms_gsm7_septets(cp);
        if (sep == 0)
            gsm = 0;
        septets += (size_t)sep;
    }
    out->coding = gsm ? SMS_GSM7 : SMS_UCS2;
    out->units = gsm ? septets : utf16;
    out->limit = gsm ? SMS_GSM7_SEGMENT : SMS_UCS2_SEGMENT;
    /* Concatenated parts lose room to the user data header: 153 septets
     * or 67 units each. */
    if (out->units <= out->limit)
        out->segments = out->units > 0 ? 1 : 0;
    else
        out->segments =
            (int)((out->units + (gsm ? 152 : 66)) / (gsm ? 153 : 67));
    return 0;
}

const char *
sms_coding_name(enum sms_coding c)
{
    return c == SMS_GSM7 ? "GSM-7" : "UCS-2";
}

int
sms_text_render(const struct tmpl_set *s, const char *locale,
                const struct sms_text_vars *v, struct buf *out, char *err,
                size_t errlen)
{
    char minutes[24];
    struct tmpl_var vars[3];
    int rc = -1;

    buf_init(out, SMS_TEXT_MAX);
    snprintf(minutes, sizeof(minutes), "%ld", v->minutes);
    vars[0] = (struct tmpl_var){"code", v->code};
    vars[1] = (struct tmpl_var){"minutes", minutes};
    vars[2] = (struct tmpl_var){"portal_name", v->portal_name};
    if (tmpl_render(s, locale, "sms.txt", vars, 3, out, err, errlen) != 0)
        goto out;
    /* The file's final newline (and any stray blank) would cost septets
     * and shows up as an empty line on some phones. */
    while (out->len > 0 &&
           (out->data[out->len - 1] == '\n' ||
            out->data[out->len - 1] == '\r' || out->data[out->len - 1] == ' ' ||
            out->data[out->len - 1] == '\t'))
        out->data[--out->len] = '\0';
    if (v->webotp_domain != NULL && v->webotp_domain[0] != '\0' &&
        buf_printf(out, "\n\n@%s #%s", v->webotp_domain, v->code) != 0) {
        snprintf(err, errlen, "sms text: longer than %d bytes", SMS_TEXT_MAX);
        goto out;
    }
    rc = 0;
out:
    if (rc != 0)
        buf_free(out);
    return rc;
}

int
sms_text_check(const struct tmpl_set *s, const char *dir, long max_minutes,
               const char *portal_name, const char *webotp_domain, char *err,
               size_t errlen)
{
    const struct sms_text_vars v = {"0123456789", max_minutes, portal_name,
                                    webotp_domain};
    char why[256];

    for (size_t i = 0; i < tmpl_locale_count(s); i++) {
        const char *loc = tmpl_locale_name(s, i);
        struct sms_size sz;
        struct buf text;

        if (sms_text_render(s, loc, &v, &text, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s/%s/sms.txt: %s", dir, loc, why);
            return -1;
        }
        if (sms_text_size(text.data, text.len, &sz) != 0) {
            buf_free(&text);
            snprintf(err, errlen,
                     "%s/%s/sms.txt: rendered text is not UTF-8 "
                     "(check templates.portal_name)",
                     dir, loc);
            return -1;
        }
        buf_free(&text);
        if (sz.segments != 1) {
            snprintf(err, errlen,
                     "%s/%s/sms.txt: with a 10-digit code%s it needs %d SMS "
                     "segments (%s, %zu of %zu %s); shorten it to fit one",
                     dir, loc,
                     webotp_domain && *webotp_domain ? " and the WebOTP line"
                                                     : "",
                     sz.segments, sms_coding_name(sz.coding), sz.units,
                     sz.limit, sz.coding == SMS_GSM7 ? "septets" : "units");
            return -1;
        }
    }
    return 0;
}
