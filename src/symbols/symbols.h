/* Private: offline symbolization for the CLI (libdw): function, file:line, inlined frames,
 * demangled C++ names, cached per module. Never linked into the agent.
 *
 * Names: a C++ linkage name demangled ("ns::Widget<int>::grow(unsigned long)"); a C++
 * function without one (internal linkage) qualified by its scopes ("ns::push_edge",
 * "fn::{lambda}::operator()"); C names as written ("__libc_malloc", not glibc's asm alias
 * "__GI___libc_malloc"); without DWARF, the ELF symbol (.symtab, else .dynsym), the public
 * alias preferred. Files are as DWARF records them (often absolute). A table is used by one
 * thread at a time. */
#ifndef HTR_SYMBOLS_SYMBOLS_H
#define HTR_SYMBOLS_SYMBOLS_H
#include <stddef.h>
#include <stdint.h>

typedef struct htri_symtab htri_symtab;

/* One source-level frame. A return address may expand to several (inlined calls): the
 * innermost inlined function first, the physical function last. Strings belong to the
 * symtab and live until htri_symtab_close(). Missing parts are NULL / 0.
 *
 * `linkage` is the mangled (Itanium C++ ABI, "_Z...") name of `function`, as `nm` prints
 * it and as memcheck's `fun:` suppression lines match it; it names the same function as
 * `function` (which may be spelled otherwise: "f::{lambda}::operator()"). From
 * DWARF: the DW_AT_linkage_name (or DW_AT_MIPS_linkage_name) of the subprogram, or of the
 * abstract origin of an inlined subroutine, when it starts with "_Z"; a physical frame
 * whose DWARF has none (gcc omits it for internal linkage: static functions, lambdas) takes
 * the "_Z" name of the ELF symbol holding the pc. Without DWARF: the ELF symbol's name when
 * it is mangled and demangles. NULL otherwise: C names (the linkage name is the name),
 * asm aliases such as glibc's "__GI___libc_malloc" (internal, never what a user writes),
 * inlined C++ functions of internal linkage under gcc, and unknown pcs. */
typedef struct htri_frame {
    const char *function;  /* demangled; NULL if unknown */
    const char *linkage;   /* the name in the object file, when it differs: see below */
    const char *file;      /* source file, NULL if no line info */
    uint32_t line;
    uint8_t inlined;       /* 1 if this frame was inlined into the next one */
    const char *module;    /* module path (basename not applied) */
    uint64_t module_offset;/* pc relative to the module's load bias (the pc itself if no module) */
    uint64_t pc;           /* the address as asked (before the pc - 1 of return addresses) */
} htri_frame;

/* Opens an empty symbol table. Returns NULL on out-of-memory. */
htri_symtab *htri_symtab_open(void);
void htri_symtab_close(htri_symtab *st);

/* Registers a loaded module: its path as the traced program saw it, its load bias (l_addr),
 * the address range it covered, and its GNU build-id (may be NULL/0: then the file at
 * `path` is trusted as it is). If that file is missing or its build-id differs, these are
 * tried by build-id: ROOT/.build-id/xx/rest.debug for each debug root and /usr/lib/debug,
 * then the debuginfod client's cache ($DEBUGINFOD_CACHE_PATH, else
 * $XDG_CACHE_HOME/debuginfod_client, else ~/.cache/debuginfod_client: <hex>/executable,
 * <hex>/debuginfo). A file without DWARF gets its debug info the same way, or through its
 * .gnu_debuglink. Nothing is ever fetched from the network. Cheap: no file is opened here.
 * Returns a module handle >= 0, -EINVAL, or -ENOMEM. */
int htri_symtab_add_module(htri_symtab *st, const char *path, uint64_t bias,
                           uint64_t start, uint64_t end,
                           const uint8_t *build_id, size_t build_id_len);

/* Symbolizes a return address `pc` that lies in module `mod` (pc - 1 is looked up, since
 * it is a return address, unless `is_return_address` is 0). Writes up to `max` frames,
 * innermost inlined first (a chain longer than `max` keeps its innermost frames); returns
 * how many (>= 1: an unknown pc, a module whose file is gone or has another build-id, gives
 * one frame with function == NULL and the module/offset filled), -EINVAL for max < 1, or
 * -ENOMEM. A `mod` that is no handle counts as no module. The module's files are opened on
 * its first resolve; results are cached per (mod, pc, is_return_address). */
int htri_symtab_resolve(htri_symtab *st, int mod, uint64_t pc, int is_return_address,
                        htri_frame *out, int max);

/* Adds a directory laid out like /usr/lib/debug (its .build-id/xx/rest.debug files are
 * searched before the defaults). Call before the first resolve. Returns 0 or -ENOMEM. */
int htri_symtab_add_debug_root(htri_symtab *st, const char *dir);

/* The module whose [start, end) holds `pc`, or -ENOENT (-ENOMEM). When ranges overlap (a
 * library unloaded and another mapped in its place), the one starting highest wins, and on
 * equal starts the one added last. */
int htri_symtab_find_module(htri_symtab *st, uint64_t pc);

/* htri_symtab_resolve() for a pc whose module is not known: finds it first. A pc in no
 * module gives one frame with function and module NULL and module_offset == pc. */
int htri_symtab_resolve_pc(htri_symtab *st, uint64_t pc, int is_return_address,
                           htri_frame *out, int max);

/* Registers every module of the calling process (dl_iterate_phdr): for tests and the debug
 * allocators' reports. Returns how many were added, or a negative errno. */
int htri_symtab_add_self(htri_symtab *st);

/* The file actually used for module `mod` (the recorded path, a build-id match from a debug
 * root or the debuginfod cache), opening it if needed; NULL if none fits. */
const char *htri_symtab_module_file(htri_symtab *st, int mod);

/* Writes one valgrind-like line, without newline, for a frame:
 *   "function (file:line)" | "function (in module+0xoff)" | "0xADDR (in module)" | "0xADDR"
 * (the source file as its basename, the module path whole, as valgrind does). buf may be
 * NULL with cap 0. Always NUL-terminates when cap > 0; returns the length the whole line
 * needs, like snprintf. */
size_t htri_frame_format(const htri_frame *f, char *buf, size_t cap);

/* Cache statistics since open: resolves asked for, and how many the cache answered. */
void htri_symtab_stats(const htri_symtab *st, uint64_t *n_lookups, uint64_t *n_hits);

/* Test hook (SQLite's fault simulator in small): the next `n` allocations of this table
 * succeed and the one after fails, once; n < 0 turns it off. Returns how many allocations
 * the previous setting still had to go (-1: none pending, it fired or was off).
 * Out-of-memory never corrupts the table: the call that hit it returns -ENOMEM and caches
 * nothing, and the same call made again gives the full answer. */
long htri_symtab_fail_alloc_after(htri_symtab *st, long n);

/* Demangles a C++ symbol into buf; returns buf, or `name` unchanged if not mangled. */
const char *htri_demangle(const char *name, char *buf, size_t cap);

#endif
