/*
 * server.h - one running mbxd: the event loop joining the listener, the
 * clients, the broker and its deadline timer.
 */
#ifndef MBX_SERVER_H
#define MBX_SERVER_H

#include <stdint.h>

struct server_config {
	const char	*socket_path;
	uint64_t	 max_memory;
};

/* Serves until SIGTERM or SIGINT; returns the process exit status. */
int	server_run(const struct server_config *cfg);

#endif
