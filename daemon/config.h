/*
 * config.h - mbxd's configuration file (mbxd.json(5)).
 *
 * The file is JSON; duplicate and unknown keys are errors, and every error
 * names the place in the file as file:line:column.  A config is a plain
 * value: loading builds a new one and nothing changes until the caller
 * applies it, so a bad reload leaves the running configuration in force.
 */
#ifndef MBXD_CONFIG_H
#define MBXD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker.h"
#include "proto.h"

#define CONFIG_DEFAULT_PATH	"/etc/mbx/mbxd.json"
#define CONFIG_DEFAULT_SOCKET	"/run/mbx/mbxd.sock"
/* Where durable mailboxes keep their logs (the unit's StateDirectory=). */
#define CONFIG_DEFAULT_STATE_DIR "/var/lib/mbx"
#define CONFIG_DEFAULT_MODE	0666

struct config_mailbox {
	char		name[PROTO_NAME_MAX + 1];
	long		capacity;	/* -1 unbounded */
	uint64_t	max_msg;	/* 0: the daemon's default */
	uid_t		uid;		/* default root */
	gid_t		gid;		/* default root */
	mode_t		mode;		/* default 0600 */
	uint32_t	max_attempts;	/* 0: unlimited */
	uint32_t	ack_timeout_ms;	/* 0: none */
	char		dead_letter[PROTO_NAME_MAX + 1];	/* "": none */
	bool		durable;	/* kept on disk (state_dir) */
};

struct config {
	char		*socket_path;
	mode_t		 socket_mode;
	uid_t		 socket_uid;	/* (uid_t)-1: the daemon's */
	gid_t		 socket_gid;	/* (gid_t)-1: the daemon's */
	struct broker_limits limits;	/* 0 fields: the broker's defaults */
	unsigned	 handshake_ms;
	char		*state_dir;	/* durable mailboxes' logs */
	unsigned	 sync_ms;	/* 0: "always", a commit per pass */
	struct config_mailbox *mailboxes;
	size_t		 nmailboxes;
};

/* Fills c with the built-in defaults.  0 or -ENOMEM. */
int	config_init(struct config *c);
void	config_deinit(struct config *c);

/*
 * Reads path over the defaults already in c.  On failure returns -1 and
 * writes "path:line:column: reason" to err; c is then undefined and must
 * only be deinitialised.
 */
int	config_load(struct config *c, const char *path, char *err,
	    size_t errlen);

/* Parses "4096", "64K", "16M", "1G" (powers of 1024).  0 or -1. */
int	config_parse_size(const char *s, uint64_t *out);

#endif
