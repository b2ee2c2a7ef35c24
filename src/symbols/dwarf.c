/* From a module address to source frames: the DWARF scope chain gives the inlined calls
 * (innermost first, each placed by its caller's DW_AT_call_file/line), the line table gives
 * the innermost position, and the ELF symbol tables name code without DWARF. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dwarf.h>
#include <elfutils/libdw.h>

#include "symbols/symbols_int.h"

static bool dwarf_is_cplusplus(Dwarf_Die *cudie)
{
    /* 0x2a, 0x2b: C++17 and C++20 in DWARF 6, which some producers already emit */
    int lang = dwarf_srclang(cudie);
    return lang == DW_LANG_C_plus_plus || lang == DW_LANG_C_plus_plus_03 ||
           lang == DW_LANG_C_plus_plus_11 || lang == DW_LANG_C_plus_plus_14 ||
           lang == 0x2a || lang == 0x2b || lang == DW_LANG_ObjC_plus_plus;
}

/* Appends the qualifier one enclosing scope adds to a C++ name ("ns::", "Class::",
 * "fn::", "{lambda}::") to buf[*len..cap); returns false when it does not fit. Unnamed
 * classes inside functions are the closures of lambdas. Other tags add nothing. */
static bool dwarf_scope_part(Dwarf_Die *scope, int parent_tag, char *buf, size_t cap,
                             size_t *len)
{
    int tag = dwarf_tag(scope);
    const char *part;
    switch (tag) {
    case DW_TAG_namespace:
        part = dwarf_diename(scope);
        if (!part)
            part = "(anonymous namespace)";
        break;
    case DW_TAG_class_type: case DW_TAG_structure_type: case DW_TAG_union_type:
        part = dwarf_diename(scope);
        if (!part)
            part = parent_tag == DW_TAG_subprogram || parent_tag == DW_TAG_lexical_block
                       ? "{lambda}" : "{unnamed type}";
        break;
    case DW_TAG_subprogram: {
        Dwarf_Attribute attr;
        part = dwarf_attr_integrate(scope, DW_AT_name, &attr) ? dwarf_formstring(&attr) : NULL;
        if (!part)
            return true;
        break;
    }
    default:
        return true;
    }
    int k = snprintf(buf + *len, cap - *len, "%s::", part);
    if (k < 0 || (size_t)k >= cap - *len)
        return false;
    *len += (size_t)k;
    return true;
}

/* "ns::Class::name" for a C++ function without a linkage name (gcc omits it for functions
 * with internal linkage): the namespaces and classes around its defining DIE, as gdb shows
 * them. Cached per defining DIE (the CU index fills the cache as it walks, so the walk here
 * is for DIEs of other CUs). Sets *out; returns 0 or -ENOMEM. */
static int dwarf_qualify(htri_symtab *st, Dwarf_Die *die, const char *name, const char **out)
{
    *out = name;
    Dwarf_Die def = *die;
    Dwarf_Attribute attr;
    for (int hops = 0; hops < 8; hops++) {
        if (!dwarf_attr(&def, DW_AT_abstract_origin, &attr) &&
            !dwarf_attr(&def, DW_AT_specification, &attr))
            break;
        if (!dwarf_formref_die(&attr, &def))
            return 0;
    }
    /* a DIE's address in the mapped .debug_info is unique across all open modules */
    if (htri_symbols_map_reserve(st, &st->names, 1) != 0)
        return -ENOMEM;
    symbols_slot *slot = htri_symbols_map_find(&st->names, (uintptr_t)def.addr, 2);
    if (slot->b) {
        *out = (const char *)(uintptr_t)slot->v;
        return 0;
    }
    Dwarf_Die *scopes = NULL;
    int n_scopes = dwarf_getscopes_die(&def, &scopes);
    char buf[1024];
    size_t len = 0;
    for (int i = n_scopes - 1; i >= 1; i--) {
        int parent_tag = i + 1 < n_scopes ? dwarf_tag(&scopes[i + 1]) : DW_TAG_compile_unit;
        if (!dwarf_scope_part(&scopes[i], parent_tag, buf, sizeof buf, &len)) {
            len = 0;  /* too deep to print: the bare name will do */
            break;
        }
    }
    free(scopes);
    const char *full = name;
    if (len) {
        int k = snprintf(buf + len, sizeof buf - len, "%s", name);
        if (k >= 0 && (size_t)k < sizeof buf - len)
            full = htri_symbols_strdup(st, buf, len + (size_t)k);
        if (!full)
            return -ENOMEM;
    }
    slot->a = (uintptr_t)def.addr;
    slot->b = 2;
    slot->v = (uintptr_t)full;
    st->names.used++;
    *out = full;
    return 0;
}

