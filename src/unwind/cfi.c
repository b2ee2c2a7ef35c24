/* .eh_frame reader for the cached unwinder: finds a pc's FDE through the binary-search
 * table of .eh_frame_hdr, runs the CIE's and the FDE's call-frame programs up to the pc
 * (DWARF 5, section 6.4 "Call Frame Information"; LSB 5.0 "Exception Frames" for the .eh_frame
 * flavour) and folds the resulting row into the compact rule of unwind_int.h. Cold path:
 * runs once per new return address. Pure: no allocation, no global state. */
#include <string.h>
#include "unwind/unwind_int.h"

/* Pointer encodings (LSB "DWARF Exception Header Encoding"). */
enum {
    PE_ABSPTR = 0x00, PE_ULEB128 = 0x01, PE_UDATA2 = 0x02, PE_UDATA4 = 0x03, PE_UDATA8 = 0x04,
    PE_SLEB128 = 0x09, PE_SDATA2 = 0x0a, PE_SDATA4 = 0x0b, PE_SDATA8 = 0x0c,
    PE_PCREL = 0x10, PE_TEXTREL = 0x20, PE_DATAREL = 0x30, PE_FUNCREL = 0x40, PE_ALIGNED = 0x50,
    PE_INDIRECT = 0x80, PE_OMIT = 0xff,
};

/* Call-frame instructions (DWARF 5, 6.4.2); the first three carry an operand in the low
 * six bits of the opcode. */
enum {
    CFA_advance_loc = 0x40, CFA_offset = 0x80, CFA_restore = 0xc0,
    CFA_nop = 0x00, CFA_set_loc = 0x01, CFA_advance_loc1 = 0x02, CFA_advance_loc2 = 0x03,
    CFA_advance_loc4 = 0x04, CFA_offset_extended = 0x05, CFA_restore_extended = 0x06,
    CFA_undefined = 0x07, CFA_same_value = 0x08, CFA_register = 0x09,
    CFA_remember_state = 0x0a, CFA_restore_state = 0x0b, CFA_def_cfa = 0x0c,
    CFA_def_cfa_register = 0x0d, CFA_def_cfa_offset = 0x0e, CFA_def_cfa_expression = 0x0f,
    CFA_expression = 0x10, CFA_offset_extended_sf = 0x11, CFA_def_cfa_sf = 0x12,
    CFA_def_cfa_offset_sf = 0x13, CFA_val_offset = 0x14, CFA_val_offset_sf = 0x15,
    CFA_val_expression = 0x16, CFA_GNU_args_size = 0x2e,
    CFA_GNU_negative_offset_extended = 0x2f,
};

/* x86-64 DWARF register numbers (System V psABI, figure 3.36). */
enum { REG_RBP = 6, REG_RSP = 7 };

#define CFI_STATE_DEPTH 16       /* remember_state nesting we keep; deeper is unsupported */
#define CFI_MAX_INSNS   100000   /* a runaway program is corrupt, not slow */

struct cfi_cursor {
    const uint8_t *p;
    const uint8_t *end;
    bool bad; /* set on any read past `end` or malformed datum; reads then return 0 */
};

enum { HOW_SAME = 0, HOW_UNDEF, HOW_OFFSET, HOW_OTHER };

struct cfi_reg_rule {
    uint8_t how;
    int64_t off; /* HOW_OFFSET: saved at CFA + off */
};

/* One row of the call-frame table, restricted to what the compact rule can use. */
struct cfi_row {
    uint64_t cfa_reg;
    int64_t cfa_off;
    bool cfa_expr; /* CFA given by an expression */
    struct cfi_reg_rule rbp, rsp, ra;
};

struct cfi_cie {
    uint64_t code_align;
    int64_t data_align;
    uint64_t ra_reg;
    uint8_t fde_enc;
    bool has_aug_data; /* 'z': FDEs carry an augmentation length */
    bool signal_frame; /* 'S' */
    const uint8_t *insns, *insns_end;
};

struct cfi_machine {
    const struct cfi_cie *cie;
    uintptr_t loc, target;
    struct cfi_row row, initial;
    struct cfi_row saved[CFI_STATE_DEPTH];
    int depth;
    bool unsupported;
    bool done; /* the location passed the target: the current row is the answer */
};

