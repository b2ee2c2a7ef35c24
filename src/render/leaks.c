/* memcheck's leak report, rebuilt from a trace's LEAK_GROUP records: loss records, their
 * order and numbering, suppressions and the LEAK SUMMARY (valgrind memcheck/mc_leakcheck.c,
 * print_results and get_printing_rules; mc_errors.c, pp_LossRecord), for `heaptrail run`
 * and `heaptrail leaks`. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "render/leaks.h"
#include "render/render.h"

#define LEAKS_MAX_PCS 256
#define LEAKS_MAX_INLINE 16

static const char *const g_kind_text[HTRI_LEAK_KINDS] = {
    "definitely lost", "indirectly lost", "possibly lost", "still reachable" };
static const char *const g_kind_word[HTRI_LEAK_KINDS] = {
    "definite", "indirect", "possible", "reachable" };
static const char *const g_heur_name[HTRI_HEUR_COUNT] = {
    "none", "stdstring", "length64", "newarray", "multipleinheritance" };

void htri_leaks_opts_default(htri_leaks_opts *o)
{
    memset(o, 0, sizeof *o);
    o->mode = HTRI_LEAKCHECK_SUMMARY;
    o->show_kinds = HTRI_LEAK_KINDS_DEFAULT;
    o->error_kinds = HTRI_LEAK_KINDS_DEFAULT;
    o->num_callers = 12;
}

int htri_leaks_parse_kinds(const char *s, unsigned *mask)
{
    unsigned m = 0;
    while (s && *s) {
        size_t w = strcspn(s, ",");
        if (w == 3 && !strncmp(s, "all", 3)) m |= 0xfu;
        else if (w == 4 && !strncmp(s, "none", 4)) m |= 0;
        else {
            int found = 0;
            for (int k = 0; k < HTRI_LEAK_KINDS; k++)
                if (strlen(g_kind_word[k]) == w && !strncmp(s, g_kind_word[k], w)) {
                    m |= 1u << k;
                    found = 1;
                }
            if (!found) return -EINVAL;
        }
        s += w;
        if (*s == ',') s++;
    }
    *mask = m;
    return 0;
}

int htri_leaks_parse_mode(const char *s, int *mode)
{
    if (!strcmp(s, "no")) *mode = HTRI_LEAKCHECK_NO;
    else if (!strcmp(s, "summary")) *mode = HTRI_LEAKCHECK_SUMMARY;
    else if (!strcmp(s, "full") || !strcmp(s, "yes")) *mode = HTRI_LEAKCHECK_FULL;
    else return -EINVAL;
    return 0;
}

int htri_leaks_parse_resolution(const char *s, int *frames)
{
    if (!strcmp(s, "low")) *frames = 2;
    else if (!strcmp(s, "med")) *frames = 4;
    else if (!strcmp(s, "high")) *frames = 0;
    else return -EINVAL;
    return 0;
}

/* ---- loss records ---------------------------------------------------------------------- */

typedef struct leaks_record {
    uint8_t kind, family;
    uint32_t node;            /* the stack printed: the group seen first (lowest node id) */
    uint64_t *pcs;            /* compared part of the stack (into the pcs pool) */
    int n_pcs;
    uint64_t bytes, blocks, indirect;
} leaks_record;

/* the allocation function that heads every memcheck stack, per family.
 * The family is all a trace records of the entry point: posix_memalign, aligned_alloc,
 * memalign, valloc and pvalloc all write HTRI_FAM_MEMALIGN, and every operator new
 * (nothrow, align_val_t) HTRI_FAM_NEW / _NEW_ARRAY. memcheck 3.19 heads the first group
 * "memalign" too, but gives posix_memalign a second frame ("memalign", "posix_memalign"),
 * and names each operator new by its own symbol (_ZnwmSt11align_val_t, ...). So the stack
 * shown starts with "memalign" or _Znwm / _Znam, and leaks_supp_match() lets a suppression
 * written for any member of the family match (g_new_heads). Telling them apart needs a
 * family per entry point in the trace (src/trace/format.h, src/agent/hooks.c). */
static const char *leaks_alloc_fn(uint8_t family, int mangled)
{
    switch (family) {
    case HTRI_FAM_CALLOC: return "calloc";
    case HTRI_FAM_REALLOC: return "realloc";
    case HTRI_FAM_MEMALIGN: return "memalign";
    case HTRI_FAM_NEW: return mangled ? "_Znwm" : "operator new(unsigned long)";
    case HTRI_FAM_NEW_ARRAY: return mangled ? "_Znam" : "operator new[](unsigned long)";
    default: return "malloc";
    }
}

