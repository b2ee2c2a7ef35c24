/* One symbolized frame as a valgrind-like line, for the text renderers and the debug
 * allocators' reports. */
#include <stdio.h>
#include <string.h>

#include "symbols/symbols_int.h"

static const char *format_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

size_t htri_frame_format(const htri_frame *f, char *buf, size_t cap)
{
    char empty[1];
    if (!buf || cap == 0) {
        buf = empty;  /* still report the length, like snprintf(NULL, 0, ...) */
        cap = 1;
    }
    int n;
    if (f->function && f->file)
        n = snprintf(buf, cap, "%s (%s:%u)", f->function, format_basename(f->file), f->line);
    else if (f->function && f->module)
        n = snprintf(buf, cap, "%s (in %s+0x%llx)", f->function, f->module,
                     (unsigned long long)f->module_offset);
    else if (f->function)
        n = snprintf(buf, cap, "%s", f->function);
    else if (f->module)
        n = snprintf(buf, cap, "0x%llx (in %s)", (unsigned long long)f->pc, f->module);
    else
        n = snprintf(buf, cap, "0x%llx", (unsigned long long)f->pc);
    return n < 0 ? 0 : (size_t)n;
}