static uint64_t cfi_fixed(struct cfi_cursor *c, size_t size)
{
    if (c->bad || (size_t)(c->end - c->p) < size) {
        c->bad = true;
        return 0;
    }
    uint64_t v = 0;
    switch (size) {
    case 1: v = *c->p; break;
    case 2: { uint16_t x; memcpy(&x, c->p, 2); v = x; break; }
    case 4: { uint32_t x; memcpy(&x, c->p, 4); v = x; break; }
    default: memcpy(&v, c->p, 8); break;
    }
    c->p += size;
    return v;
}

static uint64_t cfi_uleb(struct cfi_cursor *c)
{
    uint64_t v = 0;
    unsigned shift = 0;
    while (!c->bad && c->p < c->end) {
        uint8_t b = *c->p++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80))
            return v;
    }
    c->bad = true;
    return 0;
}

static int64_t cfi_sleb(struct cfi_cursor *c)
{
    uint64_t v = 0;
    unsigned shift = 0;
    while (!c->bad && c->p < c->end) {
        uint8_t b = *c->p++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) {
            if (shift < 64 && (b & 0x40))
                v |= ~(uint64_t)0 << shift;
            return (int64_t)v;
        }
    }
    c->bad = true;
    return 0;
}

/* Reads one encoded pointer. pcrel is relative to the field itself, datarel to
 * `datarel_base` (the .eh_frame_hdr, the only place the format allows it). An indirect
 * pointer is returned undereferenced: we only ever skip those (personality routines). */
static uintptr_t cfi_pointer(struct cfi_cursor *c, uint8_t enc, uintptr_t datarel_base)
{
    if (enc == PE_OMIT)
        return 0;
    if ((enc & 0x70) == PE_ALIGNED) {
        uintptr_t at = ((uintptr_t)c->p + 7) & ~(uintptr_t)7;
        if (at > (uintptr_t)c->end) {
            c->bad = true;
            return 0;
        }
        c->p = (const uint8_t *)at;
        return (uintptr_t)cfi_fixed(c, 8);
    }
    uintptr_t field = (uintptr_t)c->p;
    uint64_t v;
    switch (enc & 0x0f) {
    case PE_ABSPTR: case PE_UDATA8: case PE_SDATA8: v = cfi_fixed(c, 8); break;
    case PE_UDATA2: v = cfi_fixed(c, 2); break;
    case PE_UDATA4: v = cfi_fixed(c, 4); break;
    case PE_SDATA2: v = (uint64_t)(int64_t)(int16_t)cfi_fixed(c, 2); break;
    case PE_SDATA4: v = (uint64_t)(int64_t)(int32_t)cfi_fixed(c, 4); break;
    case PE_ULEB128: v = cfi_uleb(c); break;
    case PE_SLEB128: v = (uint64_t)cfi_sleb(c); break;
    default: c->bad = true; return 0;
    }
    switch (enc & 0x70) {
    case 0: break;
    case PE_PCREL: v += field; break;
    case PE_DATAREL:
        if (!datarel_base)
            c->bad = true;
        v += datarel_base;
        break;
    default: c->bad = true; break; /* textrel/funcrel: never emitted for x86-64 .eh_frame */
    }
    return (uintptr_t)v;
}

/* Sets *c to span one .eh_frame record's body (after its length), *id_field at the CIE
 * id / CIE pointer. Returns false on a zero terminator or a malformed length. */
static bool cfi_record(const uint8_t *rec, struct cfi_cursor *c, const uint8_t **id_field,
                       bool *is64)
{
    struct cfi_cursor hdr = { rec, rec + 12, false };
    uint64_t len = cfi_fixed(&hdr, 4);
    *is64 = len == 0xffffffffu;
    if (*is64)
        len = cfi_fixed(&hdr, 8);
    if (hdr.bad || len == 0 || len > (1u << 30))
        return false;
    *id_field = hdr.p;
    c->p = hdr.p;
    c->end = hdr.p + len;
    c->bad = false;
    return true;
}

