/* Unit test of src/unwind/cfi.c, the .eh_frame reader behind the cached engine: hand-built
 * .eh_frame_hdr, CIEs ("zR", "zPLR", "zRS", version 1 and 3) and FDEs whose call-frame
 * programs use every instruction the reader knows, checked rule by rule at chosen pcs; plus
 * the inputs it must refuse (expressions, signal frames, unknown opcodes, bad tables). */
#include <string.h>
#include "base/common.h"
#include "check.h"
#include "unwind/unwind_int.h"

/* The section image: .eh_frame_hdr at 0, .eh_frame at FX_EH_FRAME. The "code" it describes
 * is never executed or read, only compared: it sits FX_CODE bytes after the image. */
#define FX_EH_FRAME 512
#define FX_CODE     (1u << 20)
#define FX_MAX_FDES 16

static uint8_t g_image[8192] __attribute__((aligned(16)));

static struct {
    size_t at;                    /* next byte of .eh_frame to write */
    size_t fde_at[FX_MAX_FDES];   /* offsets of the FDEs written */
    uintptr_t fde_pc[FX_MAX_FDES];
    int n_fdes;
} g_fx;

static uintptr_t fx_code(uint32_t off) { return (uintptr_t)g_image + FX_CODE + off; }

static void put8(uint8_t v) { g_image[g_fx.at++] = v; }
static void put32(uint32_t v)
{
    memcpy(&g_image[g_fx.at], &v, 4);
    g_fx.at += 4;
}
static void put_uleb(uint64_t v)
{
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        put8(v ? b | 0x80 : b);
    } while (v);
}
static void put_sleb(int64_t v)
{
    for (;;) {
        uint8_t b = v & 0x7f;
        v >>= 7;
        bool done = (v == 0 && !(b & 0x40)) || (v == -1 && (b & 0x40));
        put8(done ? b : b | 0x80);
        if (done)
            return;
    }
}
static void put_pcrel32(uintptr_t target)
{
    put32((uint32_t)(int32_t)(intptr_t)(target - (uintptr_t)&g_image[g_fx.at]));
}
static void put_bytes(const uint8_t *p, size_t n)
{
    memcpy(&g_image[g_fx.at], p, n);
    g_fx.at += n;
}
/* Patches the 4-byte length at `start` to cover everything written since. */
static void end_record(size_t start)
{
    while ((g_fx.at - start) % 4)
        put8(0); /* DW_CFA_nop padding */
    uint32_t len = (uint32_t)(g_fx.at - start - 4);
    memcpy(&g_image[start], &len, 4);
}

/* The x86-64 start state: CFA = rsp + 8, return address at CFA - 8. */
static const uint8_t k_initial[] = { 0x0c, 7, 8, 0x90, 1 };

/* A CIE; returns its offset. `aug` is the augmentation string; for 'P' a personality pointer
 * (indirect pcrel sdata4) is written, 'L' and 'R' get pcrel sdata4. */
static size_t put_cie(const char *aug, int version)
{
    size_t start = g_fx.at;
    put32(0);
    put32(0); /* CIE id */
    put8((uint8_t)version);
    put_bytes((const uint8_t *)aug, strlen(aug) + 1);
    put_uleb(1);  /* code alignment */
    put_sleb(-8); /* data alignment */
    if (version == 1)
        put8(16);
    else
        put_uleb(16);
    if (aug[0] == 'z') {
        size_t len_at = g_fx.at;
        put8(0); /* augmentation length, patched below (always < 128 here) */
        for (const char *c = aug + 1; *c; c++) {
            if (*c == 'P') {
                put8(0x9b);
                put_pcrel32((uintptr_t)&g_fx); /* any address: only skipped */
            } else if (*c == 'L' || *c == 'R') {
                put8(0x1b);
            }
        }
        g_image[len_at] = (uint8_t)(g_fx.at - len_at - 1);
    }
    put_bytes(k_initial, sizeof k_initial);
    end_record(start);
    return start;
}

/* An FDE for [code + pc_off, + range) under the CIE at `cie`, running `insns`. With `lsda`,
 * the augmentation data holds a (pcrel sdata4) LSDA pointer, as a 'zPLR' CIE requires. */
