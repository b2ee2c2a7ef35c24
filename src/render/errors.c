/* Text rendering of misuse records (see errors.h): memcheck's wording where memcheck has
 * the same error, ours (same shape) for redzone damage and writes to freed blocks, which
 * memcheck reports at the faulting write and we can only report where the damage is found. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "trace/format.h"
#include "render/errors.h"
#include "render/render.h"

uint64_t htri_errors_context_key(const htri_error_rec *e)
{
    /* keep in step with guard_context_key() in src/agent/guard.c */
    uint64_t k = htri_hash64(((uint64_t)e->kind << 56) ^ ((uint64_t)e->where_node << 24) ^
                             (e->where_node ? 0 : (uint64_t)e->alloc_node));
    return k ? k : 1;
}

/* Open-addressing set of context keys; *first tells whether this error opened its context. */
typedef struct errors_ctxset { uint64_t *keys; size_t cap, n; } errors_ctxset;

static int errors_ctx_add(errors_ctxset *s, uint64_t key, int *first)
{
    size_t i = key & (s->cap - 1);
    while (s->keys[i] && s->keys[i] != key) i = (i + 1) & (s->cap - 1);
    *first = !s->keys[i];
    if (*first) {
        s->keys[i] = key;
        s->n++;
    }
    return 0;
}

static int errors_ctx_open(errors_ctxset *s, size_t n_errors)
{
    s->cap = 16;
    while (s->cap < 2 * n_errors + 2) s->cap <<= 1;
    s->n = 0;
    s->keys = calloc(s->cap, sizeof *s->keys);
    return s->keys ? 0 : -ENOMEM;
}

long htri_errors_count_contexts(const htri_error_rec *errors, size_t n)
{
    errors_ctxset s;
    int first;
    if (errors_ctx_open(&s, n)) return -ENOMEM;
    for (size_t i = 0; i < n; i++) errors_ctx_add(&s, htri_errors_context_key(&errors[i]), &first);
    free(s.keys);
    return (long)s.n;
}

static const char *errors_free_fn(uint8_t ffam)
{
    switch (ffam) {
    case HTRI_FFAM_FREE: return "free()";
    case HTRI_FFAM_REALLOC: return "realloc()";
    case HTRI_FFAM_DELETE: return "delete";
    case HTRI_FFAM_DELETE_ARRAY: return "delete[]";
    default: return NULL;
    }
}

static const char *errors_alloc_fn(uint8_t fam)
{
    switch (fam) {
    case HTRI_FAM_MALLOC: return "malloc";
    case HTRI_FAM_CALLOC: return "calloc";
    case HTRI_FAM_REALLOC: return "realloc";
    case HTRI_FAM_MEMALIGN: return "memalign";
    case HTRI_FAM_NEW: return "operator new";
    case HTRI_FAM_NEW_ARRAY: return "operator new[]";
    default: return "an allocation";
    }
}

static void errors_stack(FILE *out, const htri_errors_view *v, const char *pfx, uint32_t node)
{
    if (node && v->print_stack) v->print_stack(v->user, out, pfx, node);
}

static void errors_bytes(FILE *out, const char *pfx, const htri_error_rec *e, uint8_t expected)
{
    fprintf(out, "%s Damaged: %llu byte%s at offset %lld", pfx, (unsigned long long)e->length,
            e->length == 1 ? "" : "s", (long long)e->offset);
    if (e->length > 1) fprintf(out, "..%lld", (long long)(e->offset + (int64_t)e->length - 1));
    fprintf(out, ", found");
    for (unsigned i = 0; i < e->n_bytes; i++) fprintf(out, " %02x", e->bytes[i]);
    if (e->n_bytes < e->length) fprintf(out, " ...");
    fprintf(out, " (expected %02x)\n", expected);
}

/* "(found at free())", "(found by htr_check_heap())", "(found at exit)". */
static void errors_found_at(FILE *out, const htri_error_rec *e)
{
    const char *fn = errors_free_fn(e->free_family);
    if (e->kind == HTRI_ERR_WRITE_AFTER_FREE)
        fprintf(out, " (found in quarantine)\n");
    else if (e->where_node && fn)
        fprintf(out, " (found at %s)\n", fn);
    else if (e->where_node)
        fprintf(out, " (found by htr_check_heap())\n");
    else
        fprintf(out, " (found at exit)\n");
}

