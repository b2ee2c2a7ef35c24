/* Where the current thread's stack ends, so the unwinders never read past it. Looked up
 * once per thread and stack (alternate signal stacks, coroutine stacks) from /proc/self/maps
 * with raw open/read: pthread_getattr_np would allocate, and this runs inside malloc and
 * signal handlers. */
#include <fcntl.h>
#include <stdatomic.h>
#include <unistd.h>
#include "unwind/unwind_int.h"

/* The main thread's "[stack]" mapping grows down; treat this much below its current start
 * as the same stack, so a deeper recursion does not send us back to /proc every page. */
#define STACK_GROWTH_SLACK ((uintptr_t)256 << 20)

/* Stacks a thread has run on lately: its own, an alternate signal stack, a few coroutines. */
#define STACK_CACHED 4

/* Per thread. Written only by the thread itself, but possibly from a signal handler that
 * interrupted a read: `seq` is odd while an entry is being written, and a reader that sees
 * it change reads again (a handler runs to completion before the reader resumes). */
static __thread struct {
    unsigned seq;
    unsigned next; /* the entry to replace next */
    struct htri_unwind_stack known[STACK_CACHED];
} g_stack __attribute__((tls_model("initial-exec")));

/* Scans maps text for the line whose range holds `sp`. A small state machine over
 * fixed-size reads: lines can be longer than the buffer and need not be kept. */
static int stack_lookup(uintptr_t sp, struct htri_unwind_stack *out)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    enum { AT_START, AT_END, IN_REST } state = AT_START;
    uintptr_t start = 0, end = 0;
    char tail[8] = { 0 }; /* the last 7 characters of the line, to spot "[stack]" */
    char buf[1024];
    int rc = -ENOENT;
    for (;;) {
        ssize_t got = read(fd, buf, sizeof buf);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        for (ssize_t i = 0; i < got; i++) {
            char c = buf[i];
            if (c == '\n') {
                if (start <= sp && sp < end) {
                    bool is_main = __builtin_memcmp(tail, "[stack]", 7) == 0;
                    out->lo = is_main && start > STACK_GROWTH_SLACK ? start - STACK_GROWTH_SLACK
                                                                    : start;
                    out->hi = end;
                    rc = 0;
                    goto done;
                }
                if (start > sp) /* maps is sorted by address: no later line can hold sp */
                    goto done;
                state = AT_START;
                start = end = 0;
                __builtin_memset(tail, 0, sizeof tail);
                continue;
            }
            int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (state == AT_START) {
                if (digit >= 0)
                    start = start << 4 | (uintptr_t)digit;
                else
                    state = AT_END;
            } else if (state == AT_END) {
                if (digit >= 0)
                    end = end << 4 | (uintptr_t)digit;
                else
                    state = IN_REST;
            } else {
                __builtin_memmove(tail, tail + 1, 6);
                tail[6] = c;
            }
        }
    }
done:
    close(fd);
    return rc;
}

static bool stack_find(uintptr_t sp, struct htri_unwind_stack *out)
{
    for (;;) {
        unsigned seq = g_stack.seq;
        atomic_signal_fence(memory_order_seq_cst);
        bool found = false;
        for (int i = 0; i < STACK_CACHED && !found; i++) {
            struct htri_unwind_stack s = g_stack.known[i];
            if (s.lo <= sp && sp < s.hi) {
                *out = s;
                found = true;
            }
        }
        atomic_signal_fence(memory_order_seq_cst);
        if (!(seq & 1) && seq == g_stack.seq)
            return found;
    }
}

int htri_unwind_stack_bounds(uintptr_t sp, struct htri_unwind_stack *out)
{
    if (htri_likely(stack_find(sp, out)))
        return 0;
    struct htri_unwind_stack found;
    int saved_errno = errno; /* we run inside malloc, which must not disturb errno */
    int rc = stack_lookup(sp, &found);
    errno = saved_errno;
    if (rc < 0)
        return rc;
    g_stack.seq++;
    atomic_signal_fence(memory_order_seq_cst);
    g_stack.known[g_stack.next] = found;
    g_stack.next = (g_stack.next + 1) % STACK_CACHED;
    atomic_signal_fence(memory_order_seq_cst);
    g_stack.seq++;
    *out = found;
    return 0;
}
