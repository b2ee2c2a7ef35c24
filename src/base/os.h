/* Private: the operating-system contract. Every syscall, /proc read and clock lives behind
 * these calls, implemented once per OS (os_linux.c). None of them allocates through libc,
 * so all are safe on the agent's hook path unless noted. */
#ifndef HTR_BASE_OS_H
#define HTR_BASE_OS_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

uint64_t htri_os_now_ns(void);          /* CLOCK_MONOTONIC, nanoseconds */
uint64_t htri_os_realtime_ns(void);     /* CLOCK_REALTIME, nanoseconds since the epoch */
int htri_os_gettid(void);
int htri_os_getpid(void);
size_t htri_os_page_size(void);

/* Anonymous private pages, zero-filled. Returns NULL on failure (errno set). `reserve`
 * only reserves address space (MAP_NORESERVE) so huge tables cost what they touch. */
void *htri_os_pages_alloc(size_t bytes);
void *htri_os_pages_reserve(size_t bytes);
void htri_os_pages_free(void *p, size_t bytes);
/* The mappings made through the calls above (our own memory), for the leak scan to skip.
 * Copies up to cap regions; returns how many exist. */
#define HTRI_OS_MAX_REGIONS 4096
typedef struct htri_os_region { uintptr_t start, end; } htri_os_region;
int htri_os_own_regions(htri_os_region *out, int cap);

/* write(2) until done or error; returns 0 or -errno. Retries EINTR. */
int htri_os_write_all(int fd, const void *buf, size_t n);
/* pread/read the whole of a small file (e.g. /proc/self/statm) into buf (NUL-terminated,
 * truncated to cap-1). Returns bytes read or -errno. */
ssize_t htri_os_read_small_file(const char *path, char *buf, size_t cap);
/* Resident set size in bytes from /proc/self/statm, using a cached fd (opened on first use,
 * pass *fd = -1 initially). Returns 0 when unreadable. */
uint64_t htri_os_rss_bytes(int *fd);
/* Peak RSS (VmHWM) in bytes from /proc/self/status; 0 when unknown. */
uint64_t htri_os_peak_rss_bytes(void);
/* Name of thread `tid` of this process from /proc/self/task/TID/comm into buf. Returns
 * length or -errno. */
int htri_os_thread_name(int tid, char *buf, size_t cap);
/* Path of the running executable (readlink /proc/self/exe). Returns length or -errno. */
int htri_os_exe_path(char *buf, size_t cap);

#endif
