/* Unit test of the offline symbolizer (src/symbols/): names, lines, inlined frames and
 * demangling against the -O2 -g fixture libsymfix.so, libc names, unknown pcs, and the
 * build-id checks with their fallbacks (debug root, debuginfod cache). */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gelf.h>
#include <elfutils/libdwelf.h>

#include "check.h"
#include "symbols/symbols.h"
#include "symfix.h"

/* What the test itself learns about a loaded object, to register it by hand. */
typedef struct obj_info {
    const char *needle;
    char path[4096];
    uint64_t bias, start, end;
    uint8_t build_id[64];
    size_t build_id_len;
    int found;
} obj_info;

static int obj_one(struct dl_phdr_info *info, size_t size, void *arg)
{
    obj_info *o = arg;
    if (!info->dlpi_name || !strstr(info->dlpi_name, o->needle))
        return 0;
    snprintf(o->path, sizeof o->path, "%s", info->dlpi_name);
    o->bias = info->dlpi_addr;
    o->start = UINT64_MAX;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD) {
            uint64_t a = info->dlpi_addr + ph->p_vaddr;
            if (a < o->start)
                o->start = a;
            if (a + ph->p_memsz > o->end)
                o->end = a + ph->p_memsz;
        }
        if (ph->p_type != PT_NOTE)
            continue;
        const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
        const uint8_t *e = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= e) {
            const ElfW(Nhdr) *nh = (const void *)p;
            const uint8_t *desc = p + sizeof *nh + ((nh->n_namesz + 3) & ~3u);
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_descsz <= sizeof o->build_id) {
                memcpy(o->build_id, desc, nh->n_descsz);
                o->build_id_len = nh->n_descsz;
            }
            p = desc + ((nh->n_descsz + 3) & ~3u);
        }
    }
    o->found = 1;
    return 1;
}

static void find_obj(obj_info *o, const char *needle)
{
    memset(o, 0, sizeof *o);
    o->needle = needle;
    dl_iterate_phdr(obj_one, o);
}

static void hex(char *out, const uint8_t *id, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", id[i]);
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[65536];
    size_t n;
    int ok = in && out;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

static int ends_with(const char *s, const char *tail)
{
    size_t a = s ? strlen(s) : 0, b = strlen(tail);
    return s && a >= b && strcmp(s + a - b, tail) == 0;
}

static void mkdirs(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(tmp, 0755);
            *p = '/';
        }
    }
    mkdir(tmp, 0755);
}

static symfix_site grow_site, inline_site, lambda_site;
static int inline_call_line;

/* The template member's symbol, as `nm` prints it; main() checks the loader agrees. */
#define GROW_LINKAGE "_ZN2ns6WidgetIiE4growEm"

/* Resolves `pc` in `mod` (mod < -1: by address). A call that ran out of memory (only under
 * htri_symtab_fail_alloc_after) must answer in full when made again. */
static int resolve(htri_symtab *st, int mod, uintptr_t pc, htri_frame *f, int max)
{
    int n = mod >= -1 ? htri_symtab_resolve(st, mod, pc, 1, f, max)
                      : htri_symtab_resolve_pc(st, pc, 1, f, max);
    if (n == -ENOMEM)
        n = mod >= -1 ? htri_symtab_resolve(st, mod, pc, 1, f, max)
                      : htri_symtab_resolve_pc(st, pc, 1, f, max);
    return n;
}

/* The template member: one frame, demangled, at the captured line, with its mangled
 * linkage name (from DWARF's DW_AT_linkage_name). */
static void check_grow(htri_symtab *st, int mod)
{
    htri_frame f[8];
    int n = resolve(st, mod, grow_site.pc, f, 8);
    CHECK_EQ_U(n, 1);
    CHECK_STR(f[0].function, "ns::Widget<int>::grow(unsigned long)");
    CHECK_STR(f[0].linkage, GROW_LINKAGE);
    CHECK(ends_with(f[0].file, "/fixtures/symbols/symfix.cpp"));
    CHECK_EQ_U(f[0].line, grow_site.line);
    CHECK_EQ_U(f[0].inlined, 0);
    CHECK_EQ_U(f[0].pc, grow_site.pc);
}

/* The always_inline helper: its own frame first (inlined), then the physical caller at the
 * line of the inlined call. Neither has a linkage name: gcc gives the static helper none
 * (and, inlined, it has no symbol either), the caller is extern "C". */
