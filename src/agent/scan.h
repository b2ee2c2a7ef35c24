/* Private: the leak scan — memcheck's leak classification on the agent's live-block table.
 * scan.c: roots -> flood fill -> the four kinds (works on any block array, so unit tests use it
 * without the agent); scan_world.c: stop-the-world, roots from /proc/self/maps, at-exit seam. */
#ifndef HTR_AGENT_SCAN_H
#define HTR_AGENT_SCAN_H
#include <stddef.h>
#include <stdint.h>

#include "agent/table.h"
#include "trace/leak_record.h"

/* A range of memory to read for pointers. flags: HTRI_ROOT_*. */
typedef struct htri_scan_root {
    uintptr_t start, end;
    uint32_t flags;
} htri_scan_root;
enum {
    /* Read through process_vm_readv: the range may hold pages that fault on access (a file
     * mapped past its end). Without it the range is read directly and must be readable. */
    HTRI_ROOT_CAREFUL = 1u << 0,
    /* glibc's own data (main_arena): a pointer there to the next chunk's header is malloc's
     * bookkeeping, not an interior pointer into the block before it (see scan.c). */
    HTRI_ROOT_LIBC = 1u << 1,
};

#define HTRI_HEUR_ALL 0x1eu   /* bit (1 << HTRI_HEUR_*) for each of memcheck's four */

/* One line of /proc/self/maps, as the scan needs it (scan_world.c reads them). */
typedef struct htri_scan_map {
    uintptr_t start, end;
    uint64_t inode;   /* of the backing file (0: anonymous): the mappings of one module share it */
    uint32_t flags;   /* HTRI_MAP_* */
} htri_scan_map;
enum {
    HTRI_MAP_R = 1u << 0, HTRI_MAP_W = 1u << 1, HTRI_MAP_X = 1u << 2, HTRI_MAP_SHARED = 1u << 3,
    HTRI_MAP_FILE = 1u << 4,    /* backed by a file (inode != 0): memcheck's SkFileC */
    HTRI_MAP_HEAP = 1u << 5,    /* [heap]: glibc's main arena */
    HTRI_MAP_STACK = 1u << 6,   /* [stack] */
    HTRI_MAP_LIBC = 1u << 7,    /* libc.so.6 (its data holds main_arena) */
    HTRI_MAP_DEVICE = 1u << 8,  /* a /dev/ file other than /dev/zero and /dev/shm: never read */
    HTRI_MAP_SPECIAL = 1u << 9, /* [vvar], [vsyscall], [vdso] ... */
};
/* Reads /proc/self/maps with raw syscalls into out[0..cap), in address order (as the kernel
 * lists them). No malloc. Returns the number of mappings (cap at most), or -errno. */
long htri_scan_maps_read(htri_scan_map *out, size_t cap);
/* The mapping holding addr in a sorted array, or NULL. */
const htri_scan_map *htri_scan_maps_find(const htri_scan_map *maps, size_t n, uintptr_t addr);
/* Copies len bytes from src (this process) to dst without faulting (process_vm_readv).
 * Returns the bytes copied (short on an unreadable page), or -errno. */
long htri_scan_read_careful(void *dst, uintptr_t src, size_t len);

typedef struct htri_scan_options {
    const htri_scan_root *roots;   /* memory roots; the blocks themselves are skipped in them */
    size_t n_roots;
    const uintptr_t *root_words;   /* register values: each is a root pointer */
    size_t n_root_words;
    unsigned heuristics;           /* HTRI_HEUR_ALL (memcheck's default) or a subset; 0 none */
    int glibc_chunks;              /* blocks are glibc malloc chunks (HTRI_ROOT_LIBC applies) */
    const htri_scan_map *maps;     /* sorted mappings for the multipleinheritance heuristic and
                                    * the glibc rule; NULL: read /proc/self/maps when needed */
    size_t n_maps;
    void *scratch;                 /* optional working memory of htri_scan_scratch_bytes():
                                    * with the world stopped, mmap might wait on a lock a
                                    * stopped thread holds, so htri_scan_world passes it */
    size_t scratch_bytes;
} htri_scan_options;

