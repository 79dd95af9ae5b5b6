/*
 * compose.c - one email from templates: pick the locale, render subject,
 * text and HTML, wrap them in an RFC 5322 message (mfa/mail).
 *
 * Called by handler.c for codes and change notices. Security notes: the
 * code is a template value here and nowhere else; every rendered part
 * lives in a struct buf, wiped by buf_free before we return, so only the
 * finished message (owned by the SMTP send, wiped after it) holds it.
 */
#include "email.h"
#include "mfa/mail.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

enum compose_status
compose_message(const struct email_state *st, const struct email_content *c,
                struct buf *msg, char *err, size_t errlen)
{
    const char *loc = tmpl_locale(st->tmpl, c->locale);
    /* "Hello jane@example.com," reads better than "Hello ,". */
    const char *name =
        c->display_name && *c->display_name ? c->display_name : c->to;
    char minutes[24], file[64];
    struct tmpl_var vars[4];
    struct buf subj, text, html;
    struct mail_msg m;
    enum compose_status rc = COMPOSE_ERROR;

    buf_init(msg, EMAIL_MSG_MAX);
    buf_init(&subj, TMPL_OUT_MAX);
    buf_init(&text, TMPL_OUT_MAX);
    buf_init(&html, TMPL_OUT_MAX);
    if (mail_address_check(c->to) != 0) {
        snprintf(err, errlen, "recipient address not usable in a message");
        rc = COMPOSE_BAD_ADDRESS;
        goto out;
    }
    snprintf(minutes, sizeof(minutes), "%ld", c->minutes);
    vars[0] = (struct tmpl_var){"code", c->code};
    vars[1] = (struct tmpl_var){"minutes", minutes};
    vars[2] = (struct tmpl_var){"display_name", name};
    vars[3] = (struct tmpl_var){"portal_name", st->cfg->templates.portal_name};

    snprintf(file, sizeof(file), "%s.subject.txt", c->tmpl);
    if (tmpl_render(st->tmpl, loc, file, vars, 4, &subj, err, errlen) != 0)
        goto out;
    snprintf(file, sizeof(file), "%s.txt", c->tmpl);
    if (tmpl_render(st->tmpl, loc, file, vars, 4, &text, err, errlen) != 0)
        goto out;
    snprintf(file, sizeof(file), "%s.html", c->tmpl);
    if (tmpl_render(st->tmpl, loc, file, vars, 4, &html, err, errlen) != 0)
        goto out;

    memset(&m, 0, sizeof(m));
    m.from = st->cfg->smtp.from;
    m.to = c->to;
    m.to_name = c->display_name;
    m.subject = subj.data;
    m.text = text.data;
    m.html = html.data;
    m.language = loc;
    if (mail_build(&m, time(NULL), msg, NULL, 0, err, errlen) != 0)
        goto out;
    rc = COMPOSE_OK;
out:
    if (rc != COMPOSE_OK)
        buf_free(msg);
    buf_free(&subj);
    buf_free(&text);
    buf_free(&html);
    return rc;
}