static void check_inline(htri_symtab *st, int mod)
{
    htri_frame f[8];
    int n = resolve(st, mod, inline_site.pc, f, 8);
    CHECK_EQ_U(n, 2);
    if (n != 2)
        return;
    CHECK_STR(f[0].function, "ns::push_edge");
    CHECK(f[0].linkage == NULL);
    CHECK(ends_with(f[0].file, "/fixtures/symbols/symfix.cpp"));
    CHECK_EQ_U(f[0].line, inline_site.line);
    CHECK_EQ_U(f[0].inlined, 1);
    CHECK_STR(f[1].function, "symfix_inline_case");
    CHECK(f[1].linkage == NULL);
    CHECK(ends_with(f[1].file, "/fixtures/symbols/symfix.cpp"));
    CHECK_EQ_U(f[1].line, inline_call_line);
    CHECK_EQ_U(f[1].inlined, 0);
    CHECK_EQ_U(f[0].module_offset, f[1].module_offset);
}

/* A lambda's operator() has no linkage name under gcc: named by its scopes, and its
 * linkage taken from its .symtab symbol. */
static void check_lambda(htri_symtab *st)
{
    htri_frame f[8];
    int n = resolve(st, -2, lambda_site.pc, f, 8);
    CHECK_EQ_U(n, 1);
    CHECK_STR(f[0].function, "symfix_lambda_case::{lambda}::operator()");
    CHECK_EQ_U(f[0].line, lambda_site.line);
    CHECK_STR(f[0].linkage, "_ZZ18symfix_lambda_caseENKUliE_clEi");
}

static void test_self(void *main_ret)
{
    htri_symtab *st = htri_symtab_open();
    CHECK(st != NULL);
    CHECK(htri_symtab_add_self(st) >= 3);  /* the test, libsymfix, libc at least */
    check_grow(st, -2);
    check_inline(st, -2);
    uint64_t n_lookups, n_hits;
    htri_symtab_stats(st, &n_lookups, &n_hits);
    CHECK(n_lookups == 2 && n_hits == 0);
    check_grow(st, -2);    /* from the cache now: same answers */
    check_inline(st, -2);
    htri_symtab_stats(st, &n_lookups, &n_hits);
    CHECK(n_lookups == 4 && n_hits == 2);

    htri_frame f[8];
    char line[512];
    int n = htri_symtab_resolve_pc(st, grow_site.pc, 1, f, 8);
    CHECK(n == 1 && ends_with(f[0].module, "/libsymfix.so"));
    htri_frame_format(&f[0], line, sizeof line);
    char want[512];
    snprintf(want, sizeof want, "ns::Widget<int>::grow(unsigned long) (symfix.cpp:%d)",
             grow_site.line);
    CHECK_STR(line, want);

    check_lambda(st);

    /* Not a return address: the function's first byte is the function itself. */
    n = htri_symtab_resolve_pc(st, (uintptr_t)&symfix_capture, 0, f, 8);
    CHECK(n == 1);
    CHECK_STR(f[0].function, "symfix_capture");

    /* Asking for fewer frames than an inline chain has keeps the innermost ones. */
    n = htri_symtab_resolve_pc(st, inline_site.pc, 1, f, 1);
    CHECK_EQ_U(n, 1);
    CHECK_STR(f[0].function, "ns::push_edge");

    /* libc: named by its DWARF (libc6-dbg) or its dynamic symbols. Its own malloc, looked
     * up in it, since a sanitizer build interposes another. */
    void *libc_handle = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    void *malloc_fn = libc_handle ? dlsym(libc_handle, "malloc") : NULL;
    CHECK(malloc_fn != NULL);
    n = htri_symtab_resolve_pc(st, (uintptr_t)malloc_fn + 1, 1, f, 8);
    CHECK(n >= 1);
    CHECK(f[0].function && (strcmp(f[0].function, "malloc") == 0 ||
                            strcmp(f[0].function, "__libc_malloc") == 0));
    CHECK(f[0].linkage == NULL);  /* a C name, and never the asm alias __GI___libc_malloc */
    CHECK(f[0].module && strstr(f[0].module, "libc.so"));
    if (libc_handle)
        dlclose(libc_handle);

    /* main returns into __libc_start_call_main, a local symbol only libc's debug info has. */
    obj_info libc;
    find_obj(&libc, "libc.so");
    char id[129], dbg[4096];
    hex(id, libc.build_id, libc.build_id_len);
    snprintf(dbg, sizeof dbg, "/usr/lib/debug/.build-id/%.2s/%s.debug", id, id + 2);
    n = htri_symtab_resolve_pc(st, (uintptr_t)main_ret, 1, f, 8);
    CHECK(n >= 1);
    if (access(dbg, R_OK) == 0) {
        CHECK_STR(f[n - 1].function, "__libc_start_call_main");
        CHECK(f[n - 1].file && f[n - 1].line > 0);
    } else {
        fprintf(stderr, "note: no libc debug info (%s), __libc_start_call_main not checked\n",
                dbg);
    }

    /* A pc in no module. */
    n = htri_symtab_resolve_pc(st, 0x10, 1, f, 8);
    CHECK_EQ_U(n, 1);
    CHECK(f[0].function == NULL && f[0].module == NULL && f[0].file == NULL);
    CHECK_EQ_U(f[0].module_offset, 0x10);
    htri_frame_format(&f[0], line, sizeof line);
    CHECK_STR(line, "0x10");
    CHECK_EQ_U(htri_symtab_find_module(st, 0x10), (unsigned long long)(long long)-ENOENT);

    /* Bad arguments. */
    CHECK_EQ_U(htri_symtab_resolve(st, 0, 0x1000, 1, f, 0), (unsigned long long)(long long)-EINVAL);
    CHECK_EQ_U(htri_symtab_add_module(st, NULL, 0, 0, 1, NULL, 0),
               (unsigned long long)(long long)-EINVAL);
    n = htri_symtab_resolve(st, 1 << 20, 0x1234, 1, f, 8);
    CHECK(n == 1 && f[0].function == NULL && f[0].module == NULL);
    htri_symtab_close(st);
}

