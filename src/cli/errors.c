/* The CLI's single diagnostics helper: every error and warning of heaptrail goes out here,
 * as one line on stderr, so library code never prints. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/common.h"
#include "cli/cli.h"

static void errors_vline(const char *kind, const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* one line whatever the message holds (file names may contain newlines) */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(stderr, "heaptrail: %s: %s\n", kind, msg);
}

int htri_cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    errors_vline("error", fmt, ap);
    va_end(ap);
    return HTRI_CLI_FAIL;
}

void htri_cli_warning(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    errors_vline("warning", fmt, ap);
    va_end(ap);
}

const char *htri_cli_strerror(int err)
{
    switch (err) {
    case HTRI_E_TRUNCATED: return "truncated: too short to be a trace";
    case HTRI_E_CORRUPT: return "corrupt trace";
    case HTRI_E_FOREIGN: return "not a heaptrail trace";
    case HTRI_E_VERSION: return "a trace version this heaptrail cannot read";
    case HTRI_E_OLD_VERSION: return "written by an older heaptrail (trace format 1; this one reads 2): record it again";
    case HTRI_E_FULL: return "a table is full";
    }
    return strerror(err < 0 ? -err : err);
}