/* The name to show for a subprogram or inlined instance, table-owned: a C++ linkage name
 * demangled (the qualified name with parameters), else DW_AT_name, qualified for C++.
 * Other linkage names are ignored: glibc's "__GI___libc_malloc" is an asm alias.
 * Sets *out (NULL: no name) and *linkage (the "_Z" linkage name, owned by libdw, or NULL;
 * dwarf_attr_integrate follows DW_AT_abstract_origin and DW_AT_specification to it);
 * returns 0 or -ENOMEM. */
static int dwarf_func_name(htri_symtab *st, Dwarf_Die *cudie, Dwarf_Die *die,
                           const char **out, const char **linkage)
{
    Dwarf_Attribute attr;
    const char *name = NULL;
    *linkage = NULL;
    if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) ||
        dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr))
        name = dwarf_formstring(&attr);
    if (name && name[0] == '_' && name[1] == 'Z') {
        int rc = htri_symbols_name(st, name, out);
        /* a name that does not demangle is shown raw: then it is no second spelling */
        if (rc == 0 && *out != name)
            *linkage = name;
        return rc;
    }
    name = NULL;
    if (dwarf_attr_integrate(die, DW_AT_name, &attr))
        name = dwarf_formstring(&attr);
    if (name && dwarf_is_cplusplus(cudie))
        return dwarf_qualify(st, die, name, out);
    *out = name;
    return 0;
}

static uint32_t dwarf_udata(Dwarf_Die *die, unsigned int at)
{
    Dwarf_Attribute attr;
    Dwarf_Word v;
    if (!dwarf_attr(die, at, &attr) || dwarf_formudata(&attr, &v) != 0)
        return 0;
    return v > UINT32_MAX ? 0 : (uint32_t)v;
}

/* ---- per-CU index of code-bearing function DIEs ----
 *
 * dwarf_getscopes walks a CU's DIEs from its start for every pc, which on one-CU programs
 * such as SQLite's amalgamation costs milliseconds per pc. Instead each CU is walked once:
 * every subprogram and inlined_subroutine with code becomes a node (with its enclosing
 * node), every one of its address ranges an interval. DIE ranges nest, so the intervals
 * form a laminar family; sorted by (lo, -hi, depth) with each interval's enclosing
 * interval precomputed, the innermost interval holding a pc is the last one starting at or
 * below it, or the first of its enclosing chain that still reaches the pc.
 *
 *   intervals (sorted)    [lo ........................... hi)  node 0  physical function
 *                           [lo ...... hi)                      node 1  inlined, parent 0
 *                                [lo .. hi)                     node 2  inlined, parent 1
 */

typedef struct dwarf_node {
    Dwarf_Die die;
    int32_t parent;             /* enclosing function node, -1 for none */
    bool named;                 /* `name` and `linkage` computed */
    const char *name;
    const char *linkage;        /* htri_frame.linkage from DWARF, or NULL */
} dwarf_node;

typedef struct dwarf_interval {
    uint64_t lo, hi;            /* CU addresses, [lo, hi) */
    int32_t node, depth, encl;  /* encl: enclosing interval, -1 for none */
} dwarf_interval;

typedef struct dwarf_cu_index {
    struct dwarf_cu_index *next;/* every index of the table, freed at close */
    dwarf_node *nodes;
    size_t n_nodes, cap_nodes;
    dwarf_interval *ivs;
    size_t n_ivs, cap_ivs;
    Dwarf_Files *files;
    size_t n_files;
} dwarf_cu_index;

