/* Private: offline symbolization for the CLI (libdw): function, file:line, inlined frames,
 * demangled C++ names, cached per module. Never linked into the agent. */
#ifndef HTR_SYMBOLS_SYMBOLS_H
#define HTR_SYMBOLS_SYMBOLS_H
#include <stddef.h>
#include <stdint.h>

typedef struct htri_symtab htri_symtab;

/* One source-level frame. A return address may expand to several (inlined calls): the
 * innermost inlined function first, the physical function last. Strings belong to the
 * symtab and live until htri_symtab_close(). Missing parts are NULL / 0. */
typedef struct htri_frame {
    const char *function;  /* demangled; NULL if unknown */
    const char *file;      /* source file, NULL if no line info */
    uint32_t line;
    uint8_t inlined;       /* 1 if this frame was inlined into the next one */
    const char *module;    /* module path (basename not applied) */
    uint64_t module_offset;/* pc relative to the module's load bias */
} htri_frame;

/* Opens an empty symbol table. Returns NULL on out-of-memory. */
htri_symtab *htri_symtab_open(void);
void htri_symtab_close(htri_symtab *st);

/* Registers a loaded module: its path as the traced program saw it, its load bias (l_addr),
 * the address range it covered, and its GNU build-id (may be NULL/0). If the file at `path`
 * is missing or its build-id differs, /usr/lib/debug/.build-id/xx/rest.debug and the
 * debuginfod cache are tried. Returns a module handle >= 0, or a negative errno. */
int htri_symtab_add_module(htri_symtab *st, const char *path, uint64_t bias,
                           uint64_t start, uint64_t end,
                           const uint8_t *build_id, size_t build_id_len);

/* Symbolizes a return address `pc` that lies in module `mod` (pc - 1 is looked up, since
 * it is a return address, unless `is_return_address` is 0). Writes up to `max` frames,
 * innermost inlined first; returns how many (>= 1: an unknown pc gives one frame with
 * function == NULL and the module/offset filled). Results are cached per (mod, pc). */
int htri_symtab_resolve(htri_symtab *st, int mod, uint64_t pc, int is_return_address,
                        htri_frame *out, int max);

/* Demangles a C++ symbol into buf; returns buf, or `name` unchanged if not mangled. */
const char *htri_demangle(const char *name, char *buf, size_t cap);

#endif
