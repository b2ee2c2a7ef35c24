/* alloc_count: a tiny LD_PRELOAD library that counts calls to the allocation functions,
 * so bench/realprograms.sh can size its workloads without any heap profiler.
 *
 * Build: cc -O2 -shared -fPIC -o alloc_count.so bench/alloc_count.c
 * Use:   LD_PRELOAD=./alloc_count.so PROG ...   -> one line on stderr at exit:
 *        alloc_count: pid P malloc M calloc C realloc R memalign A free F total-allocs T
 * Forwards to glibc's __libc_* entry points, so no dlsym bootstrap is needed.  Counts only
 * the process it is loaded into (children inherit LD_PRELOAD and print their own line).
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t align, size_t size);
extern void __libc_free(void *p);

static struct {
    atomic_ulong n_malloc, n_calloc, n_realloc, n_memalign, n_free;
} g_count;

#define COUNT(field) atomic_fetch_add_explicit(&g_count.field, 1, memory_order_relaxed)

void *malloc(size_t size) { COUNT(n_malloc); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { COUNT(n_calloc); return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { COUNT(n_realloc); return __libc_realloc(p, size); }
void free(void *p) { if (p) COUNT(n_free); __libc_free(p); }
void *memalign(size_t align, size_t size) { COUNT(n_memalign); return __libc_memalign(align, size); }
void *aligned_alloc(size_t align, size_t size) { COUNT(n_memalign); return __libc_memalign(align, size); }
int posix_memalign(void **out, size_t align, size_t size)
{
    COUNT(n_memalign);
    void *p = __libc_memalign(align, size);
    if (!p)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}

/* Report from a destructor with snprintf into a stack buffer and one write(2). */
__attribute__((destructor)) static void alloc_count_report(void)
{
    char line[256];
    unsigned long m = g_count.n_malloc, c = g_count.n_calloc, r = g_count.n_realloc;
    unsigned long a = g_count.n_memalign, f = g_count.n_free;
    int len = snprintf(line, sizeof line,
                       "alloc_count: pid %ld malloc %lu calloc %lu realloc %lu memalign %lu "
                       "free %lu total-allocs %lu\n",
                       (long)getpid(), m, c, r, a, f, m + c + r + a);
    if (len > 0)
        (void)!write(2, line, strlen(line));
}