/* The same module registered by hand under other paths, as a trace from elsewhere would. */
static void test_elsewhere(const char *exe_path)
{
    obj_info fix;
    find_obj(&fix, "libsymfix.so");
    CHECK(fix.found && fix.build_id_len == 20);
    char id[129], dir[1024], path[1400], line[2048], want[2048];
    hex(id, fix.build_id, fix.build_id_len);
    mkdirs(SYMFIX_WORK_DIR);
    htri_frame f[8];

    /* A deleted copy: unknown, but module and offset are kept. */
    snprintf(path, sizeof path, "%s/gone.so", SYMFIX_WORK_DIR);
    CHECK(copy_file(fix.path, path) == 0);
    htri_symtab *st = htri_symtab_open();
    int mod = htri_symtab_add_module(st, path, fix.bias, fix.start, fix.end, fix.build_id,
                                     fix.build_id_len);
    CHECK(mod == 0);
    unlink(path);
    int n = htri_symtab_resolve(st, mod, grow_site.pc, 1, f, 8);
    CHECK_EQ_U(n, 1);
    CHECK(f[0].function == NULL && f[0].file == NULL);
    CHECK_STR(f[0].module, path);
    CHECK_EQ_U(f[0].module_offset, grow_site.pc - fix.bias);
    CHECK(htri_symtab_module_file(st, mod) == NULL);
    htri_frame_format(&f[0], line, sizeof line);
    snprintf(want, sizeof want, "0x%llx (in %s)", (unsigned long long)grow_site.pc, path);
    CHECK_STR(line, want);
    htri_symtab_close(st);

    /* A file with another build-id is refused rather than trusted: its names would lie. */
    st = htri_symtab_open();
    mod = htri_symtab_add_module(st, exe_path, fix.bias, fix.start, fix.end, fix.build_id,
                                 fix.build_id_len);
    n = htri_symtab_resolve(st, mod, grow_site.pc, 1, f, 8);
    CHECK(n == 1 && f[0].function == NULL);
    CHECK(htri_symtab_module_file(st, mod) == NULL);
    htri_symtab_close(st);

    /* ... and the detached debug info under a debug root is found by build-id instead. */
    snprintf(dir, sizeof dir, "%s/root/.build-id/%.2s", SYMFIX_WORK_DIR, id);
    mkdirs(dir);
    snprintf(path, sizeof path, "%s/%s.debug", dir, id + 2);
    CHECK(copy_file(SYMFIX_DEBUG_FILE, path) == 0);
    st = htri_symtab_open();
    snprintf(dir, sizeof dir, "%s/root", SYMFIX_WORK_DIR);
    CHECK(htri_symtab_add_debug_root(st, dir) == 0);
    mod = htri_symtab_add_module(st, exe_path, fix.bias, fix.start, fix.end, fix.build_id,
                                 fix.build_id_len);
    check_grow(st, mod);
    check_inline(st, mod);
    CHECK_STR(htri_symtab_module_file(st, mod), path);
    htri_symtab_close(st);
    unlink(path);

    /* ... or in the debuginfod client's cache. */
    snprintf(dir, sizeof dir, "%s/cache/%s", SYMFIX_WORK_DIR, id);
    mkdirs(dir);
    snprintf(path, sizeof path, "%s/debuginfo", dir);
    CHECK(copy_file(SYMFIX_DEBUG_FILE, path) == 0);
    snprintf(dir, sizeof dir, "%s/cache", SYMFIX_WORK_DIR);
    setenv("DEBUGINFOD_CACHE_PATH", dir, 1);
    st = htri_symtab_open();
    unsetenv("DEBUGINFOD_CACHE_PATH");
    mod = htri_symtab_add_module(st, "/nonexistent/libsymfix.so", fix.bias, fix.start, fix.end,
                                 fix.build_id, fix.build_id_len);
    check_grow(st, mod);
    check_inline(st, mod);
    CHECK_STR(htri_symtab_module_file(st, mod), path);
    htri_symtab_close(st);
    unlink(path);

    /* ... where a whole executable is preferred to the debug info alone. */
    char exe_copy[1400];
    snprintf(exe_copy, sizeof exe_copy, "%s/cache/%s/executable", SYMFIX_WORK_DIR, id);
    CHECK(copy_file(fix.path, exe_copy) == 0);
    CHECK(copy_file(SYMFIX_DEBUG_FILE, path) == 0);
    setenv("DEBUGINFOD_CACHE_PATH", dir, 1);
    st = htri_symtab_open();
    unsetenv("DEBUGINFOD_CACHE_PATH");
    mod = htri_symtab_add_module(st, "/nonexistent/libsymfix.so", fix.bias, fix.start, fix.end,
                                 fix.build_id, fix.build_id_len);
    check_grow(st, mod);
    check_inline(st, mod);
    CHECK_STR(htri_symtab_module_file(st, mod), exe_copy);
    htri_symtab_close(st);
    unlink(exe_copy);
    unlink(path);
}

