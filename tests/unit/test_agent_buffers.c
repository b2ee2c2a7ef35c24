/* Unit test of the agent core's per-thread buffers without the hooks: 4 threads record
 * enough events for many buffer hand-offs, each exits (key destructor: flush + THREAD_END)
 * and records again from a later key destructor; the final flush writes a trace that
 * decodes completely, with every event, thread and stack node accounted for. */
#include <pthread.h>
#include <unistd.h>

#include "agent/agent_int.h"
#include "check.h"
#include "fixtures/agent/decode.h"

#define EVENTS_PER_THREAD 100000

static pthread_key_t late_key;

/* Runs after the agent's own key destructor: the thread records once more. */
static void late_destructor(void *arg)
{
    uintptr_t pcs[2] = { 0x1234, 0x5678 };
    htri_agent_on_alloc(HTRI_FAM_MALLOC, arg, 1, pcs, 2);
}

static void *worker(void *arg)
{
    uintptr_t base = (uintptr_t)arg;
    htri_agent_guard++;  /* as inside a hook */
    for (uintptr_t i = 0; i < EVENTS_PER_THREAD / 2; i++) {
        uintptr_t pcs[3] = { 0x400000 + (i % 7), 0x500000, 0x600000 + (base >> 32) };
        htri_agent_on_alloc(HTRI_FAM_MALLOC, (void *)(base + i * 32), 32, pcs, 3);
        htri_agent_on_free(HTRI_FFAM_FREE, (void *)(base + i * 32));
    }
    htri_agent_guard--;
    pthread_setspecific(late_key, (void *)(base + 0xfffff0));
    return NULL;
}

int main(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/htr_buffers_%d.htr", (int)getpid());
    char opts[128];
    snprintf(opts, sizeof opts, "out=%s;unwind=fp", path);
    setenv("HEAPTRAIL_OPTIONS", opts, 1);
    htri_agent_guard++;
    CHECK(htri_agent_init_early() == 0);
    htri_agent_init_late();
    htri_agent_guard--;
    CHECK(htri_agent_recording());
    pthread_key_create(&late_key, late_destructor);

    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, worker, (void *)((uintptr_t)(i + 1) << 32));
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    usleep(50 * 1000);  /* let the writer pick up the late events and the THREAD_ENDs */
    htri_agent_guard++;
    htri_agent_stop_writer();
    htri_agent_finish(HTRI_END_EXIT, 0);
    htri_agent_guard--;
    CHECK(!htri_agent_recording());

    dec_trace d;
    CHECK(dec_file(path, &d) == 0);
    uint64_t want = 4 * (EVENTS_PER_THREAD / 2);
    CHECK_EQ_U(d.n_alloc[HTRI_FAM_MALLOC], want + 4);    /* + one late alloc per thread */
    CHECK_EQ_U(d.n_free[HTRI_FFAM_FREE], want);
    CHECK_EQ_U(d.end[5], want + 4);
    CHECK_EQ_U(d.end[6], want);
    CHECK_EQ_U(d.n_end, 1);
    CHECK_EQ_U(d.bad_node_refs, 0);
    CHECK_EQ_U(d.bad_tid_refs, 0);
    /* 400k events fill many buffers per thread; the writer joins a busy thread's buffers
     * into bigger frames (htri_ev_append), so the counts and the replay above and below are
     * what prove the joins; every thread has a frame of its own at least */
    CHECK(d.n_event_frames >= 4);
    CHECK_EQ_U(d.n_threads, 4);
    CHECK_EQ_U(d.n_thread_ends, 4);
    /* 7 leaves x 4 threads share two inner nodes per thread; plus the late stack. */
    CHECK_EQ_U(d.n_nodes_defined, 1 + 4 * (2 + 7) + 2);
    dec_replay rp;
    dec_replay_events(&d, &rp);
    CHECK_EQ_U(rp.unknown_frees, 0);
    CHECK_EQ_U(rp.live_blocks, 4);
    dec_free(&d);
    unlink(path);
    return CHECK_DONE();
}
