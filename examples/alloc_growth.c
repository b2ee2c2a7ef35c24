/* Example: a leak test with the growth harness. A session cache that keeps its expired
 * sessions is GROWING; the fixed cache is not. Exits 0 when both verdicts hold.
 *   cc alloc_growth.c -lheaptrail -lunwind -lm && ./a.out */
#include <stdio.h>
#include <string.h>

#include "heaptrail.h"

enum { LIVE_SESSIONS = 32 };

typedef struct session {
    struct session *next;
    unsigned id;
    char user[40];
} session;

typedef struct cache {
    htr_allocator_t a;
    session *head;
    session *expired;  /* the bug keeps expired sessions here, forever */
    int drop_expired;  /* the fix */
} cache;

/* One request: open a session, and expire the one LIVE_SESSIONS requests old. */
static void handle_request(void *user, size_t iter)
{
    cache *c = user;
    session *s = htr_alloc(c->a, sizeof *s);
    s->id = (unsigned)iter;
    snprintf(s->user, sizeof s->user, "user-%zu", iter % 100);
    s->next = c->head;
    c->head = s;
    session **pp = &c->head;
    for (int k = 0; *pp && k < LIVE_SESSIONS; k++)
        pp = &(*pp)->next;
    session *old = *pp;
    *pp = NULL;
    if (!old)
        return;
    if (c->drop_expired) {
        htr_free(c->a, old, sizeof *old);
    } else {
        old->next = c->expired; /* the bug: "kept for auditing", never dropped */
        c->expired = old;
    }
}

static void free_all(htr_allocator_t a, session *s)
{
    while (s) {
        session *next = s->next;
        htr_free(a, s, sizeof *s);
        s = next;
    }
}

static htr_growth_verdict_t check(int fixed)
{
    htr_tracking_t *t = htr_tracking_new(htr_libc_allocator(), &(htr_layer_opts_t){ .stack_depth = -1 });
    cache c = { htr_tracking_allocator(t), NULL, NULL, fixed };
    htr_growth_opts_t opts = { .tracking = t, .sink = HTR_SINK_FD(1),
                               .name = fixed ? "session cache (fixed)" : "session cache (leaky)" };
    fflush(stdout);
    htr_growth_verdict_t v = htr_growth_test(handle_request, &c, &opts, NULL);
    free_all(c.a, c.head);
    free_all(c.a, c.expired);
    htr_tracking_destroy(t);
    return v;
}

int main(void)
{
    htr_growth_verdict_t leaky = check(0), fixed = check(1);
    printf("leaky: %s, fixed: %s\n", htr_growth_verdict_name(leaky), htr_growth_verdict_name(fixed));
    return leaky == HTR_GROWING && fixed != HTR_GROWING ? 0 : 1;
}