/* Copies without DWARF: names come from .symtab, then from .dynsym alone, demangled;
 * no file or line, and an inline chain shrinks to its physical function. */
static void test_no_dwarf(void)
{
    obj_info fix;
    find_obj(&fix, "libsymfix.so");
    const char *copies[] = { SYMFIX_NODEBUG_FILE, SYMFIX_STRIPPED_FILE };
    for (size_t i = 0; i < 2; i++) {
        htri_symtab *st = htri_symtab_open();
        int mod = htri_symtab_add_module(st, copies[i], fix.bias, fix.start, fix.end,
                                         fix.build_id, fix.build_id_len);
        htri_frame f[8];
        char line[2048], want[2048];
        int n = htri_symtab_resolve(st, mod, grow_site.pc, 1, f, 8);
        CHECK_EQ_U(n, 1);
        CHECK_STR(f[0].function, "ns::Widget<int>::grow(unsigned long)");
        CHECK_STR(f[0].linkage, GROW_LINKAGE);   /* the ELF symbol, raw */
        CHECK(f[0].file == NULL && f[0].line == 0);
        htri_frame_format(&f[0], line, sizeof line);
        snprintf(want, sizeof want, "ns::Widget<int>::grow(unsigned long) (in %s+0x%llx)",
                 copies[i], (unsigned long long)(grow_site.pc - fix.bias));
        CHECK_STR(line, want);
        n = htri_symtab_resolve(st, mod, inline_site.pc, 1, f, 8);
        CHECK_EQ_U(n, 1);
        CHECK_STR(f[0].function, "symfix_inline_case");
        CHECK(f[0].linkage == NULL);
        CHECK_EQ_U(f[0].inlined, 0);
        htri_symtab_close(st);
    }
}

/* Every allocation made to fail in turn, one per run, until a run has no failure left to
 * inject: each call answers in full or returns -ENOMEM, and then answers in full when made
 * again (ASan builds also check that nothing leaks on those paths). */