/* The other operator new entry points one family stands for: mangled, then demangled. */
static const char *const g_new_heads[2][3][2] = {
    { { "_ZnwmRKSt9nothrow_t", "operator new(unsigned long, std::nothrow_t const&)" },
      { "_ZnwmSt11align_val_t", "operator new(unsigned long, std::align_val_t)" },
      { "_ZnwmSt11align_val_tRKSt9nothrow_t",
        "operator new(unsigned long, std::align_val_t, std::nothrow_t const&)" } },
    { { "_ZnamRKSt9nothrow_t", "operator new[](unsigned long, std::nothrow_t const&)" },
      { "_ZnamSt11align_val_t", "operator new[](unsigned long, std::align_val_t)" },
      { "_ZnamSt11align_val_tRKSt9nothrow_t",
        "operator new[](unsigned long, std::align_val_t, std::nothrow_t const&)" } },
};

/* memcheck's loss-record key: state, then the ExeContext compared at --leak-resolution
 * (frame 0 is the allocation function, i.e. the family). */
static int leaks_key_cmp(const leaks_record *a, const leaks_record *b)
{
    if (a->kind != b->kind) return a->kind < b->kind ? -1 : 1;
    if (a->family != b->family) return a->family < b->family ? -1 : 1;
    int n = a->n_pcs < b->n_pcs ? a->n_pcs : b->n_pcs;
    for (int i = 0; i < n; i++)
        if (a->pcs[i] != b->pcs[i]) return a->pcs[i] < b->pcs[i] ? -1 : 1;
    if (a->n_pcs != b->n_pcs) return a->n_pcs < b->n_pcs ? -1 : 1;
    return 0;
}
static int leaks_key_qsort(const void *a, const void *b)
{
    const leaks_record *ra = a, *rb = b;
    int c = leaks_key_cmp(ra, rb);
    if (c) return c;
    return ra->node < rb->node ? -1 : ra->node > rb->node;
}

/* memcheck's cmp_LossRecords: total size, then state, then block count, then the older
 * ExeContext (for us: the stack recorded first, the lower trie node). */
static int leaks_order_qsort(const void *va, const void *vb)
{
    const leaks_record *a = va, *b = vb;
    uint64_t ta = a->bytes + a->indirect, tb = b->bytes + b->indirect;
    if (ta != tb) return ta < tb ? -1 : 1;
    /* memcheck's Reachedness runs Reachable, Possible, IndirectLeak, Unreached: the reverse
     * of HTRI_LEAK_* (a reachable record comes before a definite one of the same size) */
    if (a->kind != b->kind) return a->kind > b->kind ? -1 : 1;
    if (a->blocks != b->blocks) return a->blocks < b->blocks ? -1 : 1;
    if (a->node != b->node) return a->node < b->node ? -1 : 1;
    return a->family < b->family ? -1 : a->family > b->family;
}

static int leaks_is_below_main(const char *fn)
{
    return !strcmp(fn, "__libc_start_main") || !strcmp(fn, "__libc_start_main_impl") ||
           !strcmp(fn, "__libc_start_call_main") || !strcmp(fn, "generic_start_main");
}

/* The frames of a record, as memcheck's stack: the allocation function, then the program's
 * frames with inlined calls expanded, at most num_callers in all. pcs[i] goes with each. */
typedef struct leaks_frames {
    htri_supp_frame supp[64];
    htri_supp_frame alt[65];  /* supp with another head, for leaks_supp_match() */
    htri_frame frame[64];
    uint64_t pc[64];
    int n;
} leaks_frames;