/* Bytes of working memory a scan of n blocks with these options needs (page-rounded). */
size_t htri_scan_scratch_bytes(size_t n, const htri_scan_options *opt);

/* Per-block outcome, parallel to the blocks array after the scan sorted it. */
typedef struct htri_scan_extra {
    uint64_t indirect_bytes;  /* definitely lost leaders: bytes of the indirect blocks they lead;
                               * during the scan: the leader index of indirect blocks */
    uint8_t kind;             /* HTRI_LEAK_* */
    uint8_t heuristic;        /* HTRI_HEUR_*, as memcheck keeps it (see scan.c) */
    uint8_t pending;          /* internal: on the mark stack */
    uint8_t pad[5];
} htri_scan_extra;

typedef struct htri_scan_result {
    htri_scan_extra *extra;            /* n entries, mmap'd; htri_scan_result_free releases */
    size_t n_blocks;
    uint64_t bytes[HTRI_LEAK_KINDS], blocks[HTRI_LEAK_KINDS];
    uint64_t heur_bytes[HTRI_HEUR_COUNT], heur_blocks[HTRI_HEUR_COUNT];
    uint64_t bytes_roots;              /* root bytes read */
    uint64_t scan_ns;                  /* wall time of sort + flood fill + grouping */
    size_t mem_bytes;                  /* internal: the mapping behind extra (0: the caller's
                                        * scratch, not ours to free) */
    void *mem;
} htri_scan_result;

/* Classifies blocks as memcheck does (see scan.c for the algorithm). `blocks` (any order) is
 * sorted by address in place; res->extra[i] then describes blocks[i]. Every block must be
 * readable memory of at least its size, and blocks must not overlap. Allocates only with mmap
 * (safe with the world stopped). Returns 0, -EINVAL, or -ENOMEM (res is then empty). */
int htri_scan_blocks(htri_block *blocks, size_t n, const htri_scan_options *opt,
                     htri_scan_result *res);
void htri_scan_result_free(htri_scan_result *res);

/* Groups a classified scan by (kind, heuristic, node, family): the LEAK_GROUP records. The
 * array is mmap'd; *out_bytes is its mapping size for htri_os_pages_free. Returns the number
 * of groups, or -ENOMEM. */
long htri_scan_group(const htri_block *blocks, const htri_scan_result *res,
                     htri_leak_group_rec **out, size_t *out_bytes);

/* ---- Stopping the world (scan_os.c) ------------------------------------------------- */

#define HTRI_SCAN_NREGS 16   /* general-purpose registers kept per thread (memcheck scans these) */
typedef struct htri_scan_thread {
    int tid;
    int state;                       /* HTRI_THREAD_* */
    uintptr_t sp;                    /* stack pointer when stopped */
    uintptr_t tcb;                   /* thread control block (the TLS base), 0 if unknown */
    uintptr_t regs[HTRI_SCAN_NREGS];
} htri_scan_thread;
enum { HTRI_THREAD_SENT = 1, HTRI_THREAD_STOPPED = 2, HTRI_THREAD_GONE = 3,
       HTRI_THREAD_TIMEOUT = 4 /* did not stop (signal blocked): scanned conservatively */ };

/* Stops every thread of the process but the caller: signal HTRI_SCAN_SIGNAL to each task of
 * /proc/self/task (listed again until no new one appears); each saves its registers and stack
 * pointer into threads[] and waits in the handler. Returns the number of entries used in
 * threads[] (states say which stopped), or -errno (nothing is stopped then). Must be paired
 * with htri_scan_resume_world(). No malloc; one stop at a time. */
int htri_scan_stop_world(htri_scan_thread *threads, int cap);
/* Lets the stopped threads run again and waits until they left the handler. */
void htri_scan_resume_world(void);
/* The caller's callee-saved registers (they may hold the only copy of a pointer). Writes up
 * to HTRI_SCAN_NREGS words, returns how many. */
int htri_scan_self_regs(uintptr_t *out);
/* The calling thread's thread control block (x86-64: %fs:0; glibc's tcbhead_t), or 0. */
uintptr_t htri_scan_self_tcb(void);
/* Bytes of the static TLS blocks of the loaded modules (their PT_TLS segments); takes the
 * loader's lock, so call it before stopping the world. */