void htri_render_error(FILE *out, const htri_errors_view *v, const htri_error_rec *e)
{
    const char *pfx = v->prefix ? v->prefix : "";
    unsigned long long addr = (unsigned long long)e->addr, size = (unsigned long long)e->block_size;
    long long off = (long long)e->offset;

    switch (e->kind) {
    case HTRI_ERR_INVALID_FREE:
    case HTRI_ERR_MISMATCHED_FREE:
        fprintf(out, "%s%s\n", pfx, e->kind == HTRI_ERR_INVALID_FREE
                ? "Invalid free() / delete / delete[] / realloc()"
                : "Mismatched free() / delete / delete []");
        errors_stack(out, v, pfx, e->where_node);
        switch (e->addr_class) {
        case HTRI_ADDR_FREED:
            fprintf(out, "%s Address 0x%llx is %lld bytes inside a block of size %llu free'd\n", pfx,
                    addr, off, size);
            errors_stack(out, v, pfx, e->free_node);
            fprintf(out, "%s Block was alloc'd at\n", pfx);
            errors_stack(out, v, pfx, e->alloc_node);
            break;
        case HTRI_ADDR_INTERIOR:
            fprintf(out, "%s Address 0x%llx is %lld bytes inside a block of size %llu alloc'd\n", pfx,
                    addr, off, size);
            errors_stack(out, v, pfx, e->alloc_node);
            break;
        case HTRI_ADDR_STACK:
            fprintf(out, "%s Address 0x%llx is on thread %u's stack\n", pfx, addr, e->tid);
            break;
        case HTRI_ADDR_DATA:
            fprintf(out, "%s Address 0x%llx is in the data of a loaded module, not malloc'd\n", pfx, addr);
            break;
        default:
            fprintf(out, "%s Address 0x%llx is not stack'd, malloc'd or (recently) free'd\n", pfx, addr);
            break;
        }
        break;
    case HTRI_ERR_OVERRUN:
    case HTRI_ERR_UNDERRUN:
        fprintf(out, "%sInvalid write %s a block of size %llu", pfx,
                e->kind == HTRI_ERR_OVERRUN ? "after the end of" : "before the start of", size);
        errors_found_at(out, e);
        errors_stack(out, v, pfx, e->where_node);
        if (e->kind == HTRI_ERR_OVERRUN)
            fprintf(out, "%s Address 0x%llx is %lld bytes after a block of size %llu alloc'd\n", pfx,
                    addr, off - (long long)size, size);
        else
            fprintf(out, "%s Address 0x%llx is %lld bytes before a block of size %llu alloc'd\n", pfx,
                    addr, -off, size);
        errors_stack(out, v, pfx, e->alloc_node);
        errors_bytes(out, pfx, e, 0xFB);
        break;
    case HTRI_ERR_WRITE_AFTER_FREE:
        fprintf(out, "%sInvalid write to a freed block of size %llu", pfx, size);
        errors_found_at(out, e);
        errors_stack(out, v, pfx, e->where_node);
        if (off >= 0 && (unsigned long long)off < size)
            fprintf(out, "%s Address 0x%llx is %lld bytes inside a block of size %llu free'd\n", pfx,
                    addr, off, size);
        else if (off >= 0)
            fprintf(out, "%s Address 0x%llx is %lld bytes after a block of size %llu free'd\n", pfx,
                    addr, off - (long long)size, size);
        else
            fprintf(out, "%s Address 0x%llx is %lld bytes before a block of size %llu free'd\n", pfx,
                    addr, -off, size);
        errors_stack(out, v, pfx, e->free_node);
        fprintf(out, "%s Block was alloc'd at\n", pfx);
        errors_stack(out, v, pfx, e->alloc_node);
        errors_bytes(out, pfx, e, off >= 0 && (unsigned long long)off < size ? 0xDD : 0xFB);
        break;
    default:
        fprintf(out, "%sUnknown error kind %u at 0x%llx\n", pfx, e->kind, addr);
        break;
    }
    fprintf(out, "%s\n", pfx);
}

