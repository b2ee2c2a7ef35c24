/* Private: the spin lock of the agent's tables (live blocks, quarantine rings, per-thread
 * buffers). Held for a few hundred instructions at most, so a waiter spins; after a short
 * spin it yields instead, because on a loaded machine the holder may have been preempted and
 * spinning out our own time slice only delays it further. No libc allocation, no syscall on
 * the uncontended path: safe on the hook path. */
#ifndef HTR_BASE_SPIN_H
#define HTR_BASE_SPIN_H
#include <sched.h>

#define HTRI_SPIN_BEFORE_YIELD 200

static inline int htri_spin_trylock(volatile int *l)
{
    return !__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE);
}

static inline void htri_spin_lock(volatile int *l)
{
    while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE)) {
        int spins = 0;
        while (__atomic_load_n(l, __ATOMIC_RELAXED)) {
            if (++spins < HTRI_SPIN_BEFORE_YIELD)
                __builtin_ia32_pause();
            else
                sched_yield();
        }
    }
}

static inline void htri_spin_unlock(volatile int *l) { __atomic_store_n(l, 0, __ATOMIC_RELEASE); }

#endif