static bool cfi_parse_cie(const uint8_t *rec, struct cfi_cie *cie)
{
    struct cfi_cursor c;
    const uint8_t *id_field;
    bool is64;
    if (!cfi_record(rec, &c, &id_field, &is64))
        return false;
    if (cfi_fixed(&c, is64 ? 8 : 4) != 0) /* a CIE's id is 0 in .eh_frame */
        return false;
    uint64_t version = cfi_fixed(&c, 1);
    if (version != 1 && version != 3 && version != 4)
        return false;
    const char *aug = (const char *)c.p;
    while (c.p < c.end && *c.p)
        c.p++;
    if (c.p >= c.end)
        return false;
    c.p++; /* the NUL */
    if (strstr(aug, "eh")) /* GCC 2.x "eh" data we never see today: not worth parsing */
        return false;
    if (version == 4)
        (void)cfi_fixed(&c, 2); /* address_size, segment_selector_size */
    cie->code_align = cfi_uleb(&c);
    cie->data_align = cfi_sleb(&c);
    cie->ra_reg = version == 1 ? cfi_fixed(&c, 1) : cfi_uleb(&c);
    cie->fde_enc = PE_ABSPTR;
    cie->has_aug_data = aug[0] == 'z';
    cie->signal_frame = false;
    if (cie->has_aug_data) {
        uint64_t aug_len = cfi_uleb(&c);
        if (c.bad || aug_len > (uint64_t)(c.end - c.p))
            return false;
        struct cfi_cursor a = { c.p, c.p + aug_len, false };
        for (const char *s = aug + 1; *s && !a.bad; s++) {
            if (*s == 'R')
                cie->fde_enc = (uint8_t)cfi_fixed(&a, 1);
            else if (*s == 'L')
                (void)cfi_fixed(&a, 1);
            else if (*s == 'P')
                (void)cfi_pointer(&a, (uint8_t)cfi_fixed(&a, 1), 0);
            else if (*s == 'S')
                cie->signal_frame = true;
            else if (*s != 'B' && *s != 'G')
                break; /* unknown letter: the length lets us skip the rest */
        }
        c.p += aug_len;
    } else if (aug[0]) {
        return false; /* unknown augmentation without 'z': cannot find the instructions */
    }
    cie->insns = c.p;
    cie->insns_end = c.end;
    return !c.bad;
}

static struct cfi_reg_rule *cfi_tracked(struct cfi_machine *m, struct cfi_row *row, uint64_t reg)
{
    if (reg == m->cie->ra_reg)
        return &row->ra;
    if (reg == REG_RBP)
        return &row->rbp;
    if (reg == REG_RSP)
        return &row->rsp;
    return NULL; /* a register the compact rule never restores: its rules do not matter */
}

static void cfi_set(struct cfi_machine *m, uint64_t reg, uint8_t how, int64_t off)
{
    struct cfi_reg_rule *r = cfi_tracked(m, &m->row, reg);
    if (r) {
        r->how = how;
        r->off = off;
    }
}

static void cfi_restore(struct cfi_machine *m, uint64_t reg)
{
    struct cfi_reg_rule *r = cfi_tracked(m, &m->row, reg);
    if (r)
        *r = *cfi_tracked(m, &m->initial, reg);
}

/* Moves the location; once it passes the target the current row is final. */
static void cfi_advance(struct cfi_machine *m, uint64_t delta)
{
    uintptr_t next = m->loc + (uintptr_t)(delta * m->cie->code_align);
    if (next > m->target)
        m->done = true;
    else
        m->loc = next;
}

