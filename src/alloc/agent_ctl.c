/* The agent-control calls of libheaptrail.a (htr_leak_check_now, htr_check_heap): the program
 * links them whether or not it later runs under the agent, so each finds the preloaded
 * agent's implementation once by name and answers -ENOSYS when there is none. */
#include <dlfcn.h>
#include <errno.h>

#include "heaptrail.h"

typedef int (*agent_ctl_fn)(void);

/* Looked up on first use; AGENT_CTL_NONE remembers "not there" (the agent is preloaded or
 * not from the start: it cannot appear later). */
#define AGENT_CTL_NONE ((void *)1)

static struct {
    void *leak_check_now;
    void *check_heap;
} g_agent_ctl;

static agent_ctl_fn agent_ctl_lookup(void **slot, const char *name)
{
    void *fn = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (!fn) {
        fn = dlsym(RTLD_DEFAULT, name);
        if (!fn)
            fn = AGENT_CTL_NONE;
        __atomic_store_n(slot, fn, __ATOMIC_RELEASE);
    }
    return fn == AGENT_CTL_NONE ? NULL : (agent_ctl_fn)fn;
}

int htr_leak_check_now(void)
{
    agent_ctl_fn fn = agent_ctl_lookup(&g_agent_ctl.leak_check_now,
                                       "heaptrail_agent_leak_check_now");
    return fn ? fn() : -ENOSYS;
}

int htr_check_heap(void)
{
    agent_ctl_fn fn = agent_ctl_lookup(&g_agent_ctl.check_heap, "heaptrail_agent_check_heap");
    return fn ? fn() : -ENOSYS;
}