size_t htri_scan_static_tls_bytes(void);
/* getauxval(AT_PHDR): an address inside the main executable. */
uintptr_t htri_scan_exe_addr(void);

/* The signal used to stop threads (a real-time one, so it queues and programs seldom use
 * it). Build knob. */
#ifndef HTRI_SCAN_SIGNAL
#define HTRI_SCAN_SIGNAL (__libc_current_sigrtmax() - 2)
#endif
#define HTRI_SCAN_STOP_TIMEOUT_MS 2000
#define HTRI_SCAN_MAX_THREADS 4096
#define HTRI_SCAN_REDZONE 128   /* x86-64 ABI: leaf functions may keep data below sp */

/* ---- The whole process (scan_world.c) ------------------------------------------------ */

/* Copies the live blocks into out[0..cap) and returns how many exist (may exceed cap); called
 * with the world stopped (htri_table_snapshot fits). */
typedef size_t (*htri_scan_snapshot_fn)(void *user, htri_block *out, size_t cap);

typedef struct htri_scan_world_result {
    htri_block *blocks;          /* sorted; mmap'd */
    size_t n_blocks, blocks_bytes;
    htri_scan_result scan;
    uint32_t n_threads;          /* threads stopped, the caller included */
    uint32_t flags;              /* HTRI_LEAK_WORLD_PARTIAL */
} htri_scan_world_result;

/* Takes what needs the loader's lock (the static TLS size) ahead of time: call it before
 * locking anything a thread inside dlopen may wait for (the agent's world lock). Done on
 * first use otherwise. */
void htri_scan_prepare(void);

/* A whole-process check: stops the world, snapshots the blocks through `snap`, builds the
 * roots (every readable+writable mapping minus the agent's own memory and module data, glibc's
 * heaps, device mappings, and each stack below its stack pointer; plus each thread's
 * registers), classifies, and resumes the world. The caller must keep the blocks from
 * changing (the agent takes htri_agent_world_lock first). The calling thread's stack is
 * scanned from self_stack_from up (0: from this call's frame). Returns 0 or -errno. */
int htri_scan_world(htri_scan_snapshot_fn snap, void *user, unsigned heuristics,
                    uintptr_t self_stack_from, htri_scan_world_result *out);
void htri_scan_world_free(htri_scan_world_result *r);

/* Marks the calling thread as one of the agent's own (its writer thread): it is stopped
 * like every other, but its stack, TLS and registers are not roots (they hold copies of
 * block addresses it is encoding, which would make lost blocks look reachable), also when
 * it is the thread running the check (a --leak-check-signal check run by the writer). Up to
 * HTRI_SCAN_MAX_IGNORED threads; returns 0 or -ENOSPC. */
#define HTRI_SCAN_MAX_IGNORED 8
int htri_scan_ignore_self(void);

/* ---- The agent's seam (scan_agent.c) ---------------------------------------------------- */

/* Options of the whole-process check (--leak-check-heuristics; default all). */
void htri_scan_set_heuristics(unsigned heuristics);

/* Runs a check on the agent's table and appends LEAK_CHECK, LEAK_GROUP* and LEAK_END to the
 * trace (htri_agent_meta_record). `reason`: HTRI_LEAK_*; `flags`: HTRI_LEAK_FREERES_RUN if
 * the caller ran __libc_freeres / __gnu_cxx::__freeres. Fills *summary if non-NULL.
 * Returns 0, -EBUSY (a check is running), -ENOMEM, or -EIO (the agent is not recording). */
int htri_scan_process(int reason, uint32_t flags, htri_leak_check_rec *summary);

/* Where the program's own frames end on the exiting thread's stack: the agent calls it with
 * __builtin_frame_address(0) from its exit() hook (the callers of exit() are live frames, as
 * memcheck sees them) and from its main() wrapper after main returned (main's frame is dead).
 * The exit check scans that thread's stack from there up, not from deep inside the exit path,
 * whose frames hold stale copies of the program's locals. The first call wins. */
void htri_scan_note_exit_frame(uintptr_t frame);

/* htri_scan_process(HTRI_LEAK_AT_EXIT, freeres flag) — the weak hook agent.h declares. */
void htri_scan_at_exit(void);

#endif
