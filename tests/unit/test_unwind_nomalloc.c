/* Unit test of src/unwind's hook-path contract: init and every engine's captures (first use
 * in a thread, a module rebuild after dlopen, a signal handler, libunwind's fallback) never
 * reach malloc and friends. This program interposes them and counts calls made while a
 * thread is inside the code under test. */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include "base/common.h"
#include "check.h"
#include "unwind/unwind.h"

#define TEST_API __attribute__((visibility("default")))
#define TEST_PCS 64

void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void *__libc_memalign(size_t align, size_t size);
void __libc_free(void *p);

static __thread bool g_watching __attribute__((tls_model("initial-exec")));
static _Atomic int g_calls;

static void count_call(void)
{
    if (g_watching)
        atomic_fetch_add(&g_calls, 1);
}

TEST_API void *malloc(size_t size);
TEST_API void *calloc(size_t n, size_t size);
TEST_API void *realloc(void *p, size_t size);
TEST_API void free(void *p);
TEST_API int posix_memalign(void **out, size_t align, size_t size);
TEST_API void *aligned_alloc(size_t align, size_t size);
TEST_API void *memalign(size_t align, size_t size);

TEST_API void *malloc(size_t size) { count_call(); return __libc_malloc(size); }
TEST_API void *calloc(size_t n, size_t size) { count_call(); return __libc_calloc(n, size); }
TEST_API void *realloc(void *p, size_t size) { count_call(); return __libc_realloc(p, size); }
TEST_API void free(void *p) { if (p) count_call(); __libc_free(p); }
TEST_API void *memalign(size_t align, size_t size)
{
    count_call();
    return __libc_memalign(align, size);
}
TEST_API void *aligned_alloc(size_t align, size_t size)
{
    count_call();
    return __libc_memalign(align, size);
}
TEST_API int posix_memalign(void **out, size_t align, size_t size)
{
    count_call();
    *out = __libc_memalign(align, size);
    return *out ? 0 : ENOMEM;
}

/* Captures with every engine, the watch on; returns the smallest stack seen. This file has
 * no frame pointers, so the frame-pointer engine only promises its first frame. */
static int capture_all(void)
{
    uintptr_t pcs[TEST_PCS];
    int least = TEST_PCS;
    g_watching = true;
    for (int round = 0; round < 3; round++) {
        for (int mode = 0; mode < 3; mode++) {
            int skip = mode == HTRI_UNWIND_FP ? 0 : round;
            int n = htri_unwind_capture_with((htri_unwind_mode)mode, pcs, TEST_PCS, skip);
            if (n < least)
                least = n;
        }
        int n = htri_unwind_capture(pcs, TEST_PCS, round);
        if (n < least)
            least = n;
    }
    g_watching = false;
    return least;
}

static void *thread_main(void *arg)
{
    *(int *)arg = capture_all();
    return NULL;
}

static int g_handler_least = -1;

static void handler(int sig)
{
    g_handler_least = capture_all();
}

int main(void)
{
    g_watching = true;
    CHECK_EQ_U(htri_unwind_init(HTRI_UNWIND_CACHED), 0);
    CHECK_EQ_U(htri_unwind_init(HTRI_UNWIND_DWARF), 0);
    CHECK_EQ_U(htri_unwind_init(HTRI_UNWIND_CACHED), 0);
    g_watching = false;
    CHECK_EQ_U(atomic_load(&g_calls), 0);

    CHECK(capture_all() >= 1);
    CHECK_EQ_U(atomic_load(&g_calls), 0);

    /* First captures in a new thread: per-thread stack bounds and libunwind's caches. */
    pthread_t thread;
    int least = -1;
    CHECK_EQ_U(pthread_create(&thread, NULL, thread_main, &least), 0);
    pthread_join(thread, NULL);
    CHECK(least >= 1);
    CHECK_EQ_U(atomic_load(&g_calls), 0);

    /* A module list rebuild (dlopen itself allocates: not watched). */
    void *lib = dlopen("libm.so.6", RTLD_NOW);
    CHECK(lib != NULL);
    g_watching = true;
    htri_unwind_modules_changed();
    g_watching = false;
    CHECK(capture_all() >= 1);
    CHECK_EQ_U(atomic_load(&g_calls), 0);

    /* In a signal handler the cached engine falls back to libunwind. */
    signal(SIGUSR1, handler);
    raise(SIGUSR1);
    CHECK(g_handler_least >= 1);
    CHECK_EQ_U(atomic_load(&g_calls), 0);
    if (lib)
        dlclose(lib);
    return CHECK_DONE();
}
