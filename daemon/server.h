/*
 * server.h - one running mbxd: the event loop joining the listener, the
 * clients, the broker, its deadline timer and the systemd protocols.
 */
#ifndef MBXD_SERVER_H
#define MBXD_SERVER_H

#include <stdbool.h>
#include <stdint.h>

struct server_options {
	const char	*config_path;	/* NULL: none */
	bool		 config_explicit; /* -c given: the file must exist */
	const char	*socket_path;	/* overrides the file; NULL: keep */
	uint64_t	 max_memory;	/* overrides the file; 0: keep */
	const char	*state_dir;	/* overrides the file; NULL: keep */
};

/* Serves until SIGTERM or SIGINT; returns the process exit status. */
int	server_run(const struct server_options *opt);
/* Validates the configuration, reports on stdout/stderr; exit status. */
int	server_check_config(const struct server_options *opt);

#endif
