/* Function names from ELF symbol tables (.symtab, else the debug file's, else .dynsym), for
 * code without DWARF such as Debian's stripped libraries. libdwfl's own lookup scans the
 * whole table per address; this sorts each module's functions once and bisects. */
#include <stdlib.h>
#include <string.h>

#include "symbols/symbols_int.h"

/* Of several names at one address (malloc, __libc_malloc, __malloc), show the one a user
 * calls: global before weak before local, then the fewest leading underscores, then the
 * shortest. Lower ranks first. */
static int elfsym_rank(const symbols_func *f)
{
    int bind = f->bind == STB_GLOBAL ? 0 : f->bind == STB_WEAK ? 1 : 2;
    int under = 0;
    while (f->name[under] == '_')
        under++;
    return bind << 24 | (under > 15 ? 15 : under) << 16 | (int)(strlen(f->name) & 0xffff);
}

static int elfsym_cmp(const void *pa, const void *pb)
{
    const symbols_func *a = pa, *b = pb;
    if (a->lo != b->lo)
        return a->lo < b->lo ? -1 : 1;
    return (a->rank > b->rank) - (a->rank < b->rank);
}

static int elfsym_build(symbols_module *m)
{
    int n_syms = dwfl_module_getsymtab(m->dwmod);
    if (n_syms <= 0) {
        m->funcs_built = true;
        return 0;
    }
    symbols_func *funcs = htri_symbols_realloc(m->owner, NULL, (size_t)n_syms * sizeof *funcs);
    if (!funcs)
        return -ENOMEM;
    size_t n = 0;
    for (int i = 1; i < n_syms; i++) {
        GElf_Sym sym;
        GElf_Addr addr;
        GElf_Word shndx;
        const char *name = dwfl_module_getsym_info(m->dwmod, i, &sym, &addr, &shndx,
                                                   NULL, NULL);
        int type = GELF_ST_TYPE(sym.st_info);
        if (!name || !*name || sym.st_shndx == SHN_UNDEF ||
            (type != STT_FUNC && type != STT_GNU_IFUNC))
            continue;
        symbols_func *f = &funcs[n++];
        f->lo = addr;
        f->hi = addr + sym.st_size;
        f->name = name;
        f->bind = (uint8_t)GELF_ST_BIND(sym.st_info);
        f->rank = elfsym_rank(f);
    }
    qsort(funcs, n, sizeof *funcs, elfsym_cmp);
    /* keep the best-ranked name per address */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && funcs[k - 1].lo == funcs[i].lo) {
            if (funcs[i].hi > funcs[k - 1].hi)
                funcs[k - 1].hi = funcs[i].hi;
            continue;
        }
        funcs[k++] = funcs[i];
    }
    m->funcs = funcs;
    m->n_funcs = k;
    m->funcs_built = true;
    return 0;
}

const char *htri_symbols_elf_name(symbols_module *m, uint64_t addr)
{
    if (!m->funcs_built && elfsym_build(m) != 0)
        return NULL;
    size_t lo = 0, hi = m->n_funcs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->funcs[mid].lo <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const symbols_func *f = &m->funcs[lo - 1];
    if (addr < f->hi)
        return f->name;
    /* a size-less symbol (hand-written assembly) runs to the next one */
    if (f->hi == f->lo && lo < m->n_funcs)
        return f->name;
    /* a small function nested in a bigger one's range (rare): look a few entries back */
    for (size_t i = lo - 1, tries = 0; i-- > 0 && tries < 8; tries++) {
        if (m->funcs[i].lo <= addr && addr < m->funcs[i].hi)
            return m->funcs[i].name;
    }
    return NULL;
}