static void test_oom(const char *exe_path)
{
    obj_info fix;
    find_obj(&fix, "libsymfix.so");
    char id[129], dir[1024], path[1400];
    hex(id, fix.build_id, fix.build_id_len);
    snprintf(dir, sizeof dir, "%s/root/.build-id/%.2s", SYMFIX_WORK_DIR, id);
    mkdirs(dir);
    snprintf(path, sizeof path, "%s/%s.debug", dir, id + 2);
    CHECK(copy_file(SYMFIX_DEBUG_FILE, path) == 0);
    snprintf(dir, sizeof dir, "%s/root", SYMFIX_WORK_DIR);
    long k;
    int n_enomem = 0;
    for (k = 0; k < 5000; k++) {
        htri_symtab *st = htri_symtab_open();
        CHECK(st != NULL);
        htri_symtab_fail_alloc_after(st, k);
        int rc = htri_symtab_add_debug_root(st, dir);
        if (rc == -ENOMEM) {
            n_enomem++;
            rc = htri_symtab_add_debug_root(st, dir);
        }
        CHECK_EQ_U(rc, 0);
        int mods[2];
        for (int i = 0; i < 2; i++) {
            const char *p = i ? exe_path : fix.path;  /* the second by build-id only */
            mods[i] = htri_symtab_add_module(st, p, fix.bias, fix.start, fix.end, fix.build_id,
                                             fix.build_id_len);
            if (mods[i] == -ENOMEM) {
                n_enomem++;
                mods[i] = htri_symtab_add_module(st, p, fix.bias, fix.start, fix.end,
                                                 fix.build_id, fix.build_id_len);
            }
            CHECK(mods[i] >= 0);
        }
        check_grow(st, mods[0]);
        check_inline(st, mods[0]);
        check_grow(st, mods[1]);
        check_inline(st, mods[1]);
        check_grow(st, -2);  /* by address: the module index is built */
        check_lambda(st);    /* the ELF symbol index, built for its linkage */
        htri_frame f[4];
        CHECK_EQ_U(resolve(st, -2, 0x10, f, 4), 1);
        long left = htri_symtab_fail_alloc_after(st, -1);
        htri_symtab_close(st);
        if (left >= 0)
            break;  /* the failure never came: every allocation was made to fail once */
    }
    CHECK(k > 10 && k < 5000);
    fprintf(stderr, "note: %ld allocations failed in turn (%d in registration)\n", k, n_enomem);
    unlink(path);
}

/* Module lookup by address, with a library mapped where another was unloaded. */
static void test_find_module(void)
{
    htri_symtab *st = htri_symtab_open();
    int a = htri_symtab_add_module(st, "/x/a.so", 0x1000, 0x1000, 0x5000, NULL, 0);
    int b = htri_symtab_add_module(st, "/x/b.so", 0x2000, 0x2000, 0x3000, NULL, 0);
    int c = htri_symtab_add_module(st, "/x/c.so", 0x2000, 0x2000, 0x3000, NULL, 0);
    int d = htri_symtab_add_module(st, "/x/d.so", 0x8000, 0x8000, 0x9000, NULL, 0);
    CHECK(a == 0 && b == 1 && c == 2 && d == 3);
    CHECK_EQ_U(htri_symtab_find_module(st, 0x1000), a);
    CHECK_EQ_U(htri_symtab_find_module(st, 0x2500), c);
    CHECK_EQ_U(htri_symtab_find_module(st, 0x4000), a);
    CHECK_EQ_U(htri_symtab_find_module(st, 0x8fff), d);
    const uint64_t misses[] = { 0, 0xfff, 0x5000, 0x6000, 0x9000, UINT64_MAX };
    for (size_t i = 0; i < sizeof misses / sizeof misses[0]; i++)
        CHECK_EQ_U(htri_symtab_find_module(st, misses[i]), (unsigned long long)(long long)-ENOENT);
    int e = htri_symtab_add_module(st, "/x/e.so", 0x6000, 0x6000, 0x7000, NULL, 0);
    CHECK_EQ_U(htri_symtab_find_module(st, 0x6000), e);  /* the index follows additions */
    htri_frame f[2];
    CHECK_EQ_U(htri_symtab_resolve_pc(st, 0x2504, 1, f, 2), 1);
    CHECK(f[0].function == NULL);
    CHECK_STR(f[0].module, "/x/c.so");
    CHECK_EQ_U(f[0].module_offset, 0x504);
    htri_symtab_close(st);
}