static void leaks_collect(const htri_leaks_stacks *st, const leaks_record *r, int num_callers,
                          leaks_frames *f)
{
    const char *obj = st->alloc_obj ? st->alloc_obj : "libheaptrail-preload.so";
    int max = num_callers < 64 ? num_callers : 64;
    memset(&f->frame[0], 0, sizeof f->frame[0]);
    f->frame[0].function = leaks_alloc_fn(r->family, 0);
    f->frame[0].module = obj;
    f->supp[0] = (htri_supp_frame){ leaks_alloc_fn(r->family, 0), leaks_alloc_fn(r->family, 1),
                                   obj, NULL, 0 };
    f->pc[0] = 0;
    f->n = 1;
    uint64_t pcs[LEAKS_MAX_PCS];
    int n_pcs = st->pcs ? st->pcs(st->user, r->node, pcs, LEAKS_MAX_PCS) : 0;
    for (int i = 0; i < n_pcs && f->n < max; i++) {
        htri_frame fr[LEAKS_MAX_INLINE];
        int nf = st->resolve ? st->resolve(st->user, pcs[i], fr, LEAKS_MAX_INLINE) : 0;
        if (nf <= 0) {
            memset(&fr[0], 0, sizeof fr[0]);
            fr[0].pc = pcs[i];
            fr[0].module_offset = pcs[i];
            nf = 1;
        }
        int below_main = 0;
        for (int k = 0; k < nf && f->n < max && !below_main; k++) {
            /* valgrind's --show-below-main=no: the stack ends at main; glibc's start-up
             * frames, if main itself is not seen, show as "(below main)" */
            const char *fn = fr[k].function;
            if (fn && (!strcmp(fn, "main") || leaks_is_below_main(fn))) {
                below_main = 1;
                if (strcmp(fn, "main")) {
                    fr[k].function = "(below main)";
                    fr[k].linkage = NULL;
                }
            }
            f->frame[f->n] = fr[k];
            f->pc[f->n] = pcs[i];
            /* fun: lines match the mangled name, as memcheck's do, and the demangled one */
            f->supp[f->n] = (htri_supp_frame){ fr[k].function, fr[k].linkage, fr[k].module,
                                               fr[k].file, fr[k].line };
            f->n++;
        }
        if (below_main) break;
    }
}

/* The suppression matching record `r`, or -1: its stack as shown, else (the trace does not
 * record which member of the family was called) as memcheck shows another member's: an
 * operator new by its nothrow / align_val_t symbol, posix_memalign as "memalign" then
 * "posix_memalign". A suppression may therefore also hide, at the same call site, a sibling
 * of the function it was written for. */
static int leaks_supp_match(htri_supp_set *supp, const leaks_record *r, leaks_frames *f)
{
    int hit = htri_supp_match_leak(supp, r->kind, f->supp, (size_t)f->n);
    if (hit >= 0 || f->n < 1)
        return hit;
    if (r->family == HTRI_FAM_NEW || r->family == HTRI_FAM_NEW_ARRAY) {
        int arr = r->family == HTRI_FAM_NEW_ARRAY;
        memcpy(f->alt, f->supp, (size_t)f->n * sizeof *f->alt);
        for (int k = 0; k < 3 && hit < 0; k++) {
            f->alt[0].fun_mangled = g_new_heads[arr][k][0];
            f->alt[0].fun = g_new_heads[arr][k][1];
            hit = htri_supp_match_leak(supp, r->kind, f->alt, (size_t)f->n);
        }
    } else if (r->family == HTRI_FAM_MEMALIGN) {
        f->alt[0] = f->supp[0];
        f->alt[1] = f->supp[0];
        f->alt[1].fun = f->alt[1].fun_mangled = "posix_memalign";
        memcpy(f->alt + 2, f->supp + 1, (size_t)(f->n - 1) * sizeof *f->alt);
        hit = htri_supp_match_leak(supp, r->kind, f->alt, (size_t)f->n + 1);
    }
    return hit;
}

static void leaks_print_stack(FILE *out, const char *prefix, const leaks_frames *f)
{
    char line[1024];
    for (int i = 0; i < f->n; i++) {
        if (i == 0)
            snprintf(line, sizeof line, "%s (in %s)", f->frame[0].function, f->frame[0].module);
        else
            htri_frame_format(&f->frame[i], line, sizeof line);
        fprintf(out, "%s   %s 0x%llX: %s\n", prefix, i ? "by" : "at", (unsigned long long)f->pc[i], line);
    }
}

/* memcheck's --gen-suppressions block (unprefixed lines): fun: for a named frame, else obj:,
 * else `...` for an address nothing is known of. */
static void leaks_print_suppression(FILE *out, const leaks_record *r, const leaks_frames *f)
{
    fprintf(out, "{\n   <insert_a_suppression_name_here>\n   Memcheck:Leak\n"
                 "   match-leak-kinds: %s\n", g_kind_word[r->kind]);
    for (int i = 0; i < f->n; i++) {
        const htri_supp_frame *s = &f->supp[i];
        if (s->fun_mangled || s->fun) fprintf(out, "   fun:%s\n", s->fun_mangled ? s->fun_mangled : s->fun);
        else if (s->obj) fprintf(out, "   obj:%s\n", s->obj);
        else fprintf(out, "   obj:*\n");
    }
    fprintf(out, "}\n");
}

static void leaks_summary_line(FILE *out, const char *prefix, const char *label, uint64_t bytes,
                               uint64_t blocks)
{
    char b1[32], b2[32];
    fprintf(out, "%s%s: %s bytes in %s blocks\n", prefix, label,
            htri_render_commas(b1, sizeof b1, bytes), htri_render_commas(b2, sizeof b2, blocks));
}