/* Executes the instructions in [p, end) until the target location is passed. */
static void cfi_run(struct cfi_machine *m, const uint8_t *p, const uint8_t *end)
{
    struct cfi_cursor c = { p, end, false };
    const int64_t daf = m->cie->data_align;
    for (int n = 0; c.p < c.end && !c.bad && !m->done && !m->unsupported; n++) {
        if (n > CFI_MAX_INSNS) {
            m->unsupported = true;
            break;
        }
        uint8_t op = (uint8_t)cfi_fixed(&c, 1);
        uint8_t low = op & 0x3f;
        switch (op & 0xc0) {
        case CFA_advance_loc:
            cfi_advance(m, low);
            continue;
        case CFA_offset:
            cfi_set(m, low, HOW_OFFSET, (int64_t)cfi_uleb(&c) * daf);
            continue;
        case CFA_restore:
            cfi_restore(m, low);
            continue;
        default:
            break;
        }
        uint64_t reg, off;
        switch (op) {
        case CFA_nop:
            break;
        case CFA_set_loc: {
            uintptr_t next = cfi_pointer(&c, m->cie->fde_enc, 0);
            if (next > m->target)
                m->done = true;
            else
                m->loc = next;
            break;
        }
        case CFA_advance_loc1: cfi_advance(m, cfi_fixed(&c, 1)); break;
        case CFA_advance_loc2: cfi_advance(m, cfi_fixed(&c, 2)); break;
        case CFA_advance_loc4: cfi_advance(m, cfi_fixed(&c, 4)); break;
        case CFA_offset_extended:
            reg = cfi_uleb(&c);
            cfi_set(m, reg, HOW_OFFSET, (int64_t)cfi_uleb(&c) * daf);
            break;
        case CFA_offset_extended_sf:
            reg = cfi_uleb(&c);
            cfi_set(m, reg, HOW_OFFSET, cfi_sleb(&c) * daf);
            break;
        case CFA_GNU_negative_offset_extended:
            reg = cfi_uleb(&c);
            cfi_set(m, reg, HOW_OFFSET, -(int64_t)cfi_uleb(&c) * daf);
            break;
        case CFA_restore_extended: cfi_restore(m, cfi_uleb(&c)); break;
        case CFA_undefined: cfi_set(m, cfi_uleb(&c), HOW_UNDEF, 0); break;
        case CFA_same_value: cfi_set(m, cfi_uleb(&c), HOW_SAME, 0); break;
        case CFA_register:
            reg = cfi_uleb(&c);
            (void)cfi_uleb(&c);
            cfi_set(m, reg, HOW_OTHER, 0);
            break;
        case CFA_val_offset:
        case CFA_val_offset_sf:
            reg = cfi_uleb(&c);
            if (op == CFA_val_offset)
                (void)cfi_uleb(&c);
            else
                (void)cfi_sleb(&c);
            cfi_set(m, reg, HOW_OTHER, 0);
            break;
        case CFA_expression:
        case CFA_val_expression:
            reg = cfi_uleb(&c);
            off = cfi_uleb(&c);
            if (off > (uint64_t)(c.end - c.p))
                c.bad = true;
            else
                c.p += off;
            cfi_set(m, reg, HOW_OTHER, 0);
            break;
        case CFA_remember_state:
            if (m->depth == CFI_STATE_DEPTH)
                m->unsupported = true;
            else
                m->saved[m->depth++] = m->row;
            break;
        case CFA_restore_state:
            if (m->depth == 0)
                m->unsupported = true;
            else
                m->row = m->saved[--m->depth];
            break;
        case CFA_def_cfa:
            m->row.cfa_reg = cfi_uleb(&c);
            m->row.cfa_off = (int64_t)cfi_uleb(&c);
            m->row.cfa_expr = false;
            break;
        case CFA_def_cfa_sf:
            m->row.cfa_reg = cfi_uleb(&c);
            m->row.cfa_off = cfi_sleb(&c) * daf;
            m->row.cfa_expr = false;
            break;
        case CFA_def_cfa_register:
            m->row.cfa_reg = cfi_uleb(&c);
            break;
        case CFA_def_cfa_offset:
            m->row.cfa_off = (int64_t)cfi_uleb(&c);
            break;
        case CFA_def_cfa_offset_sf:
            m->row.cfa_off = cfi_sleb(&c) * daf;
            break;
        case CFA_def_cfa_expression:
            off = cfi_uleb(&c);
            if (off > (uint64_t)(c.end - c.p))
                c.bad = true;
            else
                c.p += off;
            m->row.cfa_expr = true;
            break;
        case CFA_GNU_args_size:
            /* Only matters when resuming into a landing pad; the CFA does not change. */
            (void)cfi_uleb(&c);
            break;
        default:
            m->unsupported = true;
            break;
        }
    }
    if (c.bad)
        m->unsupported = true;
}

/* Looks `pc` up in .eh_frame_hdr's sorted table (datarel sdata4 pairs, the only form the
 * GNU and LLVM linkers write). Returns the FDE, or NULL. */
static const uint8_t *cfi_find_fde(const uint8_t *hdr, uintptr_t pc)
{
    struct cfi_cursor c = { hdr, hdr + 4 + 8 + 8, false };
    uint64_t version = cfi_fixed(&c, 1);
    uint8_t ptr_enc = (uint8_t)cfi_fixed(&c, 1);
    uint8_t count_enc = (uint8_t)cfi_fixed(&c, 1);
    uint8_t table_enc = (uint8_t)cfi_fixed(&c, 1);
    if (version != 1 || count_enc == PE_OMIT || table_enc != (PE_DATAREL | PE_SDATA4))
        return NULL;
    (void)cfi_pointer(&c, ptr_enc, (uintptr_t)hdr);
    uintptr_t count = cfi_pointer(&c, count_enc, (uintptr_t)hdr);
    if (c.bad || count == 0)
        return NULL;
    const uint8_t *table = c.p;
    size_t lo = 0, hi = count; /* find the last entry whose start is <= pc */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        int32_t start;
        memcpy(&start, table + mid * 8, 4);
        if ((uintptr_t)hdr + (intptr_t)start <= pc)
            lo = mid;
        else
            hi = mid;
    }
    int32_t start, fde;
    memcpy(&start, table + lo * 8, 4);
    memcpy(&fde, table + lo * 8 + 4, 4);
    if ((uintptr_t)hdr + (intptr_t)start > pc)
        return NULL;
    return hdr + fde;
}

