/* Private: leak suppressions for the CLI — memcheck's `Memcheck:Leak` blocks and
 * LeakSanitizer's `leak:` lines, parsed from files and matched against symbolized stacks. */
#ifndef HTR_ANALYZE_SUPPRESS_H
#define HTR_ANALYZE_SUPPRESS_H
#include <stddef.h>
#include <stdint.h>

typedef struct htri_supp_set htri_supp_set;

/* One frame of a stack to match, innermost first, inlined frames as frames of their own (as
 * valgrind lists them). Any field may be NULL/0 when unknown. */
typedef struct htri_supp_frame {
    const char *fun;          /* demangled function name */
    const char *fun_mangled;  /* the linkage name, when known (memcheck matches fun: on it) */
    const char *obj;          /* path of the object (executable or library) */
    const char *file;         /* source file */
    uint32_t line;
} htri_supp_frame;

/* An empty set. NULL on out-of-memory. */
htri_supp_set *htri_supp_open(void);
void htri_supp_close(htri_supp_set *s);

/* Parses suppressions from text (NUL not needed; len bytes). Both syntaxes may appear in one
 * file: memcheck's blocks
 *     {
 *        name
 *        Memcheck:Leak
 *        match-leak-kinds: definite,possible     (optional; default all)
 *        fun:malloc            obj:/usr/lib/libfoo.so*      src:foo.c:12      ...
 *     }
 * (other tools' and other kinds' blocks are read and ignored) and LeakSanitizer's lines
 * `leak:pattern` (other LSan types are ignored). `#` starts a comment line. `origin` names
 * the text in messages. Returns the number of leak suppressions added, or -EINVAL with a
 * message "origin:line: why" in err (if err_cap > 0), or -ENOMEM. */
long htri_supp_parse(htri_supp_set *s, const char *text, size_t len, const char *origin,
                     char *err, size_t err_cap);
/* Reads a file and parses it. -errno if it cannot be read. */
long htri_supp_load_file(htri_supp_set *s, const char *path, char *err, size_t err_cap);

/* The first suppression matching a loss record of `kind` (HTRI_LEAK_*) allocated at
 * frames[0..n) (frames[0]: the allocation function, as memcheck's stacks start), or -1.
 * Counts the use. memcheck rules: fun:/obj:/src: lines match consecutive frames from the
 * innermost, `...` any number of frames, `*` and `?` wildcards, the suppression may be
 * shorter than the stack. LSan rules: the pattern (`*` wildcards, `^`/`$` anchors, else a
 * substring) matches the function, file or object of any frame. */
int htri_supp_match_leak(htri_supp_set *s, int kind, const htri_supp_frame *frames, size_t n);

/* Name and use count of suppression i (for "used_suppression:" lines); NULL past the end. */
const char *htri_supp_name(const htri_supp_set *s, int i, uint64_t *uses);

/* valgrind's glob: `*` any run of characters, `?` one, `\` quotes the next. 1 if it matches. */
int htri_supp_glob(const char *pattern, const char *s);

#endif
