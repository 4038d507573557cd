/*
 * log.c - logging to stderr.  Informational lines appear only with -v so
 * that a healthy daemon is quiet after start-up.
 *
 * A line may quote what a client chose (a command name, a mailbox name, a
 * configuration's text): every line is escaped as a whole (proto_escape())
 * so that no client ends a line, starts one with a journal priority
 * ("<0>") or sends escapes to an operator's terminal.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "log.h"
#include "proto.h"

/* Longer lines are cut. */
#define LOG_LINE_MAX	2048

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
	char line[LOG_LINE_MAX], safe[PROTO_ESCAPED_MAX(LOG_LINE_MAX)];
	int n;

	if (level >= LOG_LEVEL_INFO && log_verbose == 0)
		return;
	if (level == LOG_LEVEL_DEBUG && log_verbose < 2)
		return;
	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return;
	proto_escape(safe, sizeof(safe), line,
	    (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	/* The journal reads the priority from a <N> prefix. */
	if (log_journal)
		fprintf(stderr, "<%d>%s\n", (int)level, safe);
	else
		fprintf(stderr, "mbxd: %s\n", safe);
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
