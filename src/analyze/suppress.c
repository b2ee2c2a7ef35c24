/* Leak suppressions: parses memcheck's suppression blocks and LeakSanitizer's `leak:` lines,
 * and matches loss-record stacks against them for render/leaks.c (memcheck's manual,
 * "Suppressing errors" and "Writing suppression files"; LSan's "Suppressions"). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/suppress.h"
#include "trace/leak_record.h"

enum { SUPP_FUN = 1, SUPP_OBJ = 2, SUPP_SRC = 3, SUPP_DOTS = 4 };

typedef struct supp_pat {
    int type;
    char *text;       /* fun/obj/src pattern; src: the file part */
    uint32_t line;    /* src: line number, 0 = any */
} supp_pat;

typedef struct supp_entry {
    char *name;
    int lsan;             /* 1: a LeakSanitizer leak:pattern (pats[0].text) */
    unsigned kinds;       /* 1 << HTRI_LEAK_* */
    supp_pat *pats;
    size_t n_pats;
    uint64_t uses;
} supp_entry;

struct htri_supp_set {
    supp_entry *entries;
    size_t n, cap;
};

htri_supp_set *htri_supp_open(void) { return calloc(1, sizeof(htri_supp_set)); }

static void supp_entry_free(supp_entry *e)
{
    free(e->name);
    for (size_t i = 0; i < e->n_pats; i++) free(e->pats[i].text);
    free(e->pats);
}

void htri_supp_close(htri_supp_set *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) supp_entry_free(&s->entries[i]);
    free(s->entries);
    free(s);
}

static int supp_push(htri_supp_set *s, supp_entry *e)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        supp_entry *n = realloc(s->entries, cap * sizeof *n);
        if (!n) return -ENOMEM;
        s->entries = n;
        s->cap = cap;
    }
    s->entries[s->n++] = *e;
    return 0;
}

static int supp_add_pat(supp_entry *e, int type, const char *text, size_t len, uint32_t line)
{
    supp_pat *n = realloc(e->pats, (e->n_pats + 1) * sizeof *n);
    if (!n) return -ENOMEM;
    e->pats = n;
    char *t = NULL;
    if (text) {
        t = malloc(len + 1);
        if (!t) return -ENOMEM;
        memcpy(t, text, len);
        t[len] = 0;
    }
    e->pats[e->n_pats++] = (supp_pat){ type, t, line };
    return 0;
}

/* ---- matching ------------------------------------------------------------------------ */

int htri_supp_glob(const char *p, const char *s)
{
    /* iterative glob with one backtrack point for the last '*' (linear in practice) */
    const char *star_p = NULL, *star_s = NULL;
    while (*s) {
        if (*p == '*') {
            star_p = ++p;
            star_s = s;
            continue;
        }
        if (*p == '\\' && p[1] && p[1] == *s) {
            p += 2;
            s++;
            continue;
        }
        if (*p && *p != '\\' && (*p == '?' || *p == *s)) {
            p++;
            s++;
            continue;
        }
        if (!star_p) return 0;
        p = star_p;
        s = ++star_s;
    }
    while (*p == '*') p++;
    return *p == 0;
}