#define DWARF_MAX_DEPTH 256

static int dwarf_grow(htri_symtab *st, void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t new_cap = *cap ? *cap * 2 : 64, bytes;
    if (htri_mul_overflow(new_cap, elem, &bytes))
        return -ENOMEM;
    void *p = htri_symbols_realloc(st, *arr, bytes);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = new_cap;
    return 0;
}

static int dwarf_cmp_interval(const void *pa, const void *pb)
{
    const dwarf_interval *a = pa, *b = pb;
    if (a->lo != b->lo)
        return a->lo < b->lo ? -1 : 1;
    if (a->hi != b->hi)
        return a->hi > b->hi ? -1 : 1;
    return (a->depth > b->depth) - (a->depth < b->depth);
}

/* Tags whose children may hold code or the namespaces that qualify names. */
static bool dwarf_may_nest(int tag)
{
    switch (tag) {
    case DW_TAG_subprogram: case DW_TAG_inlined_subroutine: case DW_TAG_lexical_block:
    case DW_TAG_namespace: case DW_TAG_class_type: case DW_TAG_structure_type:
    case DW_TAG_union_type: case DW_TAG_module: case DW_TAG_try_block:
    case DW_TAG_catch_block: case DW_TAG_entry_point:
        return true;
    default:
        return false;
    }
}

/* Records "prefix::name" for a C++ function without a linkage name, so that
 * dwarf_qualify() finds it without walking the CU again. Best effort. */
static void dwarf_note_qualified(htri_symtab *st, Dwarf_Die *die, const char *prefix,
                                 size_t prefix_len)
{
    const char *name = dwarf_diename(die);
    if (!name || htri_symbols_map_reserve(st, &st->names, 1) != 0)
        return;
    symbols_slot *slot = htri_symbols_map_find(&st->names, (uintptr_t)die->addr, 2);
    if (slot->b)
        return;
    size_t name_len = strlen(name);
    char buf[1024];
    if (prefix_len + name_len >= sizeof buf)
        return;
    memcpy(buf, prefix, prefix_len);
    memcpy(buf + prefix_len, name, name_len);
    /* at the top level the name stands as libdw keeps it */
    const char *full = prefix_len ? htri_symbols_strdup(st, buf, prefix_len + name_len) : name;
    if (!full)
        return;
    slot->a = (uintptr_t)die->addr;
    slot->b = 2;
    slot->v = (uintptr_t)full;
    st->names.used++;
}

