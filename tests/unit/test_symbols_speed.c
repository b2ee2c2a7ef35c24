/* Speed guard of the offline symbolizer: 20000 distinct pcs in one big generated CU
 * (libsymbig.so, -O2 -g) must resolve in well under the time a per-pc CU walk takes, and
 * nearly all of them to a named function with a line. */
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "symbols/symbols.h"

#define N_PCS 20000

unsigned symbig_all(unsigned x);  /* unsigned: the sums wrap */

typedef struct text_range {
    uint64_t lo, hi;
} text_range;

static int find_text(struct dl_phdr_info *info, size_t size, void *arg)
{
    text_range *t = arg;
    if (!info->dlpi_name || !strstr(info->dlpi_name, "libsymbig.so"))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            t->lo = info->dlpi_addr + ph->p_vaddr;
            t->hi = t->lo + ph->p_memsz;
        }
    }
    return 1;
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(void)
{
    CHECK(symbig_all(1) != 12345u);  /* keeps the library linked and loaded */
    text_range text = { 0, 0 };
    dl_iterate_phdr(find_text, &text);
    CHECK(text.hi > text.lo + N_PCS);
    if (text.hi <= text.lo + N_PCS)
        return CHECK_DONE();

    htri_symtab *st = htri_symtab_open();
    CHECK(htri_symtab_add_self(st) > 0);
    uint64_t step = (text.hi - text.lo) / N_PCS;
    int n_named = 0, n_lined = 0, n_inlined = 0;
    htri_frame f[16];
    double t0 = cpu_seconds();
    for (int i = 0; i < N_PCS; i++) {
        int n = htri_symtab_resolve_pc(st, text.lo + 1 + (uint64_t)i * step, 1, f, 16);
        CHECK(n >= 1);
        if (n < 1)
            break;
        n_named += f[n - 1].function != NULL;
        n_lined += f[0].file != NULL;
        n_inlined += n > 1;
    }
    double t1 = cpu_seconds();
    for (int i = 0; i < N_PCS; i++)
        htri_symtab_resolve_pc(st, text.lo + 1 + (uint64_t)i * step, 1, f, 16);
    double t2 = cpu_seconds();
    htri_symtab_close(st);
    fprintf(stderr, "note: %d pcs: %.3f s cpu (%.1f us/pc), cached %.3f s; named %d, "
            "with line %d, with inlined frames %d\n", N_PCS, t1 - t0,
            (t1 - t0) * 1e6 / N_PCS, t2 - t1, n_named, n_lined, n_inlined);
    CHECK(t1 - t0 < 2.0);
    /* the alignment padding between these small functions (~10%) belongs to none */
    CHECK(n_named > N_PCS * 8 / 10);
    CHECK(n_lined > N_PCS * 9 / 10);
    CHECK(n_inlined > N_PCS / 10);
    return CHECK_DONE();
}
