/* Finding the file that really describes a recorded module, offline: the recorded path if
 * its GNU build-id matches, else a copy found by build-id under a debug root or in the
 * debuginfod client's cache. Never fetches: a report must not reach the network. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <gelf.h>
#include <libelf.h>
#include <elfutils/libdwelf.h>

#include "symbols/symbols_int.h"

#define LOCATE_SYSTEM_ROOT "/usr/lib/debug"

/* 1 if the ELF behind fd carries build-id `id` (or if no id is expected), else 0. Files
 * without a readable ELF header never match. */
static int locate_matches(int fd, const uint8_t *id, size_t id_len)
{
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    if (!elf)
        return 0;
    int ok = elf_kind(elf) == ELF_K_ELF;
    if (ok && id_len) {
        const void *bits = NULL;
        ssize_t len = dwelf_elf_gnu_build_id(elf, &bits);
        ok = len == (ssize_t)id_len && memcmp(bits, id, id_len) == 0;
    }
    elf_end(elf);
    return ok;
}

/* Opens `path` if it holds the expected build-id; returns the fd or -1. */
static int locate_try(const char *path, const uint8_t *id, size_t id_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (!locate_matches(fd, id, id_len)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void locate_hex(char *hex, const uint8_t *id, size_t id_len)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < id_len; i++) {
        hex[2 * i] = digits[id[i] >> 4];
        hex[2 * i + 1] = digits[id[i] & 15];
    }
    hex[2 * id_len] = 0;
}

/* Tries ROOT/.build-id/xx/rest.debug for every debug root (if `use_roots`), then the
 * debuginfod cache's <hex>/`cache_leaf`. Returns an fd and sets *found (malloc'd; NULL when
 * out of memory), or -1. */
static int locate_by_build_id(htri_symtab *st, const uint8_t *id, size_t id_len,
                              bool use_roots, const char *cache_leaf, char **found)
{
    if (id_len < 2)
        return -1;
    char hex[2 * SYMBOLS_MAX_BUILD_ID + 1];
    locate_hex(hex, id, id_len);
    char path[4096];
    for (size_t i = 0; use_roots && i <= st->n_roots; i++) {
        const char *root = i < st->n_roots ? st->debug_roots[i] : LOCATE_SYSTEM_ROOT;
        if (snprintf(path, sizeof path, "%s/.build-id/%.2s/%s.debug", root, hex, hex + 2)
            >= (int)sizeof path)
            continue;
        int fd = locate_try(path, id, id_len);
        if (fd >= 0) {
            *found = htri_symbols_cstrdup(st, path);
            return fd;
        }
    }
    if (st->debuginfod_cache && cache_leaf &&
        snprintf(path, sizeof path, "%s/%s/%s", st->debuginfod_cache, hex, cache_leaf)
            < (int)sizeof path) {
        int fd = locate_try(path, id, id_len);
        if (fd >= 0) {
            *found = htri_symbols_cstrdup(st, path);
            return fd;
        }
    }
    return -1;
}

/* Tries the places gdb looks for a .gnu_debuglink name next to `file_name`; returns like
 * locate_by_build_id(). */
static int locate_by_debuglink(htri_symtab *st, const char *file_name, const char *link,
                               const uint8_t *id, size_t id_len, char **found)
{
    if (!file_name || !link || !*link)
        return -1;
    const char *slash = strrchr(file_name, '/');
    int dir_len = slash ? (int)(slash - file_name) : 0;
    char path[4096];
    for (size_t i = 0; i < st->n_roots + 3; i++) {
        int n;
        if (i == 0)
            n = snprintf(path, sizeof path, "%.*s/%s", dir_len, file_name, link);
        else if (i == 1)
            n = snprintf(path, sizeof path, "%.*s/.debug/%s", dir_len, file_name, link);
        else {
            const char *root = i - 2 < st->n_roots ? st->debug_roots[i - 2] : LOCATE_SYSTEM_ROOT;
            n = snprintf(path, sizeof path, "%s%.*s/%s", root, dir_len, file_name, link);
        }
        if (n >= (int)sizeof path || strcmp(path, file_name) == 0)
            continue;
        /* Without a build-id there is no cheap proof the link fits; trust the name then. */
        int fd = locate_try(path, id, id_len);
        if (fd >= 0) {
            *found = htri_symbols_cstrdup(st, path);
            return fd;
        }
    }
    return -1;
}

/* Reads the .gnu_debugaltlink of the ELF file at `path` (dwz's shared DWARF): the name it
 * records, and the build-id the shared file must have. Returns the id's length, or 0. */
static size_t locate_read_altlink(const char *path, char *name, size_t name_cap, uint8_t *id)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t id_len = 0, shstrndx;
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    if (elf && elf_getshdrstrndx(elf, &shstrndx) == 0) {
        for (Elf_Scn *scn = elf_nextscn(elf, NULL); scn; scn = elf_nextscn(elf, scn)) {
            GElf_Shdr shdr;
            const char *sec = gelf_getshdr(scn, &shdr) ? elf_strptr(elf, shstrndx, shdr.sh_name)
                                                      : NULL;
            if (!sec || strcmp(sec, ".gnu_debugaltlink") != 0)
                continue;
            /* the section is "name\0" followed by the build-id bytes */
            Elf_Data *data = elf_getdata(scn, NULL);
            const char *p = data ? data->d_buf : NULL;
            const char *nul = p ? memchr(p, 0, data->d_size) : NULL;
            size_t n = nul ? data->d_size - (size_t)(nul + 1 - p) : 0;
            if (nul && n > 0 && n <= SYMBOLS_MAX_BUILD_ID && (size_t)(nul - p) < name_cap) {
                memcpy(name, p, (size_t)(nul - p) + 1);
                memcpy(id, nul + 1, n);
                id_len = n;
            }
            break;
        }
    }
    elf_end(elf);
    close(fd);
    return id_len;
}

