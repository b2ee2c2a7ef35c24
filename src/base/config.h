/* Private: every build knob of heaptrail in one place, each with its default. */
#ifndef HTR_BASE_CONFIG_H
#define HTR_BASE_CONFIG_H

/* Stack capture */
#ifndef HTR_DEFAULT_DEPTH
#define HTR_DEFAULT_DEPTH 64        /* frames kept per stack (--depth) */
#endif
#define HTR_MAX_DEPTH 256           /* upper bound accepted for --depth */

/* Agent recording */
#define HTR_TBUF_BYTES (64 * 1024)        /* raw event bytes per thread buffer */
#define HTR_FLUSH_INTERVAL_MS 10          /* writer wake-up: RSS sample + idle-buffer flush */
#define HTR_MAX_QUEUED_BYTES (256u << 20) /* raw bytes waiting for the writer before producers wait */
#define HTR_ZSTD_LEVEL 1                  /* trace compression level */
/* Event times are rounded down to multiples of 2^HTR_TIME_QUANTUM_LOG2 ns (16.4 us): exact
 * nanosecond deltas are noise that zstd cannot squeeze (the trace was 2.6x larger at 1 ns);
 * lifetimes, peaks and timelines need no finer grain, and the reader orders ties safely. */
#define HTR_TIME_QUANTUM_LOG2 14

/* Fill bytes (named so a hexdump tells what it saw) */
#define HTR_FILL_FRESH 0xA5   /* --fill-alloc default pattern for fresh blocks */
#define HTR_FILL_FREED 0xDD   /* freed blocks held in quarantine */
#define HTR_FILL_GUARD 0xFB   /* redzones around live blocks */

#endif