static const char *supp_base(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

static int supp_frame_match(const supp_pat *pat, const htri_supp_frame *f)
{
    switch (pat->type) {
    case SUPP_FUN:
        return (f->fun_mangled && htri_supp_glob(pat->text, f->fun_mangled)) ||
               (f->fun && htri_supp_glob(pat->text, f->fun));
    case SUPP_OBJ:
        return f->obj && htri_supp_glob(pat->text, f->obj);
    case SUPP_SRC:
        if (!f->file || (pat->line && pat->line != f->line)) return 0;
        return htri_supp_glob(pat->text, f->file) || htri_supp_glob(pat->text, supp_base(f->file));
    }
    return 0;
}

/* memcheck's frame list: pats[pi..] against frames[fi..]; `...` matches any run of frames;
 * a suppression shorter than the stack matches its innermost part. */
static int supp_stack_match(const supp_pat *pats, size_t n_pats, size_t pi,
                            const htri_supp_frame *frames, size_t n, size_t fi)
{
    while (pi < n_pats) {
        if (pats[pi].type == SUPP_DOTS) {
            if (pi + 1 == n_pats) return 1;
            for (size_t k = fi; k <= n; k++)
                if (supp_stack_match(pats, n_pats, pi + 1, frames, n, k)) return 1;
            return 0;
        }
        if (fi >= n || !supp_frame_match(&pats[pi], &frames[fi])) return 0;
        pi++;
        fi++;
    }
    return 1;
}

/* LeakSanitizer's TemplateMatch: `^`/`$` anchors, `*` wildcards, otherwise a substring. */
static int supp_lsan_match(const char *templ, const char *str)
{
    if (!str || !*str) return 0;
    size_t tl = strlen(templ);
    int anchor_start = templ[0] == '^', anchor_end = tl && templ[tl - 1] == '$';
    char buf[1024];
    size_t n = 0;
    if (!anchor_start) buf[n++] = '*';
    for (size_t i = anchor_start; i < tl - (size_t)anchor_end && n + 3 < sizeof buf; i++) {
        if (templ[i] == '?' || templ[i] == '\\') buf[n++] = '\\';
        buf[n++] = templ[i];
    }
    if (!anchor_end) buf[n++] = '*';
    buf[n] = 0;
    return htri_supp_glob(buf, str);
}

int htri_supp_match_leak(htri_supp_set *s, int kind, const htri_supp_frame *frames, size_t n)
{
    if (!s) return -1;
    for (size_t i = 0; i < s->n; i++) {
        supp_entry *e = &s->entries[i];
        if (!(e->kinds & (1u << kind))) continue;
        int hit = 0;
        if (e->lsan) {
            for (size_t k = 0; k < n && !hit; k++)
                hit = supp_lsan_match(e->pats[0].text, frames[k].fun) ||
                      supp_lsan_match(e->pats[0].text, frames[k].fun_mangled) ||
                      supp_lsan_match(e->pats[0].text, frames[k].file) ||
                      supp_lsan_match(e->pats[0].text, frames[k].obj);
        } else {
            hit = supp_stack_match(e->pats, e->n_pats, 0, frames, n, 0);
        }
        if (hit) {
            e->uses++;
            return (int)i;
        }
    }
    return -1;
}

const char *htri_supp_name(const htri_supp_set *s, int i, uint64_t *uses)
{
    if (!s || i < 0 || (size_t)i >= s->n) return NULL;
    if (uses) *uses = s->entries[i].uses;
    return s->entries[i].name;
}

/* ---- parsing ------------------------------------------------------------------------- */

typedef struct supp_parser {
    const char *p, *end;
    const char *origin;
    int line_no;
    char *err;
    size_t err_cap;
} supp_parser;

/* Next line without leading/trailing blanks; 0 at end of text. */
static int supp_next_line(supp_parser *ps, const char **line, size_t *len)
{
    while (ps->p < ps->end) {
        const char *s = ps->p, *e = memchr(s, '\n', (size_t)(ps->end - s));
        if (!e) e = ps->end;
        ps->p = e < ps->end ? e + 1 : e;
        ps->line_no++;
        while (s < e && (*s == ' ' || *s == '\t' || *s == '\r')) s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
        if (s == e || *s == '#') continue;
        *line = s;
        *len = (size_t)(e - s);
        return 1;
    }
    return 0;
}

static long supp_fail(supp_parser *ps, const char *fmt, ...)
{
    if (ps->err && ps->err_cap) {
        int k = snprintf(ps->err, ps->err_cap, "%s:%d: ", ps->origin, ps->line_no);
        if (k >= 0 && (size_t)k < ps->err_cap) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(ps->err + k, ps->err_cap - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return -EINVAL;
}

static int supp_starts(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

/* "definite,possible" -> mask; -1 on an unknown word. */
static long supp_kinds(const char *s, size_t len)
{
    unsigned mask = 0;
    while (len) {
        while (len && (*s == ' ' || *s == ',')) { s++; len--; }
        size_t w = 0;
        while (w < len && s[w] != ',' && s[w] != ' ') w++;
        if (!w) break;
        if (w == 8 && !memcmp(s, "definite", 8)) mask |= 1u << HTRI_LEAK_DEFINITE;
        else if (w == 8 && !memcmp(s, "indirect", 8)) mask |= 1u << HTRI_LEAK_INDIRECT;
        else if (w == 8 && !memcmp(s, "possible", 8)) mask |= 1u << HTRI_LEAK_POSSIBLE;
        else if (w == 9 && !memcmp(s, "reachable", 9)) mask |= 1u << HTRI_LEAK_REACHABLE;
        else if (w == 3 && !memcmp(s, "all", 3)) mask |= 0xfu;
        else if (w == 4 && !memcmp(s, "none", 4)) mask |= 0;
        else return -1;
        s += w;
        len -= w;
    }
    return (long)mask;
}

static char *supp_strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* After "{": name, tool:kind, [match-leak-kinds:], frames, "}". */
static long supp_parse_block(supp_parser *ps, htri_supp_set *s)
{
    const char *l;
    size_t len;
    supp_entry e;
    memset(&e, 0, sizeof e);
    e.kinds = 0xfu;
    long rc;
    if (!supp_next_line(ps, &l, &len) || *l == '}') return supp_fail(ps, "suppression has no name");
    if (!(e.name = supp_strndup(l, len))) return -ENOMEM;
    if (!supp_next_line(ps, &l, &len) || *l == '}') {
        rc = supp_fail(ps, "suppression '%s' has no tool:kind line", e.name);
        goto fail;
    }
    const char *colon = memchr(l, ':', len);
    if (!colon) {
        rc = supp_fail(ps, "expected tool:kind, found '%.*s'", (int)len, l);
        goto fail;
    }
    /* the tools before the colon, comma-separated; ours is memcheck's */
    int for_memcheck = 0;
    for (const char *t = l; t < colon;) {
        const char *c = memchr(t, ',', (size_t)(colon - t));
        if (!c) c = colon;
        if (c - t == 8 && !memcmp(t, "Memcheck", 8)) for_memcheck = 1;
        t = c + 1;
    }
    size_t klen = len - (size_t)(colon + 1 - l);
    int is_leak = for_memcheck && klen == 4 && !memcmp(colon + 1, "Leak", 4);
    int first = 1;
    for (;;) {
        if (!supp_next_line(ps, &l, &len)) {
            rc = supp_fail(ps, "suppression '%s' is missing its '}'", e.name);
            goto fail;
        }
        if (*l == '}') break;
        if (!is_leak) continue;   /* another tool's or kind's: its lines are not ours */
        if (first && supp_starts(l, len, "match-leak-kinds:")) {
            long k = supp_kinds(l + 17, len - 17);
            if (k < 0) {
                rc = supp_fail(ps, "bad leak kinds in '%.*s'", (int)len, l);
                goto fail;
            }
            e.kinds = (unsigned)k;
            first = 0;
            continue;
        }
        first = 0;
        if (len == 3 && !memcmp(l, "...", 3)) {
            rc = supp_add_pat(&e, SUPP_DOTS, NULL, 0, 0);
        } else if (supp_starts(l, len, "fun:")) {
            rc = supp_add_pat(&e, SUPP_FUN, l + 4, len - 4, 0);
        } else if (supp_starts(l, len, "obj:")) {
            rc = supp_add_pat(&e, SUPP_OBJ, l + 4, len - 4, 0);
        } else if (supp_starts(l, len, "src:")) {
            const char *f = l + 4;
            size_t flen = len - 4;
            uint32_t line = 0;
            const char *c = f + flen;
            while (c > f && c[-1] >= '0' && c[-1] <= '9') c--;
            if (c > f && c < f + flen && c[-1] == ':') {
                for (const char *d = c; d < f + flen; d++) line = line * 10 + (uint32_t)(*d - '0');
                flen = (size_t)(c - 1 - f);
            }
            rc = supp_add_pat(&e, SUPP_SRC, f, flen, line);
        } else {
            rc = supp_fail(ps, "unknown frame line '%.*s' in '%s'", (int)len, l, e.name);
            goto fail;
        }
        if (rc < 0) goto fail;
    }
    if (!is_leak) {
        supp_entry_free(&e);
        return 0;
    }
    if (e.n_pats == 0) {
        rc = supp_fail(ps, "suppression '%s' has no frames", e.name);
        goto fail;
    }
    if ((rc = supp_push(s, &e)) < 0) goto fail;
    return 1;
fail:
    supp_entry_free(&e);
    return rc;
}

long htri_supp_parse(htri_supp_set *s, const char *text, size_t len, const char *origin,
                     char *err, size_t err_cap)
{
    if (!s || (!text && len)) return -EINVAL;
    supp_parser ps = { text, text + len, origin ? origin : "suppressions", 0, err, err_cap };
    const char *l;
    size_t n;
    long added = 0;
    while (supp_next_line(&ps, &l, &n)) {
        if (*l == '{') {
            if (n != 1) return supp_fail(&ps, "text after '{'");
            long rc = supp_parse_block(&ps, s);
            if (rc < 0) return rc;
            added += rc;
            continue;
        }
        const char *colon = memchr(l, ':', n);
        if (!colon) return supp_fail(&ps, "expected '{' or type:pattern, found '%.*s'", (int)n, l);
        size_t tlen = (size_t)(colon - l);
        static const char *const lsan_types[] = { "interceptor_name", "interceptor_via_fun",
            "interceptor_via_lib", "odr_violation", "race", "thread", "mutex", "signal",
            "deadlock", "called_from_lib", "vptr_check", "src", "fun", "type" };
        if (tlen == 4 && !memcmp(l, "leak", 4)) {
            supp_entry e;
            memset(&e, 0, sizeof e);
            e.lsan = 1;
            e.kinds = 0xfu;
            if (!(e.name = supp_strndup(l, n)) ||
                supp_add_pat(&e, SUPP_FUN, colon + 1, n - tlen - 1, 0) < 0 || supp_push(s, &e) < 0) {
                supp_entry_free(&e);
                return -ENOMEM;
            }
            added++;
            continue;
        }
        int known = 0;
        for (size_t k = 0; k < sizeof lsan_types / sizeof lsan_types[0]; k++)
            if (strlen(lsan_types[k]) == tlen && !memcmp(l, lsan_types[k], tlen)) known = 1;
        if (!known) return supp_fail(&ps, "unknown suppression type '%.*s'", (int)tlen, l);
    }
    return added;
}

long htri_supp_load_file(htri_supp_set *s, const char *path, char *err, size_t err_cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        if (err && err_cap) snprintf(err, err_cap, "%s: %s", path, strerror(e));
        return -e;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len < cap) break;
        char *n = realloc(buf, cap * 2);
        if (!n) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = n;
        cap *= 2;
    }
    int read_err = ferror(f);
    fclose(f);
    if (!buf) return -ENOMEM;
    if (read_err) {
        free(buf);
        if (err && err_cap) snprintf(err, err_cap, "%s: read error", path);
        return -EIO;
    }
    long rc = htri_supp_parse(s, buf, len, path, err, err_cap);
    free(buf);
    return rc;
}
