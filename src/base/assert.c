/* The one place an assertion failure is reported: write(2) only, then abort. */
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include "base/common.h"

void htri_assert_fail(const char *expr, const char *file, int line)
{
    char num[16];
    int n = 0;
    unsigned v = (unsigned)line;
    char tmp[16];
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v && n < 15);
    for (int i = 0; i < n; i++) num[i] = tmp[n - 1 - i];
    num[n] = 0;
    const char *parts[] = { "heaptrail: assertion failed: ", expr, " at ", file, ":", num, "\n" };
    for (size_t i = 0; i < HTRI_ARRAY_LEN(parts); i++) {
        ssize_t w = write(2, parts[i], strlen(parts[i]));
        (void)w;
    }
    abort();
}