static int dwarf_index_fill(htri_symtab *st, Dwarf_Die *cudie, dwarf_cu_index *ix)
{
    bool cxx = dwarf_is_cplusplus(cudie);
    struct level {
        Dwarf_Die die;
        int32_t node;           /* the function node enclosing DIEs at this level */
        uint32_t prefix_len;    /* "ns::Class::" length valid at this level */
        int parent_tag;         /* tag of the DIE holding this level */
    } *stack = htri_symbols_realloc(st, NULL, DWARF_MAX_DEPTH * sizeof *stack);
    char prefix[1024];
    if (!stack)
        return -ENOMEM;
    int d = 0, rc = 0;
    if (dwarf_child(cudie, &stack[0].die) != 0) {
        free(stack);
        return 0;
    }
    stack[0].node = -1;
    stack[0].prefix_len = 0;
    stack[0].parent_tag = DW_TAG_compile_unit;
    while (d >= 0) {
        Dwarf_Die *die = &stack[d].die;
        int tag = dwarf_tag(die);
        int32_t node = stack[d].node;
        if (tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine) {
            Dwarf_Addr base, lo, hi;
            ptrdiff_t off = 0;
            int32_t id = -1;
            while ((off = dwarf_ranges(die, off, &base, &lo, &hi)) > 0) {
                if (lo >= hi)
                    continue;
                if (id < 0) {
                    if ((rc = dwarf_grow(st, (void **)&ix->nodes, &ix->cap_nodes, ix->n_nodes,
                                         sizeof *ix->nodes)) != 0)
                        goto out;
                    id = (int32_t)ix->n_nodes++;
                    ix->nodes[id] = (dwarf_node){ .die = *die, .parent = node };
                }
                if ((rc = dwarf_grow(st, (void **)&ix->ivs, &ix->cap_ivs, ix->n_ivs,
                                     sizeof *ix->ivs)) != 0)
                    goto out;
                ix->ivs[ix->n_ivs++] = (dwarf_interval){ lo, hi, id, d, -1 };
            }
            if (id >= 0)
                node = id;
            if (cxx && tag == DW_TAG_subprogram && !dwarf_hasattr(die, DW_AT_linkage_name))
                dwarf_note_qualified(st, die, prefix, stack[d].prefix_len);
        }
        if (dwarf_may_nest(tag) && dwarf_haschildren(die) > 0 && d + 1 < DWARF_MAX_DEPTH &&
            dwarf_child(die, &stack[d + 1].die) == 0) {
            size_t plen = stack[d].prefix_len;
            if (cxx && !dwarf_scope_part(die, stack[d].parent_tag, prefix, sizeof prefix, &plen))
                plen = stack[d].prefix_len;
            d++;
            stack[d].node = node;
            stack[d].prefix_len = (uint32_t)plen;
            stack[d].parent_tag = tag;
            continue;
        }
        /* next sibling, climbing while a level is exhausted */
        while (d >= 0 && dwarf_siblingof(&stack[d].die, &stack[d].die) != 0)
            d--;
    }
    if (ix->n_ivs)
        qsort(ix->ivs, ix->n_ivs, sizeof *ix->ivs, dwarf_cmp_interval);
    /* enclosing intervals: a stack sweep over the sorted (laminar) family */
    int32_t *open = htri_symbols_realloc(st, NULL, (ix->n_ivs ? ix->n_ivs : 1) * sizeof *open);
    if (!open) {
        rc = -ENOMEM;
        goto out;
    }
    size_t n_open = 0;
    for (size_t i = 0; i < ix->n_ivs; i++) {
        while (n_open && ix->ivs[open[n_open - 1]].hi <= ix->ivs[i].lo)
            n_open--;
        ix->ivs[i].encl = n_open ? open[n_open - 1] : -1;
        open[n_open++] = (int32_t)i;
    }
    free(open);
out:
    free(stack);
    return rc;
}

/* The index of the CU at `cudie`, built on first use; NULL when out of memory. */
static dwarf_cu_index *dwarf_index(htri_symtab *st, Dwarf_Die *cudie)
{
    if (htri_symbols_map_reserve(st, &st->names, 1) != 0)
        return NULL;
    symbols_slot *slot = htri_symbols_map_find(&st->names, (uintptr_t)cudie->addr, 3);
    if (slot->b)
        return (dwarf_cu_index *)(uintptr_t)slot->v;
    dwarf_cu_index *ix = htri_symbols_realloc(st, NULL, sizeof *ix);
    if (!ix)
        return NULL;
    memset(ix, 0, sizeof *ix);
    if (dwarf_index_fill(st, cudie, ix) != 0) {
        htri_symbols_cu_index_free(ix);
        return NULL;
    }
    if (dwarf_getsrcfiles(cudie, &ix->files, &ix->n_files) != 0)
        ix->files = NULL;
    /* the fill inserted names: look the slot up again */
    if (htri_symbols_map_reserve(st, &st->names, 1) != 0) {
        htri_symbols_cu_index_free(ix);
        return NULL;
    }
    slot = htri_symbols_map_find(&st->names, (uintptr_t)cudie->addr, 3);
    slot->a = (uintptr_t)cudie->addr;
    slot->b = 3;
    slot->v = (uintptr_t)ix;
    st->names.used++;
    ix->next = st->cu_indexes;
    st->cu_indexes = ix;
    return ix;
}

void htri_symbols_cu_index_free(struct dwarf_cu_index *ix)
{
    while (ix) {
        struct dwarf_cu_index *next = ix->next;
        free(ix->nodes);
        free(ix->ivs);
        free(ix);
        ix = next;
    }
}

