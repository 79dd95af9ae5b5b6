/* buf.h - growable byte buffer with a hard size cap (curl dynbuf style). */
#ifndef UTIL_BUF_H
#define UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    size_t max; /* appends beyond this fail; never grows past it */
};

void buf_init(struct buf *b, size_t max);
/* 0 on success, -1 when the cap would be exceeded (buffer unchanged). */
int buf_append(struct buf *b, const void *p, size_t n)
    __attribute__((warn_unused_result));
int buf_puts(struct buf *b, const char *s) __attribute__((warn_unused_result));
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), warn_unused_result));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
    __attribute__((warn_unused_result));
const char *buf_cstr(const struct buf *b);
void buf_reset(struct buf *b);
/* Wipes the bytes before freeing: buffers often hold rendered secrets. */
void buf_free(struct buf *b);
/* Hands the storage to the caller (NUL-terminated) and resets b. */
char *buf_steal(struct buf *b);

#endif