static void put_fde(size_t cie, uint32_t pc_off, uint32_t range, bool lsda, const uint8_t *insns,
                    size_t n_insns)
{
    size_t start = g_fx.at;
    put32(0);
    put32((uint32_t)(g_fx.at - cie)); /* CIE pointer: back from this field */
    g_fx.fde_at[g_fx.n_fdes] = start;
    g_fx.fde_pc[g_fx.n_fdes++] = fx_code(pc_off);
    put_pcrel32(fx_code(pc_off));
    put32(range);
    put_uleb(lsda ? 4 : 0);
    if (lsda)
        put_pcrel32((uintptr_t)&g_fx);
    put_bytes(insns, n_insns);
    end_record(start);
}

/* Writes .eh_frame_hdr with a table over the FDEs (given in address order). */
static void put_hdr(uint8_t table_enc)
{
    size_t end = g_fx.at;
    g_fx.at = 0;
    put8(1);
    put8(0x1b); /* eh_frame_ptr: pcrel sdata4 */
    put8(0x03); /* fde_count: udata4 */
    put8(table_enc);
    put_pcrel32((uintptr_t)&g_image[FX_EH_FRAME]);
    put32((uint32_t)g_fx.n_fdes);
    for (int i = 0; i < g_fx.n_fdes; i++) {
        put32((uint32_t)(int32_t)(intptr_t)(g_fx.fde_pc[i] - (uintptr_t)g_image));
        put32((uint32_t)g_fx.fde_at[i]); /* datarel: from the header, which is at 0 */
    }
    g_fx.at = end;
}

struct want {
    uint32_t pc_off;
    unsigned kind;
    bool cfa_rbp;
    int32_t cfa_off;
    bool rbp_saved;
    int32_t rbp_off;
};

static void check_rule(const struct want *w)
{
    uint64_t rule = htri_unwind_cfi_rule(g_image, fx_code(w->pc_off));
    unsigned kind = htri_unwind_rule_kind(rule);
    bool ok = kind == w->kind;
    if (ok && kind == HTRI_UNWIND_RULE_FRAME) {
        ok = !!(rule & HTRI_UNWIND_RULE_CFA_RBP) == w->cfa_rbp &&
             htri_unwind_rule_cfa_off(rule) == w->cfa_off && htri_unwind_rule_ra_off(rule) == -8 &&
             !!(rule & HTRI_UNWIND_RULE_RBP_SAVED) == w->rbp_saved &&
             (!w->rbp_saved || htri_unwind_rule_rbp_off(rule) == w->rbp_off);
    }
    if (!ok)
        fprintf(stderr,
                "pc +%#x: got kind %u cfa %s%+d rbp %s%+d, want kind %u cfa %s%+d rbp %s%+d\n",
                w->pc_off, kind, rule & HTRI_UNWIND_RULE_CFA_RBP ? "rbp" : "rsp",
                htri_unwind_rule_cfa_off(rule), rule & HTRI_UNWIND_RULE_RBP_SAVED ? "@" : "same",
                htri_unwind_rule_rbp_off(rule), w->kind, w->cfa_rbp ? "rbp" : "rsp", w->cfa_off,
                w->rbp_saved ? "@" : "same", w->rbp_off);
    CHECK(ok);
}

enum { FRAME = HTRI_UNWIND_RULE_FRAME, UNSUP = HTRI_UNWIND_RULE_UNSUPPORTED,
       OUTER = HTRI_UNWIND_RULE_OUTERMOST };

