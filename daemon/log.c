/*
 * log.c - logging to stderr.  Informational lines appear only with -v so
 * that a healthy daemon is quiet after start-up.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

static int log_verbose;

void
log_set_verbose(int verbose)
{
	log_verbose = verbose;
}

static void __attribute__((format(printf, 2, 0)))
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	if (level >= LOG_LEVEL_INFO && log_verbose == 0)
		return;
	if (level == LOG_LEVEL_DEBUG && log_verbose < 2)
		return;
	fputs("mbxd: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LEVEL_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}
