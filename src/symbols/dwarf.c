/* From a module address to source frames: the DWARF scope chain gives the inlined calls
 * (innermost first, each placed by its caller's DW_AT_call_file/line), the line table gives
 * the innermost position, and the ELF symbol tables name code without DWARF. */
#include <stdio.h>
#include <stdlib.h>
#include <dwarf.h>
#include <elfutils/libdw.h>

#include "symbols/symbols_int.h"

static bool dwarf_is_cplusplus(Dwarf_Die *cudie)
{
    int lang = dwarf_srclang(cudie);
    return lang == DW_LANG_C_plus_plus || lang == DW_LANG_C_plus_plus_03 ||
           lang == DW_LANG_C_plus_plus_11 || lang == DW_LANG_C_plus_plus_14;
}

/* "ns::Class::name" for a C++ function without a linkage name (gcc omits it for functions
 * with internal linkage): the namespaces and classes around its defining DIE, as gdb shows
 * them. Cached per defining DIE, since walking to it means walking the CU. */
static const char *dwarf_qualify(htri_symtab *st, Dwarf_Die *die, const char *name)
{
    Dwarf_Die def = *die;
    Dwarf_Attribute attr;
    for (int hops = 0; hops < 8; hops++) {
        if (!dwarf_attr(&def, DW_AT_abstract_origin, &attr) &&
            !dwarf_attr(&def, DW_AT_specification, &attr))
            break;
        if (!dwarf_formref_die(&attr, &def))
            return name;
    }
    /* a DIE's address in the mapped .debug_info is unique across all open modules */
    if (htri_symbols_map_reserve(&st->names, 1) != 0)
        return name;
    symbols_slot *slot = htri_symbols_map_find(&st->names, (uintptr_t)def.addr, 2);
    if (slot->b)
        return (const char *)(uintptr_t)slot->v;
    Dwarf_Die *scopes = NULL;
    int n_scopes = dwarf_getscopes_die(&def, &scopes);
    char buf[1024];
    size_t len = 0;
    for (int i = n_scopes - 1; i >= 1; i--) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag != DW_TAG_namespace && tag != DW_TAG_class_type &&
            tag != DW_TAG_structure_type && tag != DW_TAG_union_type)
            continue;
        const char *part = dwarf_diename(&scopes[i]);
        int k = snprintf(buf + len, sizeof buf - len, "%s::",
                         part ? part : "(anonymous namespace)");
        if (k < 0 || (size_t)k >= sizeof buf - len) {
            len = 0;  /* too deep to print: the bare name will do */
            break;
        }
        len += (size_t)k;
    }
    free(scopes);
    const char *full = name;
    if (len) {
        int k = snprintf(buf + len, sizeof buf - len, "%s", name);
        if (k >= 0 && (size_t)k < sizeof buf - len)
            full = htri_symbols_strdup(st, buf, len + (size_t)k);
        if (!full)
            return name;
    }
    slot->a = (uintptr_t)def.addr;
    slot->b = 2;
    slot->v = (uintptr_t)full;
    st->names.used++;
    return full;
}

/* The name to show for a subprogram or inlined instance, table-owned: a C++ linkage name
 * demangled (the qualified name with parameters), else DW_AT_name, qualified for C++.
 * Other linkage names are ignored: glibc's "__GI___libc_malloc" is an asm alias. */
static const char *dwarf_func_name(htri_symtab *st, Dwarf_Die *cudie, Dwarf_Die *die)
{
    Dwarf_Attribute attr;
    const char *name = NULL;
    if (dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) ||
        dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr))
        name = dwarf_formstring(&attr);
    if (name && name[0] == '_' && name[1] == 'Z')
        return htri_symbols_name(st, name);
    name = NULL;
    if (dwarf_attr_integrate(die, DW_AT_name, &attr))
        name = dwarf_formstring(&attr);
    if (name && dwarf_is_cplusplus(cudie))
        return dwarf_qualify(st, die, name);
    return name;
}

static uint32_t dwarf_udata(Dwarf_Die *die, unsigned int at)
{
    Dwarf_Attribute attr;
    Dwarf_Word v;
    if (!dwarf_attr(die, at, &attr) || dwarf_formudata(&attr, &v) != 0)
        return 0;
    return v > UINT32_MAX ? 0 : (uint32_t)v;
}

/* Walks the scopes around `addr`; returns the number of frames written (0 when no
 * function scope holds it). `file`/`line` enter as the line table's answer. */
static int dwarf_inline_chain(htri_symtab *st, Dwarf_Die *cudie, Dwarf_Addr cu_addr, const char *file,
                              uint32_t line, htri_frame *out, int max)
{
    Dwarf_Die *scopes = NULL;
    int n_scopes = dwarf_getscopes(cudie, cu_addr, &scopes);
    if (n_scopes <= 0) {
        free(scopes);
        return 0;
    }
    /* dwarf_getscopes continues from an inlined instance into its abstract definition's
     * scopes; the concrete callers come from the innermost DIE's own parents instead. */
    Dwarf_Die inner = scopes[0];
    free(scopes);
    scopes = NULL;
    n_scopes = dwarf_getscopes_die(&inner, &scopes);
    if (n_scopes <= 0) {
        free(scopes);
        return 0;
    }
    Dwarf_Files *files = NULL;
    size_t n_files = 0;
    if (dwarf_getsrcfiles(cudie, &files, &n_files) != 0)
        files = NULL;
    int n = 0;
    for (int i = 0; i < n_scopes && n < max; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag != DW_TAG_subprogram && tag != DW_TAG_inlined_subroutine)
            continue;
        htri_frame *f = &out[n++];
        f->function = dwarf_func_name(st, cudie, &scopes[i]);
        f->file = file;
        f->line = line;
        f->inlined = tag == DW_TAG_inlined_subroutine;
        if (!f->inlined)
            break;
        /* the caller's position is where this instance was called from */
        uint32_t call_file = dwarf_udata(&scopes[i], DW_AT_call_file);
        file = files && call_file < n_files ? dwarf_filesrc(files, call_file, NULL, NULL)
                                            : NULL;
        line = dwarf_udata(&scopes[i], DW_AT_call_line);
    }
    free(scopes);
    return n;
}

int htri_symbols_expand(htri_symtab *st, Dwfl_Module *dm, uint64_t addr, htri_frame *out, int max)
{
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
    Dwarf_Die *cudie = dwfl_module_addrdie(dm, addr, &bias);
    if (cudie) {
        for (int i = 0; i < max; i++)
            out[i] = (htri_frame){ 0 };
        n = dwarf_inline_chain(st, cudie, addr - bias, file, line, out, max);
    }
    if (n > 0 && out[n - 1].function && !out[n - 1].inlined)
        return n;
    /* No DWARF function here (or an unnamed one): the symbol tables still name the code.
     * A chain cut short by `max` keeps what it has. */
    if (n == max)
        return n;
    GElf_Off sym_off;
    GElf_Sym sym;
    const char *name = htri_symbols_name(st, dwfl_module_addrinfo(dm, addr, &sym_off, &sym,
                                                                  NULL, NULL, NULL));
    if (n > 0 && !out[n - 1].inlined) {
        out[n - 1].function = name;
        return n;
    }
    if (!name && !file)
        return n;
    out[n] = (htri_frame){ .function = name, .file = n ? NULL : file, .line = n ? 0 : line };
    return n + 1;
}
