/* No-allocation formatter (see fmt.h): the agent's only way to compose text. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "base/fmt.h"

typedef struct fmt_out { char *buf; size_t cap, len; } fmt_out;

static void fmt_putc(fmt_out *o, char c)
{
    if (o->len + 1 < o->cap) o->buf[o->len] = c;
    o->len++;
}

static void fmt_pad(fmt_out *o, char c, int n)
{
    while (n-- > 0) fmt_putc(o, c);
}

static void fmt_str(fmt_out *o, const char *s, size_t n, int width, int left)
{
    int pad = width > (int)n ? width - (int)n : 0;
    if (!left) fmt_pad(o, ' ', pad);
    for (size_t i = 0; i < n; i++) fmt_putc(o, s[i]);
    if (left) fmt_pad(o, ' ', pad);
}

static void fmt_num(fmt_out *o, uint64_t v, int neg, unsigned base, int upper, int width,
                    int left, int zero, int commas)
{
    char tmp[40];
    int n = 0, digits = 0;
    const char *dig = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    do {
        if (commas && digits && digits % 3 == 0) tmp[n++] = ',';
        tmp[n++] = dig[v % base];
        v /= base;
        digits++;
    } while (v);
    if (neg) {
        if (zero && !left) {
            fmt_putc(o, '-');
            width--;
            neg = 0;
        } else {
            tmp[n++] = '-';
        }
    }
    int pad = width > n ? width - n : 0;
    if (!left) fmt_pad(o, zero ? '0' : ' ', pad);
    while (n > 0) fmt_putc(o, tmp[--n]);
    if (left) fmt_pad(o, ' ', pad);
}

size_t htri_vfmt(char *buf, size_t cap, const char *fmt, va_list ap)
{
    fmt_out o = { buf, cap, 0 };
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') { fmt_putc(&o, *p); continue; }
        p++;
        int left = 0, zero = 0, commas = 0, width = 0, lng = 0;
        for (;; p++) {
            if (*p == '-') left = 1;
            else if (*p == '0') zero = 1;
            else if (*p == ',' || *p == '\'') commas = 1;
            else break;
        }
        while (*p >= '0' && *p <= '9') width = width * 10 + (*p++ - '0');
        if (*p == '.') {               /* precision only honoured for %.*s */
            p++;
            if (*p == '*') {
                int prec = va_arg(ap, int);
                p++;
                if (*p == 's') {
                    const char *s = va_arg(ap, const char *);
                    if (!s) s = "(null)";
                    size_t n = strnlen(s, prec < 0 ? 0 : (size_t)prec);
                    fmt_str(&o, s, n, width, left);
                    continue;
                }
            }
            while (*p >= '0' && *p <= '9') p++;
        }
        while (*p == 'l') { lng++; p++; }
        if (*p == 'z') { lng = 2; p++; }
        switch (*p) {
        case '%': fmt_putc(&o, '%'); break;
        case 'c': { char c = (char)va_arg(ap, int); fmt_str(&o, &c, 1, width, left); break; }
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s) s = "(null)";
            fmt_str(&o, s, strlen(s), width, left);
            break;
        }
        case 'd': case 'i': {
            int64_t v = lng >= 2 ? va_arg(ap, long long) : lng == 1 ? va_arg(ap, long)
                                                                     : va_arg(ap, int);
            uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
            fmt_num(&o, u, v < 0, 10, 0, width, left, zero, commas);
            break;
        }
        case 'u': case 'x': case 'X': {
            uint64_t v = lng >= 2 ? va_arg(ap, unsigned long long)
                       : lng == 1 ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
            fmt_num(&o, v, 0, *p == 'u' ? 10 : 16, *p == 'X', width, left, zero, commas && *p == 'u');
            break;
        }
        case 'p': {
            uintptr_t v = (uintptr_t)va_arg(ap, void *);
            fmt_putc(&o, '0'); fmt_putc(&o, 'x');
            fmt_num(&o, v, 0, 16, 0, width > 2 ? width - 2 : 0, left, zero, 0);
            break;
        }
        case 0: p--; break;
        default: fmt_putc(&o, '%'); fmt_putc(&o, *p); break;
        }
    }
    if (cap > 0) buf[o.len < cap ? o.len : cap - 1] = 0;
    return o.len;
}

size_t htri_fmt(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = htri_vfmt(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

void htri_fdprintf(int fd, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    size_t n = htri_vfmt(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n >= sizeof buf) n = sizeof buf - 1;
    ssize_t w = write(fd, buf, n);
    (void)w;
}