/* A copy without DWARF whose .gnu_debuglink names the detached file beside it; no build-id
 * recorded, so the file's own is what the link target is checked against. */
static void test_debuglink(void)
{
    obj_info fix;
    find_obj(&fix, "libsymfix.so");
    htri_symtab *st = htri_symtab_open();
    int mod = htri_symtab_add_module(st, SYMFIX_LINKED_FILE, fix.bias, fix.start, fix.end,
                                     NULL, 0);
    check_grow(st, mod);
    check_inline(st, mod);
    CHECK_STR(htri_symtab_module_file(st, mod), SYMFIX_LINKED_FILE);
    htri_symtab_close(st);
}

/* dwz: the inlined function's name lives in the shared alt file, found at the name the
 * altlink records or by its build-id under a debug root; without it the name is lost. */
static void test_dwz(void)
{
#if SYMFIX_DWZ
    obj_info fix;
    find_obj(&fix, "libsymfix.so");
    uint8_t alt_id[64];
    size_t alt_len = 0;
    elf_version(EV_CURRENT);
    int fd = open(SYMFIX_DWZ_COMMON, O_RDONLY);
    Elf *elf = fd >= 0 ? elf_begin(fd, ELF_C_READ, NULL) : NULL;
    const void *bits = NULL;
    ssize_t len = elf ? dwelf_elf_gnu_build_id(elf, &bits) : -1;
    if (len > 0 && (size_t)len <= sizeof alt_id) {
        memcpy(alt_id, bits, (size_t)len);
        alt_len = (size_t)len;
    }
    elf_end(elf);
    if (fd >= 0)
        close(fd);
    CHECK(alt_len == 20);

    /* nowhere: the chain keeps its shape, the inlined name is unknown */
    htri_symtab *st = htri_symtab_open();
    int mod = htri_symtab_add_module(st, SYMFIX_DWZ_FILE, fix.bias, fix.start, fix.end,
                                     fix.build_id, fix.build_id_len);
    htri_frame f[8];
    int n = htri_symtab_resolve(st, mod, inline_site.pc, 1, f, 8);
    CHECK(n == 2 && f[0].function == NULL && f[0].line == (uint32_t)inline_site.line);
    htri_symtab_close(st);

    /* at the recorded name */
    char dir[1024], path[1400];
    snprintf(dir, sizeof dir, "%s/alt", SYMFIX_WORK_DIR);
    mkdirs(dir);
    CHECK(copy_file(SYMFIX_DWZ_COMMON, SYMFIX_DWZ_ALT) == 0);
    st = htri_symtab_open();
    mod = htri_symtab_add_module(st, SYMFIX_DWZ_FILE, fix.bias, fix.start, fix.end,
                                 fix.build_id, fix.build_id_len);
    check_grow(st, mod);
    check_inline(st, mod);
    htri_symtab_close(st);
    unlink(SYMFIX_DWZ_ALT);

    /* by build-id under a debug root */
    char id[129];
    hex(id, alt_id, alt_len);
    snprintf(dir, sizeof dir, "%s/dwzroot/.build-id/%.2s", SYMFIX_WORK_DIR, id);
    mkdirs(dir);
    snprintf(path, sizeof path, "%s/%s.debug", dir, id + 2);
    CHECK(copy_file(SYMFIX_DWZ_COMMON, path) == 0);
    st = htri_symtab_open();
    snprintf(dir, sizeof dir, "%s/dwzroot", SYMFIX_WORK_DIR);
    htri_symtab_add_debug_root(st, dir);
    mod = htri_symtab_add_module(st, SYMFIX_DWZ_FILE, fix.bias, fix.start, fix.end,
                                 fix.build_id, fix.build_id_len);
    check_grow(st, mod);
    check_inline(st, mod);
    htri_symtab_close(st);
    unlink(path);
#else
    fprintf(stderr, "note: dwz not installed, the .gnu_debugaltlink case is skipped\n");
#endif
}

/* The fixture built by clang (no .debug_aranges, linked -Bsymbolic), loaded now; its cases
 * write their sites into its own symfix_last. */
