/* End-to-end program for the run summary taken from the agent's HEAP_TOTALS (tests/cli,
 * case run_summary). One thread. Expected: peak heap 300,000 bytes in 3 blocks; in use at
 * exit 100 bytes in 1 blocks; 1,005 allocs, 1,004 frees, 464,000 bytes allocated; anonymous
 * mmap: 1,114,112 bytes in 2 mappings, peak 1,114,112 mapped, 65,536 at exit.
 * With "corrupt TRACE" it waits until TRACE holds a complete EVENTS frame and scrambles that
 * frame's compressed bytes (its header stays intact) before it does the rest of its work:
 * the trace can then not be replayed, but its summary needs no EVENTS frame. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void *volatile sink;

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Scrambles the data of the first complete EVENTS frame of the trace at path. Returns 0, or
 * -1 when none appeared within 10 s. Reads headers as docs/trace-format.md lays them out. */
static int corrupt_events_frame(const char *path)
{
    for (int tries = 0; tries < 1000; tries++) {
        int fd = open(path, O_RDWR);
        if (fd >= 0) {
            off_t size = lseek(fd, 0, SEEK_END), off = 64;
            unsigned char h[48];
            while (off + 48 <= size && pread(fd, h, 48, off) == 48) {
                uint32_t comp = get_u32(h + 20);
                if (off + 48 + (off_t)comp > size)
                    break;
                if (h[4] == 2 && comp > 0) {    /* an EVENTS frame, wholly written */
                    unsigned char buf[4096];
                    for (off_t at = off + 48; at < off + 48 + (off_t)comp; at += sizeof buf) {
                        size_t n = (size_t)(off + 48 + comp - at);
                        if (n > sizeof buf)
                            n = sizeof buf;
                        if (pread(fd, buf, n, at) != (ssize_t)n)
                            break;
                        for (size_t i = 0; i < n; i++)
                            buf[i] ^= 0x5a;
                        if (pwrite(fd, buf, n, at) != (ssize_t)n)
                            break;
                    }
                    close(fd);
                    return 0;
                }
                off += 48 + (off_t)comp;
            }
            close(fd);
        }
        usleep(10000);
    }
    return -1;
}

int main(int argc, char **argv)
{
    char *keep = malloc(100);
    sink = keep;
    for (int i = 0; i < 1000; i++) {       /* 1,000 short-lived blocks */
        sink = malloc(64);
        free(sink);
    }
    if (argc > 2 && strcmp(argv[1], "corrupt") == 0 && corrupt_events_frame(argv[2]) != 0)
        return 2;
    char *a = malloc(100000), *b = malloc(99900);
    memset(a, 1, 100000);
    memset(b, 2, 99900);
    char *c = realloc(b, 199900);          /* peak: 100 + 100,000 + 199,900 in 3 blocks */
    memset(c, 3, 199900);
    free(a);
    free(c);
    char *d = calloc(10, 10);
    free(d);
    char *m1 = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *m2 = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m1 == MAP_FAILED || m2 == MAP_FAILED)
        return 1;
    m1[0] = m2[0] = 1;
    munmap(m1, 1 << 20);
    sink = keep;
    return 0;
}
