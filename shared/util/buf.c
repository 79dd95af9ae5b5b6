/*
 * buf.c - capped dynamic buffer.
 *
 * Every buffer that can receive untrusted bytes (message bodies, provider
 * replies, rendered templates) has a maximum; reaching it is an error the
 * caller handles, never a silent truncation or an unbounded allocation.
 * buf_free() wipes the contents because buffers routinely hold codes.
 */
#include "util/buf.h"
#include "util/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

void
buf_init(struct buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

static int
buf_reserve(struct buf *b, size_t extra)
{
    size_t want, ncap;

    if (extra > b->max || b->len > b->max - extra)
        return -1;
    want = b->len + extra + 1;
    if (want <= b->cap)
        return 0;
    ncap = b->cap ? b->cap : 64;
    while (ncap < want)
        ncap *= 2;
    if (ncap > b->max + 1)
        ncap = b->max + 1;
    /* Grow by copy, not realloc: the old block may hold a rendered code
     * and must be wiped before it goes back to the allocator. */
    {
        char *nd = xmalloc(ncap);

        if (b->data) {
            memcpy(nd, b->data, b->len + 1);
            sodium_memzero(b->data, b->cap);
            free(b->data);
        }
        b->data = nd;
    }
    b->cap = ncap;
    return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int
buf_puts(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    size_t room = b->data ? b->cap - b->len : 0; /* NUL included */
    va_list cp;
    int n;

    /* Straight into the free space; formatted again only when it did
     * not fit (rare: the buffer doubles as it grows). */
    va_copy(cp, ap);
    n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, cp);
    va_end(cp);
    if (n >= 0 && (size_t)n < room) {
        b->len += (size_t)n;
        return 0;
    }
    if (room) {
        /* A cut-off copy may hold a code: wipe it, the buffer stays as
         * it was. */
        sodium_memzero(b->data + b->len, room);
    }
    if (n < 0 || buf_reserve(b, (size_t)n) != 0)
        return -1;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

const char *
buf_cstr(const struct buf *b)
{
    return b->data ? b->data : "";
}

void
buf_reset(struct buf *b)
{
    if (b->data) {
        sodium_memzero(b->data, b->len);
        b->data[0] = '\0';
    }
    b->len = 0;
}

void
buf_free(struct buf *b)
{
    if (b->data) {
        sodium_memzero(b->data, b->cap);
        free(b->data);
    }
    b->data = NULL;
    b->len = b->cap = 0;
}

char *
buf_steal(struct buf *b)
{
    char *p = b->data ? b->data : xstrdup("");

    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