/* The innermost function node holding CU address `a`, or -1. */
static int32_t dwarf_index_find(const dwarf_cu_index *ix, uint64_t a)
{
    size_t lo = 0, hi = ix->n_ivs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ix->ivs[mid].lo <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (int32_t i = (int32_t)lo - 1; i >= 0; i = ix->ivs[i].encl) {
        if (a < ix->ivs[i].hi)
            return ix->ivs[i].node;
    }
    return -1;
}

/* Frames for `cu_addr`, innermost first; returns how many (0 when no function holds it),
 * or -ENOMEM.
 * `file`/`line` enter as the line table's answer for the innermost frame. */
static int dwarf_inline_chain(htri_symtab *st, Dwarf_Die *cudie, Dwarf_Addr cu_addr,
                              const char *file, uint32_t line, htri_frame *out, int max)
{
    dwarf_cu_index *ix = dwarf_index(st, cudie);
    if (!ix)
        return -ENOMEM;
    int n = 0;
    for (int32_t id = dwarf_index_find(ix, cu_addr); id >= 0 && n < max;) {
        dwarf_node *node = &ix->nodes[id];
        if (!node->named) {
            if (dwarf_func_name(st, cudie, &node->die, &node->name, &node->linkage) != 0)
                return -ENOMEM;
            node->named = true;
        }
        htri_frame *f = &out[n++];
        f->function = node->name;
        f->linkage = node->linkage;
        f->file = file;
        f->line = line;
        f->inlined = dwarf_tag(&node->die) == DW_TAG_inlined_subroutine;
        if (!f->inlined)
            break;
        /* the caller's position is where this instance was called from */
        uint32_t call_file = dwarf_udata(&node->die, DW_AT_call_file);
        file = ix->files && call_file < ix->n_files
                   ? dwarf_filesrc(ix->files, call_file, NULL, NULL) : NULL;
        line = dwarf_udata(&node->die, DW_AT_call_line);
        id = node->parent;
    }
    return n;
}

/* ---- CUs without .debug_aranges ----
 * libdwfl 0.188 maps an address to its CU through .debug_aranges only, which clang does not
 * emit; then each CU's own ranges (DW_AT_low_pc/high_pc/ranges), read once, stand in. */

static int dwarf_cmp_cu(const void *pa, const void *pb)
{
    const symbols_cu_range *a = pa, *b = pb;
    return (a->lo > b->lo) - (a->lo < b->lo);
}

static int dwarf_cus_build(htri_symtab *st, symbols_module *m)
{
    Dwarf_Addr bias;
    Dwarf *dw = dwfl_module_getdwarf(m->dwmod, &bias);
    symbols_cu_range *cus = NULL;
    size_t n = 0, cap = 0;
    Dwarf_CU *cu = NULL, *next;
    Dwarf_Half version;
    uint8_t unit_type;
    Dwarf_Die cudie;
    while (dw && dwarf_get_units(dw, cu, &next, &version, &unit_type, &cudie, NULL) == 0) {
        cu = next;
        if (unit_type != DW_UT_compile)
            continue;
        Dwarf_Addr base, lo, hi;
        for (ptrdiff_t off = 0; (off = dwarf_ranges(&cudie, off, &base, &lo, &hi)) > 0;) {
            if (lo >= hi)
                continue;
            if (dwarf_grow(st, (void **)&cus, &cap, n, sizeof *cus) != 0) {
                free(cus);
                return -ENOMEM;
            }
            cus[n++] = (symbols_cu_range){ lo, hi, cudie };
        }
    }
    if (n)
        qsort(cus, n, sizeof *cus, dwarf_cmp_cu);
    m->cus = cus;
    m->n_cus = n;
    m->cus_built = true;
    return 0;
}

/* The CU holding module address `addr` by its own ranges: 1 and *cudie, *bias set; 0 for
 * none; -ENOMEM. */
static int dwarf_cu_by_ranges(htri_symtab *st, symbols_module *m, uint64_t addr,
                              Dwarf_Die *cudie, Dwarf_Addr *bias)
{
    if (!m->cus_built && dwarf_cus_build(st, m) != 0)
        return -ENOMEM;
    if (!dwfl_module_getdwarf(m->dwmod, bias))
        return 0;
    uint64_t a = addr - *bias;
    size_t lo = 0, hi = m->n_cus;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->cus[mid].lo <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || a >= m->cus[lo - 1].hi)
        return 0;
    *cudie = m->cus[lo - 1].cudie;
    return 1;
}