static void build_image(uint8_t table_enc)
{
    memset(g_image, 0, sizeof g_image);
    memset(&g_fx, 0, sizeof g_fx);
    g_fx.at = FX_EH_FRAME;
    size_t cie_zr = put_cie("zR", 1);
    size_t cie_zplr = put_cie("zPLR", 3);
    size_t cie_signal = put_cie("zRS", 1);

    /* 0x000: a frame-pointer prologue, an early return inside remember/restore_state. */
    static const uint8_t prologue[] = {
        0x41,             /* advance_loc 1 (push %rbp) */
        0x0e, 16,         /* def_cfa_offset 16 */
        0x86, 2,          /* offset rbp, 2 * -8 */
        0x43,             /* advance_loc 3 (mov %rsp,%rbp) */
        0x0d, 6,          /* def_cfa_register rbp */
        0x02, 0x20,       /* advance_loc1 0x20 -> +0x24 */
        0x0a,             /* remember_state */
        0x0c, 7, 8,       /* def_cfa rsp + 8 (after leave) */
        0xc6,             /* restore rbp */
        0x41,             /* advance_loc 1 (ret) -> +0x25 */
        0x0b,             /* restore_state */
        0x03, 0x00, 0x01, /* advance_loc2 0x100 -> +0x125 */
        0x08, 6,          /* same_value rbp */
        0x12, 7, 0x7e,    /* def_cfa_sf rsp, -2 * -8 = 16 */
    };
    put_fde(cie_zr, 0x000, 0x200, false, prologue, sizeof prologue);

    /* 0x200: "zPLR" CIE with an LSDA; pushes callee-saved registers, args_size, others. */
    static const uint8_t cxx[] = {
        0x42,             /* advance_loc 2 -> +2 */
        0x0e, 16,         /* def_cfa_offset 16 */
        0x83, 2,          /* offset rbx (ignored) */
        0x2e, 16,         /* GNU_args_size 16 */
        0x00,             /* nop */
        0x04, 0x10, 0, 0, 0, /* advance_loc4 0x10 -> +0x12 */
        0x11, 6, 0x03,    /* offset_extended_sf rbp, 3 * -8 = -24 */
        0x13, 0x7c,       /* def_cfa_offset_sf -4 * -8 = 32 */
        0x10, 3, 1, 0x9c, /* expression rbx: DW_OP_call_frame_cfa (ignored, not tracked) */
        0x09, 12, 13,     /* register r12 in r13 (ignored) */
        0x41,             /* advance_loc 1 -> +0x13 */
        0x0f, 1, 0x9c,    /* def_cfa_expression: unsupported from here */
    };
    put_fde(cie_zplr, 0x200, 0x100, true, cxx, sizeof cxx);

    /* 0x300: outermost (return address undefined), as glibc's _start says. */
    static const uint8_t outer[] = { 0x07, 16 };
    put_fde(cie_zr, 0x300, 0x10, false, outer, sizeof outer);

    /* 0x310: a signal trampoline's CIE ('S'): never expressed by the compact rule. */
    static const uint8_t none[] = { 0x00 };
    put_fde(cie_signal, 0x310, 0x10, false, none, sizeof none);

    /* 0x320: rbp given by an expression, then by val_offset: both unsupported. */
    static const uint8_t rbp_expr[] = { 0x10, 6, 1, 0x9c, 0x41, 0x14, 6, 2 };
    put_fde(cie_zr, 0x320, 0x10, false, rbp_expr, sizeof rbp_expr);

    /* 0x330: an opcode the reader does not know (DW_CFA_lo_user + 1). */
    static const uint8_t unknown[] = { 0x41, 0x1d, 0x00 };
    put_fde(cie_zr, 0x330, 0x10, false, unknown, sizeof unknown);

    /* 0x340: restore_state with nothing remembered; CFA based on r12. */
    static const uint8_t bad_state[] = { 0x41, 0x0b, 0x41, 0x0d, 12 };
    put_fde(cie_zr, 0x340, 0x10, false, bad_state, sizeof bad_state);

    /* 0x350: return address in a register. */
    static const uint8_t ra_reg[] = { 0x09, 16, 0 };
    put_fde(cie_zr, 0x350, 0x10, false, ra_reg, sizeof ra_reg);

    /* 0x360: an expression block running past the end of the FDE. */
    static const uint8_t truncated[] = { 0x10, 3, 100 };
    put_fde(cie_zr, 0x360, 0x10, false, truncated, sizeof truncated);

    put32(0); /* .eh_frame terminator */
    put_hdr(table_enc);
}