static const char *errors_fault_why(uint8_t reason)
{
    switch (reason) {
    case HTRI_FAULT_AFTER: return "--fail-after";
    case HTRI_FAULT_EVERY: return "--fail-every";
    case HTRI_FAULT_RATE: return "--fail-rate";
    default: return "fault injection";
    }
}

long htri_render_errors_body(FILE *out, const htri_errors_view *v)
{
    const char *pfx = v->prefix ? v->prefix : "";
    errors_ctxset s;
    if (errors_ctx_open(&s, v->n_errors)) return -ENOMEM;

    for (size_t i = 0; i < v->n_faults; i++) {
        const htri_fault_rec *f = &v->faults[i];
        fprintf(out, "%sInjected failure of %s(%llu) (%s)\n", pfx, errors_alloc_fn(f->family),
                (unsigned long long)f->size, errors_fault_why(f->reason));
        errors_stack(out, v, pfx, f->node);
        fprintf(out, "%s\n", pfx);
    }
    for (size_t i = 0; i < v->n_limits; i++) {
        const htri_limit_rec *l = &v->limits[i];
        fprintf(out, "%sMemory limit: %s(%llu) refused, %llu bytes live, limit %llu bytes\n", pfx,
                errors_alloc_fn(l->family), (unsigned long long)l->size,
                (unsigned long long)l->live_bytes, (unsigned long long)l->limit_bytes);
        errors_stack(out, v, pfx, l->node);
        if (l->n_holders) fprintf(out, "%s Top holders at that moment:\n", pfx);
        for (uint32_t h = 0; h < l->n_holders && h < HTRI_LIMIT_MAX_HOLDERS; h++) {
            fprintf(out, "%s %u: %llu bytes in %llu blocks allocated at\n", pfx, h + 1,
                    (unsigned long long)l->holders[h].bytes, (unsigned long long)l->holders[h].blocks);
            errors_stack(out, v, pfx, l->holders[h].node);
        }
        fprintf(out, "%s\n", pfx);
    }
    for (size_t i = 0; i < v->n_errors; i++) {
        int first;
        errors_ctx_add(&s, htri_errors_context_key(&v->errors[i]), &first);
        if (first) htri_render_error(out, v, &v->errors[i]);
    }
    free(s.keys);
    return (long)s.n;
}

long htri_render_errors(FILE *out, const htri_errors_view *v)
{
    long n_contexts = htri_render_errors_body(out, v);
    if (n_contexts < 0) return n_contexts;
    fprintf(out, "%sERROR SUMMARY: %zu errors from %ld contexts (suppressed: 0 from 0)\n",
            v->prefix ? v->prefix : "", v->n_errors, n_contexts);
    return (long)v->n_errors;
}

void htri_render_stack_pcs(FILE *out, const char *prefix, htri_symtab *st, const uint64_t *pcs,
                           size_t n)
{
    htri_frame frames[16];
    char line[1024];
    int lines = 0;
    for (size_t i = 0; i < n; i++) {
        int nf = st ? htri_symtab_resolve_pc(st, pcs[i], 1, frames, 16) : 0;
        if (nf <= 0) {
            fprintf(out, "%s   %s 0x%llX: ???\n", prefix, lines++ ? "by" : "at", (unsigned long long)pcs[i]);
            continue;
        }
        for (int f = 0; f < nf; f++) {
            htri_frame_format(&frames[f], line, sizeof line);
            fprintf(out, "%s   %s 0x%llX: %s\n", prefix, lines++ ? "by" : "at", (unsigned long long)pcs[i], line);
        }
    }
}

void htri_errors_print_syms_stack(void *user, FILE *out, const char *prefix, uint32_t node)
{
    htri_frame frames[HTRI_RENDER_MAX_FRAMES];
    char line[1024];
    int n = htri_render_stack((htri_render_syms *)user, node, frames, HTRI_RENDER_MAX_FRAMES);
    for (int i = 0; i < n; i++) {
        htri_frame_format(&frames[i], line, sizeof line);
        fprintf(out, "%s   %s 0x%llX: %s\n", prefix, i ? "by" : "at", (unsigned long long)frames[i].pc, line);
    }
}
