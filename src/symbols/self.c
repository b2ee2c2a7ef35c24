/* Registers the calling process's own modules (dl_iterate_phdr), so tests and the debug
 * allocators can symbolize their own pcs through the same offline path as the CLI. */
#include <link.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include "symbols/symbols_int.h"

typedef struct self_walk {
    htri_symtab *st;
    int n_added;
    int err;
} self_walk;

/* The GNU build-id from the object's PT_NOTE segments, as mapped in memory. */
static size_t self_build_id(const struct dl_phdr_info *info, const uint8_t **id)
{
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
        const uint8_t *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
            size_t name_sz = (nh->n_namesz + 3) & ~(size_t)3;
            size_t desc_sz = (nh->n_descsz + 3) & ~(size_t)3;
            const uint8_t *name = p + sizeof *nh, *desc = name + name_sz;
            if (desc + desc_sz > end)
                break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
                memcmp(name, "GNU", 4) == 0) {
                *id = desc;
                return nh->n_descsz;
            }
            p = desc + desc_sz;
        }
    }
    return 0;
}

static int self_one(struct dl_phdr_info *info, size_t size, void *arg)
{
    self_walk *w = arg;
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uint64_t start = info->dlpi_addr + ph->p_vaddr;
        if (start < lo)
            lo = start;
        if (start + ph->p_memsz > hi)
            hi = start + ph->p_memsz;
    }
    if (lo >= hi)
        return 0;
    const char *path = info->dlpi_name;
    char exe[PATH_MAX];
    if (!path || !*path) {
        /* the main program has no name here; AT_EXECFN is how it was exec'd */
        const char *execfn = (const char *)getauxval(AT_EXECFN);
        path = execfn && realpath(execfn, exe) ? exe : "";
    }
    const uint8_t *id = NULL;
    size_t id_len = self_build_id(info, &id);
    if (id_len > SYMBOLS_MAX_BUILD_ID)
        id_len = 0;
    int rc = htri_symtab_add_module(w->st, path, info->dlpi_addr, lo, hi, id, id_len);
    if (rc < 0) {
        w->err = rc;
        return 1;
    }
    w->n_added++;
    return 0;
}

int htri_symtab_add_self(htri_symtab *st)
{
    if (!st)
        return -EINVAL;
    self_walk w = { st, 0, 0 };
    dl_iterate_phdr(self_one, &w);
    return w.err ? w.err : w.n_added;
}
