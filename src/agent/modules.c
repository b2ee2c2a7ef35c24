/* The module map the trace needs for offline symbolization: every loaded ELF object with
 * its load bias, address range and GNU build-id, from dl_iterate_phdr. Run by the writer
 * thread at start, when a new stack has a pc outside every known module, and after dlclose. */
#include <elf.h>
#include <link.h>
#include <string.h>

#include "agent/agent_int.h"
#include "base/common.h"
#include "base/hash.h"
#include "base/os.h"

#define MODULES_MAX 4096
#define MODULES_BUILD_ID_MAX 64

typedef struct module {
    uint64_t id;
    uintptr_t bias, start, end;
    uint32_t name_hash;
    int seen;              /* found by the current scan */
} module;

static struct {
    module *list;          /* our own pages, MODULES_MAX entries */
    int n;
    uint64_t next_id;
    htri_recbuf *out;      /* the scan in progress */
    uint64_t t;
    int added;
    char exe[4096];
} g_modules;

/* Build-id from the object's PT_NOTE segments (already mapped: notes live in a PT_LOAD). */
static size_t modules_build_id(const struct dl_phdr_info *info, uint8_t *out)
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
            const uint8_t *desc = p + sizeof *nh + name_sz;
            if (desc + desc_sz > end)
                break;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
                memcmp(p + sizeof *nh, "GNU", 4) == 0) {
                size_t n = nh->n_descsz < MODULES_BUILD_ID_MAX ? nh->n_descsz : MODULES_BUILD_ID_MAX;
                memcpy(out, desc, n);
                return n;
            }
            p = desc + desc_sz;
        }
    }
    return 0;
}

static int modules_visit(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
        if (s < lo) lo = s;
        if (e > hi) hi = e;
    }
    if (hi <= lo)
        return 0;
    /* The main program comes first and has no name in dl_iterate_phdr. */
    const char *path = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : g_modules.exe;
    uint32_t name_hash = htri_fnv1a32(path, strlen(path));
    for (int i = 0; i < g_modules.n; i++) {
        module *m = &g_modules.list[i];
        if (m->bias == info->dlpi_addr && m->start == lo && m->end == hi && m->name_hash == name_hash) {
            m->seen = 1;
            return 0;
        }
    }
    if (g_modules.n >= MODULES_MAX)
        return 0;
    module *m = &g_modules.list[g_modules.n++];
    *m = (module){ g_modules.next_id++, info->dlpi_addr, lo, hi, name_hash, 1 };
    uint8_t bid[MODULES_BUILD_ID_MAX];
    size_t bid_len = modules_build_id(info, bid);
    htri_rec_module(g_modules.out, m->id, m->bias, m->start, m->end, bid, bid_len, path,
                    strlen(path), g_modules.t);
    g_modules.added++;
    return 0;
}

int htri_modules_scan(htri_recbuf *b, uint64_t t)
{
    if (!g_modules.list) {
        g_modules.list = htri_os_pages_alloc(MODULES_MAX * sizeof(module));
        if (!g_modules.list)
            return 0;
        if (htri_os_exe_path(g_modules.exe, sizeof g_modules.exe) < 0)
            g_modules.exe[0] = 0;
    }
    for (int i = 0; i < g_modules.n; i++)
        g_modules.list[i].seen = 0;
    g_modules.out = b;
    g_modules.t = t;
    g_modules.added = 0;
    dl_iterate_phdr(modules_visit, NULL);
    int i = 0;
    while (i < g_modules.n) {
        if (!g_modules.list[i].seen) {
            htri_rec_module_unload(b, g_modules.list[i].id, t);
            g_modules.added++;
            g_modules.list[i] = g_modules.list[--g_modules.n];
        } else {
            i++;
        }
    }
    return g_modules.added;
}

int htri_modules_contains(uintptr_t pc)
{
    for (int i = 0; i < g_modules.n; i++)
        if (g_modules.list[i].start <= pc && pc < g_modules.list[i].end)
            return 1;
    return 0;
}

void htri_modules_reset(void)
{
    g_modules.n = 0;
}