int htri_render_leaks(FILE *out, const htri_leak_group_rec *groups, size_t n_groups,
                      const htri_leaks_stacks *stacks, const htri_leaks_opts *o,
                      htri_leaks_result *res)
{
    htri_leaks_result local;
    if (!res) res = &local;
    memset(res, 0, sizeof *res);
    const char *pre = o->prefix ? o->prefix : "";
    int num_callers = o->num_callers > 0 ? o->num_callers : 12;
    htri_leaks_stacks no_stacks = { 0 };
    if (!stacks) stacks = &no_stacks;

    uint64_t total_blocks = 0;
    for (size_t i = 0; i < n_groups; i++) {
        total_blocks += groups[i].n_blocks;
        if (groups[i].heuristic && groups[i].heuristic < HTRI_HEUR_COUNT) {
            res->heur_bytes[groups[i].heuristic] += groups[i].bytes;
            res->heur_blocks[groups[i].heuristic] += groups[i].n_blocks;
        }
    }
    if (o->mode == HTRI_LEAKCHECK_NO) {
        fprintf(out, "%sFor a detailed leak analysis, rerun with: --leak-check=full\n%s\n", pre, pre);
        return ferror(out) ? -EIO : 0;
    }
    if (total_blocks == 0) {
        fprintf(out, "%sAll heap blocks were freed -- no leaks are possible\n%s\n", pre, pre);
        return ferror(out) ? -EIO : 0;
    }

    /* groups -> loss records: the compared stack prefix is num_callers - 1 program frames
     * (memcheck's ExeContexts stop there), or resolution - 1 at low/med */
    int compare = num_callers - 1;
    if (o->resolution > 0 && o->resolution - 1 < compare) compare = o->resolution - 1;
    if (compare < 0) compare = 0;
    size_t pool_n;
    leaks_record *recs = calloc(n_groups ? n_groups : 1, sizeof *recs);
    uint64_t *pool = NULL;
    if (!recs || __builtin_mul_overflow(n_groups, (size_t)(compare ? compare : 1), &pool_n) ||
        !(pool = calloc(pool_n ? pool_n : 1, sizeof *pool))) {
        free(recs);
        return -ENOMEM;
    }
    size_t n_recs = 0;
    for (size_t i = 0; i < n_groups; i++) {
        const htri_leak_group_rec *g = &groups[i];
        if (g->n_blocks == 0 || g->kind >= HTRI_LEAK_KINDS) continue;
        leaks_record *r = &recs[n_recs++];
        r->kind = g->kind;
        r->family = g->family;
        r->node = g->node;
        r->pcs = pool + i * (size_t)(compare ? compare : 1);
        if (compare && stacks->pcs) {
            uint64_t tmp[LEAKS_MAX_PCS];
            int n = stacks->pcs(stacks->user, g->node, tmp, LEAKS_MAX_PCS);
            r->n_pcs = n < compare ? (n > 0 ? n : 0) : compare;
            memcpy(r->pcs, tmp, (size_t)r->n_pcs * sizeof *tmp);
        }
        r->bytes = g->bytes;
        r->blocks = g->n_blocks;
        r->indirect = g->kind == HTRI_LEAK_DEFINITE ? g->indirect_bytes : 0;
    }
    qsort(recs, n_recs, sizeof *recs, leaks_key_qsort);
    size_t m = 0;
    for (size_t i = 0; i < n_recs; i++) {
        if (m && leaks_key_cmp(&recs[m - 1], &recs[i]) == 0) {
            recs[m - 1].bytes += recs[i].bytes;
            recs[m - 1].blocks += recs[i].blocks;
            recs[m - 1].indirect += recs[i].indirect;
            continue;   /* recs[m-1] keeps the lowest node: sorted by node within a key */
        }
        recs[m++] = recs[i];
    }
    n_recs = m;
    qsort(recs, n_recs, sizeof *recs, leaks_order_qsort);
    res->n_records = n_recs;

    leaks_frames *frames = malloc(sizeof *frames);
    if (!frames) {
        free(recs);
        free(pool);
        return -ENOMEM;
    }
    char b1[32], b2[32], b3[32], b4[32], b5[32], b6[32];
    for (size_t i = 0; i < n_recs; i++) {
        const leaks_record *r = &recs[i];
        /* memcheck's get_printing_rules: only with --leak-check=full is a record printed or
         * counted as an error. But every record goes through the suppressions
         * (MC_(record_leak_error) is called for each, in any mode), so what a suppression
         * matches is counted as suppressed whether or not its kind is shown; it counts as a
         * suppressed error (ERROR SUMMARY's "suppressed: N from N") only if it would have
         * counted as an error (VG_(unique_error) with count_error). */
        int print = o->mode == HTRI_LEAKCHECK_FULL && (o->show_kinds & (1u << r->kind));
        int error = o->mode == HTRI_LEAKCHECK_FULL && (o->error_kinds & (1u << r->kind));
        int suppressed = 0;
        if (print || o->supp) {
            leaks_collect(stacks, r, num_callers, frames);
            if (o->supp && leaks_supp_match(o->supp, r, frames) >= 0)
                suppressed = 1;
        }
        if (suppressed) {
            res->suppressed_bytes += r->bytes;
            res->suppressed_blocks += r->blocks;
            if (error) res->n_suppressed++;
            continue;
        }
        res->bytes[r->kind] += r->bytes;
        res->blocks[r->kind] += r->blocks;
        if (error) res->n_errors++;
        if (!print) continue;
        if (r->indirect)
            fprintf(out, "%s%s (%s direct, %s indirect) bytes in %s blocks are %s in loss record %s of %s\n",
                    pre, htri_render_commas(b1, sizeof b1, r->bytes + r->indirect),
                    htri_render_commas(b2, sizeof b2, r->bytes),
                    htri_render_commas(b3, sizeof b3, r->indirect),
                    htri_render_commas(b4, sizeof b4, r->blocks), g_kind_text[r->kind],
                    htri_render_commas(b5, sizeof b5, i + 1), htri_render_commas(b6, sizeof b6, n_recs));
        else
            fprintf(out, "%s%s bytes in %s blocks are %s in loss record %s of %s\n", pre,
                    htri_render_commas(b1, sizeof b1, r->bytes),
                    htri_render_commas(b4, sizeof b4, r->blocks), g_kind_text[r->kind],
                    htri_render_commas(b5, sizeof b5, i + 1), htri_render_commas(b6, sizeof b6, n_recs));
        leaks_print_stack(out, pre, frames);
        fprintf(out, "%s\n", pre);
        if (o->gen_suppressions) leaks_print_suppression(out, r, frames);
    }
    free(frames);
    free(recs);
    free(pool);

    fprintf(out, "%sLEAK SUMMARY:\n", pre);
    leaks_summary_line(out, pre, "   definitely lost", res->bytes[HTRI_LEAK_DEFINITE], res->blocks[HTRI_LEAK_DEFINITE]);
    leaks_summary_line(out, pre, "   indirectly lost", res->bytes[HTRI_LEAK_INDIRECT], res->blocks[HTRI_LEAK_INDIRECT]);
    leaks_summary_line(out, pre, "     possibly lost", res->bytes[HTRI_LEAK_POSSIBLE], res->blocks[HTRI_LEAK_POSSIBLE]);
    leaks_summary_line(out, pre, "   still reachable", res->bytes[HTRI_LEAK_REACHABLE], res->blocks[HTRI_LEAK_REACHABLE]);
    int any_heur = 0;
    for (int h = 1; h < HTRI_HEUR_COUNT; h++) any_heur |= res->heur_blocks[h] > 0;
    if (any_heur) {
        fprintf(out, "%s                      of which reachable via heuristic:\n", pre);
        for (int h = 1; h < HTRI_HEUR_COUNT; h++)
            if (res->heur_blocks[h]) {
                char label[64];
                snprintf(label, sizeof label, "                        %-19s", g_heur_name[h]);
                leaks_summary_line(out, pre, label, res->heur_bytes[h], res->heur_blocks[h]);
            }
    }
    leaks_summary_line(out, pre, "        suppressed", res->suppressed_bytes, res->suppressed_blocks);
    uint64_t shown = res->blocks[0] + res->blocks[1] + res->blocks[2] + res->blocks[3];
    if (o->mode != HTRI_LEAKCHECK_FULL && shown > 0)
        fprintf(out, "%sRerun with --leak-check=full to see details of leaked memory\n", pre);
    if (o->mode == HTRI_LEAKCHECK_FULL && res->blocks[HTRI_LEAK_REACHABLE] > 0 &&
        !(o->show_kinds & (1u << HTRI_LEAK_REACHABLE)))
        fprintf(out, "%sReachable blocks (those to which a pointer was found) are not shown.\n"
                     "%sTo see them, rerun with: --leak-check=full --show-leak-kinds=all\n", pre, pre);
    fprintf(out, "%s\n", pre);
    return ferror(out) ? -EIO : 0;
}
