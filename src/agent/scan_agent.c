/* The leak scan's seam with the recording core: runs a whole-process check on the agent's
 * live-block table (at exit, htr_leak_check_now(), --leak-check-signal) and appends the
 * LEAK_CHECK / LEAK_GROUP / LEAK_END records to the trace. */
#include <string.h>

#include "agent/agent.h"
#include "agent/agent_int.h"   /* htri_agent_freeres(): did the exit path run freeres */
#include "agent/scan.h"
#include "base/common.h"
#include "base/os.h"

static struct {
    volatile int busy;        /* a check is running (checks are serialized) */
    unsigned heuristics;      /* --leak-check-heuristics */
    int heuristics_set;
    uintptr_t exit_frame;     /* htri_scan_note_exit_frame: the exiting thread's live frames */
    int exit_tid;
} g_scanagent;

void htri_scan_note_exit_frame(uintptr_t frame)
{
    uintptr_t none = 0;
    int tid = htri_os_gettid();
    if (__atomic_compare_exchange_n(&g_scanagent.exit_frame, &none, frame, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
        __atomic_store_n(&g_scanagent.exit_tid, tid, __ATOMIC_RELEASE);
}

void htri_scan_set_heuristics(unsigned heuristics)
{
    g_scanagent.heuristics = heuristics & HTRI_HEUR_ALL;
    g_scanagent.heuristics_set = 1;
}

static size_t scanagent_snapshot(void *user, htri_block *out, size_t cap)
{
    (void)user;
    return htri_table_snapshot(out, cap);
}

/* Records are `tag len body`; the agent's raw META append takes the tag and the rest. */
static int scanagent_emit(const uint8_t *rec, size_t n)
{
    return htri_agent_meta_record(rec[0], rec + 1, n - 1);
}

int htri_scan_process(int reason, uint32_t flags, htri_leak_check_rec *summary)
{
    if (!htri_agent_active()) return -EIO;
    if (__atomic_exchange_n(&g_scanagent.busy, 1, __ATOMIC_ACQUIRE)) return -EBUSY;
    uint64_t t0 = htri_os_now_ns();
    unsigned heuristics = g_scanagent.heuristics_set ? g_scanagent.heuristics : HTRI_HEUR_ALL;

    htri_scan_world_result r;
    /* dl_iterate_phdr waits for the loader's lock, which a thread in dlopen may hold while
     * its malloc waits for our world lock: do it first */
    htri_scan_prepare();
    htri_agent_world_lock();
    uintptr_t from = 0;
    if (reason == HTRI_LEAK_AT_EXIT &&
        __atomic_load_n(&g_scanagent.exit_tid, __ATOMIC_ACQUIRE) == htri_os_gettid())
        from = __atomic_load_n(&g_scanagent.exit_frame, __ATOMIC_ACQUIRE);
    int rc = htri_scan_world(scanagent_snapshot, NULL, heuristics, from, &r);
    htri_agent_world_unlock();
    if (rc < 0) {
        __atomic_store_n(&g_scanagent.busy, 0, __ATOMIC_RELEASE);
        return rc;
    }

    htri_leak_group_rec *groups = NULL;
    size_t groups_bytes = 0;
    long n_groups = htri_scan_group(r.blocks, &r.scan, &groups, &groups_bytes);
    if (n_groups < 0) {
        htri_scan_world_free(&r);
        __atomic_store_n(&g_scanagent.busy, 0, __ATOMIC_RELEASE);
        return (int)n_groups;
    }

    htri_leak_check_rec check;
    memset(&check, 0, sizeof check);
    check.t = htri_agent_now();
    check.tid = (uint32_t)htri_os_gettid();
    check.reason = (uint8_t)reason;
    check.flags = flags | r.flags;
    check.n_blocks = r.n_blocks;
    for (int k = 0; k < HTRI_LEAK_KINDS; k++) check.bytes_blocks += r.scan.bytes[k];
    check.bytes_roots = r.scan.bytes_roots;
    check.n_threads = r.n_threads;
    check.scan_ns = htri_os_now_ns() - t0;

    uint8_t rec[HTRI_LEAK_CHECK_REC_MAX + HTRI_LEAK_GROUP_REC_MAX];
    rc = scanagent_emit(rec, htri_leak_check_rec_encode(&check, rec));
    for (long i = 0; i < n_groups && rc == 0; i++)
        rc = scanagent_emit(rec, htri_leak_group_rec_encode(&groups[i], rec));
    if (rc == 0) {
        htri_leak_end_rec end = { htri_agent_now(), (uint64_t)n_groups };
        rc = scanagent_emit(rec, htri_leak_end_rec_encode(&end, rec));
    }
    if (summary) *summary = check;

    htri_os_pages_free(groups, groups_bytes);
    htri_scan_world_free(&r);
    __atomic_store_n(&g_scanagent.busy, 0, __ATOMIC_RELEASE);
    return rc;
}

void htri_scan_at_exit(void)
{
    htri_scan_process(HTRI_LEAK_AT_EXIT, htri_agent_freeres() ? HTRI_LEAK_FREERES_RUN : 0, NULL);
}