static void test_clang(void)
{
#ifdef SYMFIX_CLANG_FILE
    void *h = dlopen(SYMFIX_CLANG_FILE, RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL);
    if (!h)
        return;
    unsigned long (*template_case)(void) =
        (unsigned long (*)(void))dlsym(h, "symfix_template_case");
    int (*inline_case)(int *, int *) = (int (*)(int *, int *))dlsym(h, "symfix_inline_case");
    symfix_site *last = (symfix_site *)dlsym(h, "symfix_last");
    CHECK(template_case && inline_case && last && last != &symfix_last);
    if (!template_case || !inline_case || !last)
        return;
    template_case();
    symfix_site grow = *last;
    int v = 4, call_line = 0;
    inline_case(&v, &call_line);
    symfix_site inl = *last;

    htri_symtab *st = htri_symtab_open();
    CHECK(htri_symtab_add_self(st) > 0);
    htri_frame f[8];
    int n = htri_symtab_resolve_pc(st, grow.pc, 1, f, 8);
    CHECK_EQ_U(n, 1);
    CHECK_STR(f[0].function, "ns::Widget<int>::grow(unsigned long)");
    CHECK_STR(f[0].linkage, GROW_LINKAGE);
    CHECK_EQ_U(f[0].line, grow.line);
    CHECK(ends_with(f[0].module, "/libsymfix-clang.so"));
    n = htri_symtab_resolve_pc(st, inl.pc, 1, f, 8);
    CHECK_EQ_U(n, 2);
    if (n == 2) {
        /* clang gives internal functions a linkage name, so the parameters show */
        CHECK_STR(f[0].function, "ns::push_edge(int*)");
        CHECK_STR(f[0].linkage, "_ZN2nsL9push_edgeEPi");  /* the abstract origin's */
        CHECK_EQ_U(f[0].line, inl.line);
        CHECK_EQ_U(f[0].inlined, 1);
        CHECK_STR(f[1].function, "symfix_inline_case");
        CHECK_EQ_U(f[1].line, call_line);
        CHECK(ends_with(f[1].file, "/fixtures/symbols/symfix.cpp"));
    }
    htri_symtab_close(st);
    dlclose(h);
#else
    fprintf(stderr, "note: clang++ not installed, the clang case is skipped\n");
#endif
}

static void test_format_and_demangle(void)
{
    char buf[64];
    htri_frame f = { .function = "malloc", .module = "/lib/libc.so.6", .module_offset = 0x9a0,
                     .pc = 0x7f0000009a0 };
    size_t need = htri_frame_format(&f, buf, sizeof buf);
    CHECK_STR(buf, "malloc (in /lib/libc.so.6+0x9a0)");
    CHECK_EQ_U(need, strlen("malloc (in /lib/libc.so.6+0x9a0)"));
    need = htri_frame_format(&f, buf, 7);
    CHECK_STR(buf, "malloc");
    CHECK_EQ_U(need, strlen("malloc (in /lib/libc.so.6+0x9a0)"));
    CHECK_EQ_U(htri_frame_format(&f, NULL, 0), need);
    f.function = NULL;
    htri_frame_format(&f, buf, sizeof buf);
    CHECK_STR(buf, "0x7f0000009a0 (in /lib/libc.so.6)");

    CHECK_STR(htri_demangle("_ZN2ns6WidgetIiE4growEm", buf, sizeof buf),
              "ns::Widget<int>::grow(unsigned long)");
    CHECK_STR(htri_demangle("_ZN2ns6WidgetIiE4growEm", buf, 9), "ns::Widg");
    CHECK_STR(htri_demangle("main", buf, sizeof buf), "main");
    CHECK_STR(htri_demangle("_Znot-a-name", buf, sizeof buf), "_Znot-a-name");
}

int main(int argc, char **argv)
{
    void *main_ret = __builtin_return_address(0);
    symfix_template_case();
    grow_site = symfix_last;
    int v = 7;
    symfix_inline_case(&v, &inline_call_line);
    inline_site = symfix_last;
    symfix_lambda_case(3);
    lambda_site = symfix_last;
    CHECK(grow_site.pc != 0 && inline_site.pc != 0);
    /* the dynamic symbol the loader finds at the template member: what `nm -D` prints */
    Dl_info info;
    CHECK(dladdr((void *)grow_site.pc, &info) != 0);
    CHECK_STR(info.dli_sname, GROW_LINKAGE);

    test_self(main_ret);
    char exe[4096];
    CHECK(realpath(argv[0], exe) != NULL);
    test_elsewhere(exe);
    test_no_dwarf();
    test_debuglink();
    test_dwz();
    test_clang();
    test_oom(exe);
    test_find_module();
    test_format_and_demangle();
    return CHECK_DONE();
}
