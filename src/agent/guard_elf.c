/* --fail-in=FUNCTION support for the guard layer: finds a function's address ranges in the
 * ELF symbol tables of the modules loaded now, once at agent start, so the hook path only
 * compares program counters with ranges (symbolization proper stays out of process). */
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <link.h>
#include <elf.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "base/common.h"
#include "agent/guard.h"

typedef struct guard_elf_search {
    const char *name;       /* as given: "parse", "ns::Cls::fn" */
    char mangled[160];      /* Itanium prefix for it: "_Z5parse", "_ZN2ns3Cls2fnE" */
    size_t mangled_len;
    int nested;             /* mangled is "_ZN...E" (also try "_ZNK...") */
    uintptr_t (*ranges)[2];
    int cap, n;
    int first;              /* the first dl_iterate_phdr entry is the executable */
} guard_elf_search;

/* Builds the mangled-name prefix of a C++ function named like "a::b::c": each component is
 * length-prefixed, so "fo" never matches "foo". Parameters are not known and not needed. */
static void guard_elf_mangle(guard_elf_search *s)
{
    char *out = s->mangled, *end = s->mangled + sizeof s->mangled - 16;
    const char *p = s->name;
    s->nested = strstr(p, "::") != NULL;
    out += s->nested ? 3 : 2;
    memcpy(s->mangled, "_ZN", 3);
    while (*p && out < end) {
        const char *c = strstr(p, "::");
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == 0 || len > 999) break;
        char digits[4];
        int nd = 0;
        for (size_t v = len; v; v /= 10) digits[nd++] = (char)('0' + v % 10);
        while (nd && out < end) *out++ = digits[--nd];
        if ((size_t)(end - out) < len) break;
        memcpy(out, p, len);
        out += len;
        p += len;
        if (c) p += 2;
    }
    if (s->nested) *out++ = 'E';
    *out = 0;
    s->mangled_len = (size_t)(out - s->mangled);
}

static int guard_elf_name_matches(const guard_elf_search *s, const char *sym)
{
    if (!strcmp(sym, s->name)) return 1;
    if (sym[0] != '_' || sym[1] != 'Z') return 0;
    if (!s->nested) {
        /* "_Z5parsev": the name then its parameter types */
        return !strncmp(sym, s->mangled, s->mangled_len);
    }
    if (!strncmp(sym, s->mangled, s->mangled_len)) return 1;
    /* const member function: _ZNK... */
    return sym[2] == 'N' && sym[3] == 'K' && !strncmp(sym + 4, s->mangled + 3, s->mangled_len - 3);
}

static void guard_elf_add_range(guard_elf_search *s, uintptr_t lo, uintptr_t hi)
{
    for (int i = 0; i < s->n; i++)
        if (s->ranges[i][0] == lo && s->ranges[i][1] == hi) return;
    if (s->n < s->cap) {
        s->ranges[s->n][0] = lo;
        s->ranges[s->n][1] = hi;
        s->n++;
    }
}

/* Scans the symbol tables of one mapped ELF file; bias is the module's load bias. */
static void guard_elf_scan(guard_elf_search *s, const uint8_t *img, size_t len, uintptr_t bias)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
    if (len < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64)
        return;
    if (eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff > len ||
        (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > len - eh->e_shoff)
        return;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
    for (int pass = 0; pass < 2; pass++) {
        uint32_t want = pass == 0 ? SHT_SYMTAB : SHT_DYNSYM;
        for (unsigned i = 0; i < eh->e_shnum; i++) {
            if (sh[i].sh_type != want || sh[i].sh_link >= eh->e_shnum) continue;
            const Elf64_Shdr *strs = &sh[sh[i].sh_link];
            if (sh[i].sh_offset > len || sh[i].sh_size > len - sh[i].sh_offset ||
                strs->sh_offset > len || strs->sh_size > len - strs->sh_offset || !strs->sh_size)
                continue;
            const Elf64_Sym *sym = (const Elf64_Sym *)(img + sh[i].sh_offset);
            size_t nsym = sh[i].sh_size / sizeof(Elf64_Sym);
            const char *str = (const char *)(img + strs->sh_offset);
            for (size_t k = 0; k < nsym; k++) {
                unsigned type = ELF64_ST_TYPE(sym[k].st_info);
                if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym[k].st_shndx == SHN_UNDEF ||
                    sym[k].st_name >= strs->sh_size)
                    continue;
                const char *nm = str + sym[k].st_name;
                /* the string table must NUL-terminate inside its section */
                if (!memchr(nm, 0, strs->sh_size - sym[k].st_name)) continue;
                if (!guard_elf_name_matches(s, nm)) continue;
                uintptr_t lo = bias + sym[k].st_value;
                guard_elf_add_range(s, lo, lo + (sym[k].st_size ? sym[k].st_size : 1));
            }
        }
    }
}

static int guard_elf_module_cb(struct dl_phdr_info *info, size_t sz, void *arg)
{
    guard_elf_search *s = arg;
    const char *path = info->dlpi_name;
    (void)sz;
    if (s->first) {
        s->first = 0;
        if (!path || !path[0]) path = "/proc/self/exe";
    }
    if (!path || !path[0]) return 0; /* the vDSO: no file, and no function of the program */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
        void *img = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (img != MAP_FAILED) {
            guard_elf_scan(s, img, (size_t)st.st_size, info->dlpi_addr);
            munmap(img, (size_t)st.st_size);
        }
    }
    close(fd);
    return 0;
}

int htri_guard_resolve_function(const char *name, uintptr_t (*ranges)[2], int cap)
{
    guard_elf_search s;
    memset(&s, 0, sizeof s);
    if (!name || !name[0]) return 0;
    s.name = name;
    s.ranges = ranges;
    s.cap = cap;
    s.first = 1;
    guard_elf_mangle(&s);
    dl_iterate_phdr(guard_elf_module_cb, &s);
    return s.n;
}
