/* Private: printf-style formatting into a caller's buffer with no allocation and no locale,
 * for messages the agent prints from inside malloc (write(2) follows). */
#ifndef HTR_BASE_FMT_H
#define HTR_BASE_FMT_H
#include <stdarg.h>
#include <stddef.h>

/* Supports %% %c %s %d %i %u %x %X %p with flags '-' '0' and ' (thousands separators), a width,
 * and the length modifiers l, ll, z. Always NUL-terminates when cap > 0; returns the length
 * that would have been written (like snprintf). */
size_t htri_vfmt(char *buf, size_t cap, const char *fmt, va_list ap);
size_t htri_fmt(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Formats and writes to fd in one write(2) (messages are cut at 1 KiB). */
void htri_fdprintf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
