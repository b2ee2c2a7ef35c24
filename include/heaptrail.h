/* heaptrail.h — the one public header of heaptrail.
 * Debug allocators for C code and tests (libheaptrail.a), a leak-growth test harness, and
 * control of the preloaded agent (libheaptrail-preload.so) from the program under test.
 * Self-contained: needs only <stddef.h> and <stdint.h>. */
#ifndef HEAPTRAIL_H
#define HEAPTRAIL_H

#include <stddef.h>
#include <stdint.h>

#define HTR_VERSION_MAJOR 0
#define HTR_VERSION_MINOR 1
#define HTR_VERSION_PATCH 0
#define HTR_VERSION_NUMBER (HTR_VERSION_MAJOR * 10000 + HTR_VERSION_MINOR * 100 + HTR_VERSION_PATCH)
#define HTR_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define HTR_API __attribute__((visibility("default")))
#else
#define HTR_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Debug allocators (libheaptrail.a) ------------------------------------------------ */
/* HTR_ALLOCATORS_BEGIN (owned by src/alloc) */
/* HTR_ALLOCATORS_END */

/* ---- Agent control ------------------------------------------------------------------- */
/* HTR_AGENT_BEGIN (owned by src/agent) */
/* HTR_AGENT_END */

#ifdef __cplusplus
}
#endif
#endif /* HEAPTRAIL_H */
