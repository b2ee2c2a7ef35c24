/* Private to src/symbols/: the symbol table's state and the helpers its files share
 * (file location by build-id in locate.c, DWARF frame expansion in dwarf.c). */
#ifndef HTR_SYMBOLS_SYMBOLS_INT_H
#define HTR_SYMBOLS_SYMBOLS_INT_H
#include <elfutils/libdwfl.h>

#include "base/common.h"
#include "symbols/symbols.h"

#define SYMBOLS_MAX_BUILD_ID 64   /* bytes; SHA-1 ids are 20 */
#define SYMBOLS_MAX_INLINE   64   /* frames one pc may expand to */

enum { SYMBOLS_UNOPENED = 0, SYMBOLS_OPEN = 1, SYMBOLS_NO_FILE = -1 };

/* A function symbol of a module, sorted by address (elfsym.c). */
typedef struct symbols_func {
    uint64_t lo, hi;           /* module addresses; hi == lo when the size is unknown */
    const char *name;          /* owned by the module's Elf */
    int rank;
    uint8_t bind;
} symbols_func;

/* A compile unit's address range, for DWARF without .debug_aranges (clang's default). */
typedef struct symbols_cu_range {
    uint64_t lo, hi;           /* CU addresses */
    Dwarf_Die cudie;
} symbols_cu_range;

/* One registered module. Its ELF/DWARF handles are opened on first use: a report usually
 * touches a few modules out of the hundreds a program mapped. */
typedef struct symbols_module {
    char *path;                /* as the traced program saw it */
    uint64_t bias, start, end;
    uint8_t build_id[SYMBOLS_MAX_BUILD_ID];
    size_t build_id_len;
    int state;                 /* SYMBOLS_UNOPENED / _OPEN / _NO_FILE */
    char *file;                /* the file opened in place of `path` (malloc'd) */
    Dwfl *dwfl;                /* one session per module: modules never share addresses */
    Dwfl_Module *dwmod;
    struct htri_symtab *owner; /* for the find_debuginfo callback */
    symbols_func *funcs;       /* function symbols by address, built on first need */
    size_t n_funcs;
    bool funcs_built;
    symbols_cu_range *cus;     /* CU ranges by address, built when libdwfl finds no CU */
    size_t n_cus;
    bool cus_built;
} symbols_module;

/* Open-addressing hash slot; `b == 0` marks it empty. */
typedef struct symbols_slot {
    uint64_t a, b, v;
} symbols_slot;

typedef struct symbols_map {
    symbols_slot *slots;
    size_t cap, used;          /* cap is a power of two */
} symbols_map;

/* All mutable state of one symbol table. */
struct htri_symtab {
    symbols_module *mods;
    size_t n_mods, cap_mods;
    int *by_start;             /* module ids sorted by start, rebuilt when dirty */
    uint64_t *max_end;         /* max_end[i]: the highest end among by_start[0..i] */
    bool by_start_dirty;

    char **debug_roots;        /* dirs laid out like /usr/lib/debug, searched in order */
    size_t n_roots;
    char *debuginfod_cache;    /* the debuginfod client cache dir (never fetched into) */

    symbols_map cache;         /* (pc, mod, is_ret) -> v = first << 8 | n_frames */
    htri_frame *frames;        /* every cached frame, referenced by `first` */
    size_t n_frames, cap_frames;

    symbols_map names;         /* raw name pointer -> demangled copy */
    char *str_chunk;           /* bump arena for strings we make (demangled names) */
    size_t str_used, str_cap;
    char **str_chunks;         /* every chunk, freed at close */
    size_t n_chunks, cap_chunks;

    struct dwarf_cu_index *cu_indexes; /* dwarf.c's per-CU indexes, a list */

    uint64_t n_lookups, n_hits;/* cache statistics (htri_symtab_stats) */
    long fail_countdown;       /* test hook: > 0 counts allocations down to a failure */
};

/* Hash map of (a, b) -> v, b != 0. Returns the slot holding the key or the empty slot where
 * it goes; htri_symbols_map_reserve() must have left room (load <= 1/2). */
symbols_slot *htri_symbols_map_find(symbols_map *m, uint64_t a, uint64_t b);
int htri_symbols_map_reserve(struct htri_symtab *st, symbols_map *m, size_t n_more);
void htri_symbols_map_free(symbols_map *m);

/* Opens module `m`'s best file and its Dwfl session; sets m->state. Returns 0; -ENOENT or
 * -EIO when no file fits (not an error for callers: the pc stays unknown); -ENOMEM, leaving
 * the module unopened to be tried again. */
int htri_symbols_open_module(struct htri_symtab *st, symbols_module *m);

/* Expands module-relative address `addr` (already pc - 1 for return addresses) into frames,
 * innermost first, names demangled and owned by `st` or the Dwfl. Fills at most `max` and
 * returns how many; 0 when nothing at all is known about `addr`; -ENOMEM. */
int htri_symbols_expand(htri_symtab *st, symbols_module *m, uint64_t addr, htri_frame *out,
                        int max);

/* The raw name of the ELF function symbol holding module address `addr`, or NULL (also when
 * the index could not be built for lack of memory; it is tried again next time). */
const char *htri_symbols_elf_name(symbols_module *m, uint64_t addr);

/* Sets *out to the demangled, table-owned form of a raw name (NULL stays NULL; a name that
 * does not demangle stays as it is). Returns 0 or -ENOMEM. */
int htri_symbols_name(struct htri_symtab *st, const char *raw, const char **out);

/* Every allocation of src/symbols/ goes through here (realloc semantics; NULL on failure),
 * so a test can make any one of them fail: htri_symtab_fail_alloc_after(). */
void *htri_symbols_realloc(struct htri_symtab *st, void *p, size_t size);
char *htri_symbols_cstrdup(struct htri_symtab *st, const char *s); /* free() it */

/* Frees a list of dwarf.c's per-CU indexes. */
struct dwarf_cu_index;
void htri_symbols_cu_index_free(struct dwarf_cu_index *ix);

/* A copy of s[0..len) in the table's string arena, or NULL. */
char *htri_symbols_strdup(struct htri_symtab *st, const char *s, size_t len);

#endif
