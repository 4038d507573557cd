/*
 * log.c - logging to stderr.  Informational lines appear only with -v so
 * that a healthy daemon is quiet after start-up.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "log.h"

static int log_verbose;
static bool log_journal;

void
log_set_verbose(int verbose)
{
	log_verbose = verbose;
}

void
log_detect_journal(void)
{
	const char *stream = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	/* systemd sets JOURNAL_STREAM to "dev:ino" of the stream it gave us. */
	log_journal = stream != NULL &&
	    sscanf(stream, "%llu:%llu", &dev, &ino) == 2 &&
	    fstat(2, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

static void __attribute__((format(printf, 2, 0)))
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	if (level >= LOG_LEVEL_INFO && log_verbose == 0)
		return;
	if (level == LOG_LEVEL_DEBUG && log_verbose < 2)
		return;
	/* The journal reads the priority from a <N> prefix. */
	if (log_journal)
		fprintf(stderr, "<%d>", (int)level);
	else
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