/* The dwz file shared by `file_name`'s DWARF: by its build-id under the debug roots and in
 * the debuginfod cache, else at the recorded name (absolute, or beside `file_name`). */
static int locate_altfile(htri_symtab *st, const char *file_name, const char *alt_name,
                          const uint8_t *alt_id, size_t alt_len, char **found)
{
    int fd = locate_by_build_id(st, alt_id, alt_len, true, "debuginfo", found);
    if (fd >= 0)
        return fd;
    char path[4096];
    const char *slash = strrchr(file_name, '/');
    int dir_len = slash ? (int)(slash - file_name) : 1;
    int n = alt_name[0] == '/'
                ? snprintf(path, sizeof path, "%s", alt_name)
                : snprintf(path, sizeof path, "%.*s/%s", dir_len, slash ? file_name : ".",
                           alt_name);
    if (n < 0 || n >= (int)sizeof path)
        return -1;
    fd = locate_try(path, alt_id, alt_len);
    if (fd >= 0)
        *found = htri_symbols_cstrdup(st, path);
    return fd;
}

static int locate_find_elf(Dwfl_Module *mod, void **userdata, const char *modname,
                           Dwarf_Addr base, char **file_name, Elf **elfp)
{
    return -1;  /* every module is reported with an open fd */
}

/* libdwfl calls this when the main file has no DWARF. Unlike dwfl_standard_find_debuginfo
 * it never asks a debuginfod server, whatever DEBUGINFOD_URLS says. The name it returns
 * may be NULL (out of memory): libdwfl only shows it. */
static int locate_find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
                                 Dwarf_Addr base, const char *file_name,
                                 const char *debuglink_file, GElf_Word debuglink_crc,
                                 char **debuginfo_file_name)
{
    symbols_module *m = *userdata;
    if (!m)
        return -1;
    /* libdwfl asks for a dwz file the same way, with the altlink's name and no CRC; what
     * tells it from a debuglink is the DWARF file's own .gnu_debugaltlink naming it */
    if (debuglink_file && debuglink_crc == 0 && file_name) {
        char alt_name[1024];
        uint8_t alt_id[SYMBOLS_MAX_BUILD_ID];
        size_t alt_len = locate_read_altlink(file_name, alt_name, sizeof alt_name, alt_id);
        if (alt_len && strcmp(alt_name, debuglink_file) == 0)
            return locate_altfile(m->owner, file_name, alt_name, alt_id, alt_len,
                                  debuginfo_file_name);
    }
    const uint8_t *id = m->build_id;
    size_t id_len = m->build_id_len;
    if (!id_len) {
        const unsigned char *bits;
        GElf_Addr vaddr;
        int len = dwfl_module_build_id(mod, &bits, &vaddr);
        if (len > 0 && (size_t)len <= SYMBOLS_MAX_BUILD_ID) {
            id = bits;
            id_len = (size_t)len;
        }
    }
    int fd = locate_by_build_id(m->owner, id, id_len, true, "debuginfo", debuginfo_file_name);
    if (fd < 0)
        fd = locate_by_debuglink(m->owner, file_name, debuglink_file, id, id_len,
                                 debuginfo_file_name);
    return fd;
}

static const Dwfl_Callbacks locate_callbacks = {
    .find_elf = locate_find_elf,
    .find_debuginfo = locate_find_debuginfo,
    .section_address = dwfl_offline_section_address,
};

int htri_symbols_open_module(htri_symtab *st, symbols_module *m)
{
    char *file = NULL;
    int fd = locate_try(m->path, m->build_id, m->build_id_len);
    if (fd >= 0)
        file = htri_symbols_cstrdup(st, m->path);
    else {
        /* a whole executable from the cache first: it has the symbol tables of the code */
        fd = locate_by_build_id(st, m->build_id, m->build_id_len, false, "executable", &file);
        if (fd < 0)
            fd = locate_by_build_id(st, m->build_id, m->build_id_len, true, "debuginfo", &file);
    }
    if (fd < 0) {
        m->state = SYMBOLS_NO_FILE;
        return -ENOENT;
    }
    /* out of memory leaves the module unopened, to be tried again */
    if (!file) {
        close(fd);
        return -ENOMEM;
    }
    Dwfl *dwfl = dwfl_begin(&locate_callbacks);
    if (!dwfl) {
        close(fd);
        free(file);
        return -ENOMEM;
    }
    dwfl_report_begin(dwfl);
    /* Placed at its link-time addresses (base 0): callers look up pc - bias. */
    Dwfl_Module *dm = dwfl_report_elf(dwfl, m->path, file, fd, 0, true);
    if (!dm) {
        close(fd);
        dwfl_end(dwfl);
        free(file);
        m->state = SYMBOLS_NO_FILE;
        return -EIO;
    }
    dwfl_report_end(dwfl, NULL, NULL);
    void **userdata;
    dwfl_module_info(dm, &userdata, NULL, NULL, NULL, NULL, NULL, NULL);
    *userdata = m;
    m->dwfl = dwfl;
    m->dwmod = dm;
    m->file = file;
    m->state = SYMBOLS_OPEN;
    return 0;
}
