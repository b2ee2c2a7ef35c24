/* Private: macros, error codes and the three assertion levels shared by every module. */
#ifndef HTR_BASE_COMMON_H
#define HTR_BASE_COMMON_H
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <errno.h>

#include "base/config.h"

#define HTRI_HIDDEN   __attribute__((visibility("hidden")))
#define HTRI_EXPORT   __attribute__((visibility("default")))
#define HTRI_NOINLINE __attribute__((noinline))
#define HTRI_UNUSED   __attribute__((unused))
#define htri_likely(x)   __builtin_expect(!!(x), 1)
#define htri_unlikely(x) __builtin_expect(!!(x), 0)
#define HTRI_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Errors: library functions return 0 or a negative errno value (-ENOMEM, -EINVAL, -EIO...),
 * plus these project codes for trace problems, below errno's range. */
enum {
    HTRI_E_TRUNCATED = -1001, /* the trace ends inside a frame */
    HTRI_E_CORRUPT   = -1002, /* a frame or record does not decode */
    HTRI_E_FOREIGN   = -1003, /* not a heaptrail trace (bad magic) */
    HTRI_E_VERSION   = -1004, /* a trace version this build cannot read (newer) */
    HTRI_E_FULL      = -1005, /* a fixed-capacity table is full */
    HTRI_E_OLD_VERSION = -1006, /* an older trace format (version 1: addresses, not refs) */
};

/* Overflow-checked size arithmetic: return true on overflow. */
static inline bool htri_mul_overflow(size_t a, size_t b, size_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}
static inline bool htri_add_overflow(size_t a, size_t b, size_t *out)
{
    return __builtin_add_overflow(a, b, out);
}

/* Assertions in three levels, chosen by HTR_DEBUG (0 = none):
 *   1: htri_assert — cheap checks; 2: htri_assert_internal — invariants on hot paths;
 *   3: htri_assert_expensive — whole-structure validators such as htri_table_is_valid(). */
void htri_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));
#if HTR_DEBUG >= 1
#define htri_assert(x) ((x) ? (void)0 : htri_assert_fail(#x, __FILE__, __LINE__))
#else
#define htri_assert(x) ((void)0)
#endif
#if HTR_DEBUG >= 2
#define htri_assert_internal(x) htri_assert(x)
#else
#define htri_assert_internal(x) ((void)0)
#endif
#if HTR_DEBUG >= 3
#define htri_assert_expensive(x) htri_assert(x)
#else
#define htri_assert_expensive(x) ((void)0)
#endif

#endif