static uint64_t cfi_encode(const struct cfi_row *row, const struct cfi_cie *cie)
{
    if (row->ra.how == HOW_UNDEF)
        return HTRI_UNWIND_RULE_OUTERMOST;
    if (cie->signal_frame || row->cfa_expr || row->ra.how != HOW_OFFSET ||
        (row->cfa_reg != REG_RSP && row->cfa_reg != REG_RBP) ||
        (row->rbp.how != HOW_SAME && row->rbp.how != HOW_OFFSET) ||
        (row->rsp.how != HOW_SAME && row->rsp.how != HOW_UNDEF) ||
        cie->ra_reg == REG_RBP || cie->ra_reg == REG_RSP)
        return HTRI_UNWIND_RULE_UNSUPPORTED;
    int64_t rbp_off = row->rbp.how == HOW_OFFSET ? row->rbp.off : 0;
    /* Slots sit at whole words from the CFA, within a kilobyte of it: always so from a
     * compiler, and what lets each offset fit a byte. */
    if (row->cfa_off < INT32_MIN || row->cfa_off > INT32_MAX || row->ra.off % 8 != 0 ||
        row->ra.off < -1024 || row->ra.off > 1016 || rbp_off % 8 != 0 || rbp_off < -1024 ||
        rbp_off > 1016)
        return HTRI_UNWIND_RULE_UNSUPPORTED;
    uint64_t rule = HTRI_UNWIND_RULE_FRAME;
    if (row->cfa_reg == REG_RBP)
        rule |= HTRI_UNWIND_RULE_CFA_RBP;
    if (row->rbp.how == HOW_OFFSET)
        rule |= HTRI_UNWIND_RULE_RBP_SAVED;
    rule |= (uint64_t)(uint8_t)(int8_t)(row->ra.off / 8) << 8;
    rule |= (uint64_t)(uint8_t)(int8_t)(rbp_off / 8) << 16;
    rule |= (uint64_t)(uint32_t)(int32_t)row->cfa_off << 32;
    return rule;
}

uint64_t htri_unwind_cfi_rule(const uint8_t *eh_frame_hdr, uintptr_t pc)
{
    const uint8_t *fde = eh_frame_hdr ? cfi_find_fde(eh_frame_hdr, pc) : NULL;
    if (!fde)
        return HTRI_UNWIND_RULE_UNSUPPORTED;
    struct cfi_cursor c;
    const uint8_t *id_field;
    bool is64;
    if (!cfi_record(fde, &c, &id_field, &is64))
        return HTRI_UNWIND_RULE_UNSUPPORTED;
    uint64_t cie_off = cfi_fixed(&c, is64 ? 8 : 4);
    if (cie_off == 0 || cie_off > (uintptr_t)id_field)
        return HTRI_UNWIND_RULE_UNSUPPORTED;
    struct cfi_cie cie;
    if (!cfi_parse_cie(id_field - cie_off, &cie))
        return HTRI_UNWIND_RULE_UNSUPPORTED;
    uintptr_t pc_begin = cfi_pointer(&c, cie.fde_enc, 0);
    uintptr_t pc_range = cfi_pointer(&c, cie.fde_enc & 0x0f, 0);
    if (cie.has_aug_data) {
        uint64_t aug_len = cfi_uleb(&c);
        if (aug_len > (uint64_t)(c.end - c.p))
            c.bad = true;
        else
            c.p += aug_len;
    }
    if (c.bad || (cie.fde_enc & PE_INDIRECT) || pc < pc_begin || pc - pc_begin >= pc_range)
        return HTRI_UNWIND_RULE_UNSUPPORTED;

    struct cfi_machine m;
    memset(&m, 0, sizeof m);
    m.cie = &cie;
    m.loc = pc_begin;
    m.target = pc;
    m.row.cfa_reg = REG_RSP;
    cfi_run(&m, cie.insns, cie.insns_end);
    m.initial = m.row;
    m.done = false; /* the CIE's program sets the start state; only the FDE's advances */
    m.loc = pc_begin;
    cfi_run(&m, c.p, c.end);
    if (m.unsupported)
        return HTRI_UNWIND_RULE_UNSUPPORTED;
    return cfi_encode(&m.row, &cie);
}