static void test_rules(void)
{
    build_image(0x3b);
    static const struct want wants[] = {
        { 0x000, FRAME, false, 8, false, 0 },   /* entry */
        { 0x001, FRAME, false, 16, true, -16 }, /* after push %rbp */
        { 0x003, FRAME, false, 16, true, -16 },
        { 0x004, FRAME, true, 16, true, -16 },  /* CFA = rbp + 16 */
        { 0x023, FRAME, true, 16, true, -16 },
        { 0x024, FRAME, false, 8, false, 0 },   /* remembered state, then leave */
        { 0x025, FRAME, true, 16, true, -16 },  /* restore_state */
        { 0x124, FRAME, true, 16, true, -16 },
        { 0x125, FRAME, false, 16, false, 0 },  /* same_value rbp, def_cfa_sf */
        { 0x1ff, FRAME, false, 16, false, 0 },  /* last byte of the FDE */
        { 0x200, FRAME, false, 8, false, 0 },   /* zPLR CIE parsed */
        { 0x202, FRAME, false, 16, false, 0 },
        { 0x212, FRAME, false, 32, true, -24 },
        { 0x213, UNSUP, false, 0, false, 0 }, /* def_cfa_expression */
        { 0x300, OUTER, false, 0, false, 0 },
        { 0x310, UNSUP, false, 0, false, 0 }, /* signal frame */
        { 0x320, UNSUP, false, 0, false, 0 }, /* rbp by an expression */
        { 0x321, UNSUP, false, 0, false, 0 }, /* rbp by val_offset */
        { 0x330, FRAME, false, 8, false, 0 },   /* before the unknown opcode... */
        { 0x331, UNSUP, false, 0, false, 0 }, /* ...and at it */
        { 0x341, UNSUP, false, 0, false, 0 }, /* restore_state underflow */
        { 0x350, UNSUP, false, 0, false, 0 }, /* RA in a register */
        { 0x360, UNSUP, false, 0, false, 0 }, /* block past the FDE's end */
        { 0x370, UNSUP, false, 0, false, 0 }, /* after the last FDE's range */
    };
    for (size_t i = 0; i < HTRI_ARRAY_LEN(wants); i++)
        check_rule(&wants[i]);
    /* Below the first FDE: no entry in the table. */
    CHECK_EQ_U(htri_unwind_rule_kind(htri_unwind_cfi_rule(g_image, fx_code(0) - 1)),
               HTRI_UNWIND_RULE_UNSUPPORTED);
    CHECK_EQ_U(htri_unwind_rule_kind(htri_unwind_cfi_rule(NULL, fx_code(0))),
               HTRI_UNWIND_RULE_UNSUPPORTED);
}

static void test_bad_headers(void)
{
    /* A table encoding other than datarel sdata4 is not searched. */
    build_image(0x03);
    CHECK_EQ_U(htri_unwind_rule_kind(htri_unwind_cfi_rule(g_image, fx_code(1))),
               HTRI_UNWIND_RULE_UNSUPPORTED);
    /* An unknown .eh_frame_hdr version. */
    build_image(0x3b);
    g_image[0] = 2;
    CHECK_EQ_U(htri_unwind_rule_kind(htri_unwind_cfi_rule(g_image, fx_code(1))),
               HTRI_UNWIND_RULE_UNSUPPORTED);
    /* A CIE of an unknown version, and one with the ancient "eh" augmentation. */
    build_image(0x3b);
    g_image[FX_EH_FRAME + 8] = 2;
    CHECK_EQ_U(htri_unwind_rule_kind(htri_unwind_cfi_rule(g_image, fx_code(1))),
               HTRI_UNWIND_RULE_UNSUPPORTED);
    build_image(0x3b);
    memcpy(&g_image[FX_EH_FRAME + 9], "eh", 2);
    CHECK_EQ_U(htri_unwind_rule_kind(htri_unwind_cfi_rule(g_image, fx_code(1))),
               HTRI_UNWIND_RULE_UNSUPPORTED);
    /* An FDE whose CIE pointer points at another FDE (its id is not 0). */
    build_image(0x3b);
    uint32_t to_self = 4;
    memcpy(&g_image[g_fx.fde_at[1] + 4], &to_self, 4);
    CHECK_EQ_U(htri_unwind_rule_kind(htri_unwind_cfi_rule(g_image, fx_code(0x201))),
               HTRI_UNWIND_RULE_UNSUPPORTED);
    /* Still fine next door. */
    CHECK_EQ_U(htri_unwind_rule_kind(htri_unwind_cfi_rule(g_image, fx_code(0x1))),
               HTRI_UNWIND_RULE_FRAME);
}

int main(void)
{
    test_rules();
    test_bad_headers();
    return CHECK_DONE();
}
