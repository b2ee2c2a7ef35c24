/* Unit tests of the agent's stack trie (src/agent/stacks.c): the same stack gives the same
 * id, stacks sharing an outer prefix share nodes, node records are complete once published,
 * and 4 threads interning overlapping stacks agree on every id. */
#include <pthread.h>

#include "agent/agent_int.h"
#include "check.h"

/* Does node `id` spell pcs[0..n) innermost first? */
static int spells(uint32_t id, const uintptr_t *pcs, int n)
{
    const uint32_t *parent = htri_stacks_parents();
    const uintptr_t *pc = htri_stacks_pcs();
    for (int i = 0; i < n; i++) {
        if (id == 0 || pc[id] != pcs[i])
            return 0;
        id = parent[id];
    }
    return id == 0;
}

static uint32_t ids[4][2000];

static void *stacks_worker(void *arg)
{
    int w = (int)(uintptr_t)arg;
    for (int round = 0; round < 3; round++) {
        for (int s = 0; s < 2000; s++) {
            uintptr_t pcs[8];
            for (int k = 0; k < 8; k++)
                pcs[k] = 0x400000 + (uintptr_t)(k == 0 ? s : (s % (k + 3)) * 16 + k);
            uint32_t id;
            if (htri_stacks_intern(pcs, 8, &id) != 0 || !spells(id, pcs, 8))
                return (void *)1;
            if (round > 0 && ids[w][s] != id)
                return (void *)1;
            ids[w][s] = id;
        }
    }
    return NULL;
}

int main(void)
{
    CHECK(htri_stacks_init() == 0);
    CHECK_EQ_U(htri_stacks_published(), 1);   /* node 0, the empty stack */
    uint32_t id0, id1, id2, id3;
    CHECK(htri_stacks_intern(NULL, 0, &id0) == 0);
    CHECK_EQ_U(id0, 0);

    uintptr_t a[3] = { 0x1003, 0x2002, 0x3001 };     /* innermost first */
    uintptr_t b[3] = { 0x1004, 0x2002, 0x3001 };     /* same outer two frames */
    CHECK(htri_stacks_intern(a, 3, &id1) == 0);
    CHECK_EQ_U(htri_stacks_published(), 4);
    CHECK(htri_stacks_intern(a, 3, &id2) == 0);
    CHECK_EQ_U(id1, id2);
    CHECK_EQ_U(htri_stacks_published(), 4);          /* nothing new */
    CHECK(htri_stacks_intern(b, 3, &id3) == 0);
    CHECK(id3 != id1);
    CHECK_EQ_U(htri_stacks_published(), 5);          /* one new leaf: prefix shared */
    CHECK(spells(id1, a, 3));
    CHECK(spells(id3, b, 3));
    const uint32_t *parent = htri_stacks_parents();
    CHECK_EQ_U(parent[id1], parent[id3]);
    /* A stack that is a suffix (outer part) of another is its inner node. */
    uint32_t outer;
    CHECK(htri_stacks_intern(a + 1, 2, &outer) == 0);
    CHECK_EQ_U(outer, parent[id1]);
    /* Parent ids are always smaller: the writer can emit NODES in id order. */
    for (uint32_t id = 1; id < htri_stacks_published(); id++)
        CHECK(parent[id] < id);

    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, stacks_worker, (void *)(uintptr_t)i);
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        bad += r != NULL;
    }
    CHECK_EQ_U(bad, 0);
    int disagree = 0;
    for (int s = 0; s < 2000; s++)
        for (int w = 1; w < 4; w++)
            disagree += ids[w][s] != ids[0][s];
    CHECK_EQ_U(disagree, 0);
    for (uint32_t id = 1; id < htri_stacks_published(); id++)
        CHECK(parent[id] < id);
    return CHECK_DONE();
}