/* Sets f->linkage to the mangled name of the ELF symbol holding `addr` when it demangles
 * to a name that contains the last component of f->function ("push_edge" of
 * "ns::push_edge", "operator()" of a lambda's): a size-less symbol reaching over from a
 * neighbour must not lend its name. Returns 0 or -ENOMEM. */
static int dwarf_elf_linkage(htri_symtab *st, symbols_module *m, uint64_t addr, htri_frame *f)
{
    const char *raw = htri_symbols_elf_name(m, addr), *plain;
    if (!m->funcs_built)
        return -ENOMEM;   /* the symbol index could not be built */
    if (!raw || raw[0] != '_' || raw[1] != 'Z')
        return 0;
    if (htri_symbols_name(st, raw, &plain) != 0)
        return -ENOMEM;
    const char *last = f->function;
    for (const char *p = f->function; (p = strstr(p, "::")) != NULL; p += 2)
        last = p + 2;
    if (plain != raw && strstr(plain, last))
        f->linkage = raw;
    return 0;
}

int htri_symbols_expand(htri_symtab *st, symbols_module *m, uint64_t addr, htri_frame *out,
                        int max)
{
    Dwfl_Module *dm = m->dwmod;
    const char *file = NULL;
    uint32_t line = 0;
    Dwfl_Line *dl = dwfl_module_getsrc(dm, addr);
    if (dl) {
        int l = 0;
        file = dwfl_lineinfo(dl, NULL, &l, NULL, NULL, NULL);
        line = l > 0 ? (uint32_t)l : 0;
    }
    int n = 0;
    Dwarf_Addr bias = 0;
    Dwarf_Die *cudie = dwfl_module_addrdie(dm, addr, &bias), cu_found;
    if (!cudie) {
        int rc = dwarf_cu_by_ranges(st, m, addr, &cu_found, &bias);
        if (rc < 0)
            return rc;
        cudie = rc ? &cu_found : NULL;
        /* dwfl_module_getsrc needed the same missing table */
        Dwarf_Line *dline = cudie && !file ? dwarf_getsrc_die(cudie, addr - bias) : NULL;
        int l = 0;
        if (dline && dwarf_lineno(dline, &l) == 0) {
            file = dwarf_linesrc(dline, NULL, NULL);
            line = l > 0 ? (uint32_t)l : 0;
        }
    }
    if (cudie) {
        for (int i = 0; i < max; i++)
            out[i] = (htri_frame){ 0 };
        n = dwarf_inline_chain(st, cudie, addr - bias, file, line, out, max);
        if (n < 0)
            return n;
    }
    if (n > 0 && out[n - 1].function && !out[n - 1].inlined) {
        /* a C++ function DWARF gives no linkage name (internal linkage under gcc) still
         * has a mangled symbol, which memcheck's suppressions are written against; C code
         * is spared building the module's symbol index */
        if (!out[n - 1].linkage && dwarf_is_cplusplus(cudie))
            return dwarf_elf_linkage(st, m, addr, &out[n - 1]) != 0 ? -ENOMEM : n;
        return n;
    }
    /* No DWARF function here (or an unnamed one): the symbol tables still name the code.
     * A chain cut short by `max` keeps what it has. */
    if (n == max)
        return n;
    const char *raw = htri_symbols_elf_name(m, addr), *name;
    if (!m->funcs_built || htri_symbols_name(st, raw, &name) != 0)
        return -ENOMEM;
    const char *linkage = name != raw ? raw : NULL;  /* it demangled */
    if (n > 0 && !out[n - 1].inlined) {
        out[n - 1].function = name;
        out[n - 1].linkage = linkage;
        return n;
    }
    if (!name && !file)
        return n;
    out[n] = (htri_frame){ .function = name, .linkage = linkage, .file = n ? NULL : file,
                           .line = n ? 0 : line };
    return n + 1;
}
