/*
 * log.h - one line per event on stderr.
 *
 * The verbosity is a process-wide setting because logging is a property of
 * the process, not of a broker; tests may set it freely.
 */
#ifndef MBXD_LOG_H
#define MBXD_LOG_H

#include <stdnoreturn.h>

enum log_level {
	LOG_LEVEL_ERR = 3,
	LOG_LEVEL_WARN = 4,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
};

void	log_set_verbose(int verbose);
/* Prefixes lines with <priority> when stderr is the systemd journal. */
void	log_detect_journal(void);
void	log_msg(enum log_level level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* For start-up failures and broken invariants only: logs and exits 1. */
noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define log_err(...)	log_msg(LOG_LEVEL_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
