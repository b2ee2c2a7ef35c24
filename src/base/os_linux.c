/* Linux implementation of the OS contract in os.h: clocks, pages, /proc readers.
 * Raw syscalls and small fixed buffers only, so the agent may call any of it from malloc. */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/common.h"
#include "base/os.h"

uint64_t htri_os_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t htri_os_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int htri_os_gettid(void) { return (int)syscall(SYS_gettid); }
int htri_os_getpid(void) { return (int)syscall(SYS_getpid); }

size_t htri_os_page_size(void)
{
    static size_t page;
    if (!page) page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
}

/* Every mapping we make for ourselves is listed here, so the leak scan can leave our own
 * memory out of its roots. Raw syscalls, because the agent interposes mmap/munmap and its
 * own pages must not show up in the program's profile. */
static struct {
    volatile int lock;
    int n_regions;
    htri_os_region regions[HTRI_OS_MAX_REGIONS];
} g_os;

static void os_lock(void)
{
    while (__atomic_exchange_n(&g_os.lock, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&g_os.lock, __ATOMIC_RELAXED)) __builtin_ia32_pause();
}
static void os_unlock(void) { __atomic_store_n(&g_os.lock, 0, __ATOMIC_RELEASE); }

static void os_region_add(void *p, size_t bytes)
{
    os_lock();
    if (g_os.n_regions < HTRI_OS_MAX_REGIONS) {
        g_os.regions[g_os.n_regions].start = (uintptr_t)p;
        g_os.regions[g_os.n_regions].end = (uintptr_t)p + bytes;
        g_os.n_regions++;
    }
    os_unlock();
}

static void *os_map(size_t bytes, int extra_flags)
{
    long r = syscall(SYS_mmap, NULL, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);
    if (r < 0 && r > -4096) return NULL;  /* glibc's syscall() already set errno */
    if ((void *)r == MAP_FAILED) return NULL;
    os_region_add((void *)r, bytes);
    return (void *)r;
}

void *htri_os_pages_alloc(size_t bytes) { return os_map(bytes, 0); }
void *htri_os_pages_reserve(size_t bytes) { return os_map(bytes, MAP_NORESERVE); }

void htri_os_pages_free(void *p, size_t bytes)
{
    if (!p) return;
    os_lock();
    for (int i = 0; i < g_os.n_regions; i++) {
        if (g_os.regions[i].start == (uintptr_t)p) {
            g_os.regions[i] = g_os.regions[--g_os.n_regions];
            break;
        }
    }
    os_unlock();
    syscall(SYS_munmap, p, bytes);
}

int htri_os_own_regions(htri_os_region *out, int cap)
{
    os_lock();
    int n = g_os.n_regions < cap ? g_os.n_regions : cap;
    for (int i = 0; i < n; i++) out[i] = g_os.regions[i];
    int total = g_os.n_regions;
    os_unlock();
    return total;
}

int htri_os_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (w == 0) return -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

ssize_t htri_os_read_small_file(const char *path, char *buf, size_t cap)
{
    if (cap == 0) return -EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = -errno;
            close(fd);
            return e;
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    buf[len] = 0;
    close(fd);
    return (ssize_t)len;
}

static uint64_t os_parse_u64(const char *s, const char **end)
{
    uint64_t v = 0;
    while (*s == ' ' || *s == '\t') s++;
    while (*s >= '0' && *s <= '9') v = v * 10 + (uint64_t)(*s++ - '0');
    if (end) *end = s;
    return v;
}

uint64_t htri_os_rss_bytes(int *fd)
{
    char buf[128];
    if (*fd < 0) {
        *fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
        if (*fd < 0) return 0;
    }
    ssize_t r = pread(*fd, buf, sizeof buf - 1, 0);
    if (r <= 0) return 0;
    buf[r] = 0;
    const char *p;
    os_parse_u64(buf, &p);               /* size */
    uint64_t resident = os_parse_u64(p, NULL);
    return resident * htri_os_page_size();
}

uint64_t htri_os_peak_rss_bytes(void)
{
    char buf[4096];
    if (htri_os_read_small_file("/proc/self/status", buf, sizeof buf) <= 0) return 0;
    const char *p = strstr(buf, "VmHWM:");
    if (!p) return 0;
    return os_parse_u64(p + 6, NULL) * 1024;
}

int htri_os_thread_name(int tid, char *buf, size_t cap)
{
    char path[64] = "/proc/self/task/";
    char digits[16];
    int n = 0;
    unsigned v = (unsigned)tid;
    do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    size_t len = strlen(path);
    while (n > 0) path[len++] = digits[--n];
    memcpy(path + len, "/comm", 6);
    ssize_t r = htri_os_read_small_file(path, buf, cap);
    if (r < 0) return (int)r;
    while (r > 0 && (buf[r - 1] == '\n')) buf[--r] = 0;
    return (int)r;
}

int htri_os_exe_path(char *buf, size_t cap)
{
    if (cap == 0) return -EINVAL;
    ssize_t r = readlink("/proc/self/exe", buf, cap - 1);
    if (r < 0) return -errno;
    buf[r] = 0;
    return (int)r;
}
