/*
 * rings.h - one connection's channel as mbxd holds it (PROTOCOL.md,
 * "Version 6", and proto/channel.h): the two page sets in memfds mbxd
 * made, sized and sealed itself, and its mappings of them.
 *
 * The client set is passed read-write (the client writes its control
 * line and its tx ring there); mbxd maps it read-only and treats every
 * byte of it as hostile.  The daemon set is mapped writable by mbxd
 * first and then sealed with F_SEAL_FUTURE_WRITE, so that the client,
 * which gets the same descriptor, can map it only read-only: what mbxd
 * publishes there cannot be changed under it.  Both carry the size seals
 * and F_SEAL_SEAL, so no client can shrink memory mbxd maps (which would
 * make mbxd's reads fault).
 *
 * The doorbell is an eventfd the client writes to wake mbxd when mbxd
 * said it sleeps (PROTOCOL.md, "CHANNEL": why an eventfd and not a byte
 * on the socket).  mbxd watches every doorbell in one epoll set.
 *
 * mbxd never reads back what it keeps in the daemon set: its own
 * positions live in its private memory (struct pass_source, struct
 * channel_tx) and are only published there.
 */
#ifndef MBXD_RINGS_H
#define MBXD_RINGS_H

#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>

#include "channel.h"

/* The seals of both page sets, and the one the daemon set adds. */
#define RINGS_SEALS	(F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)
#define RINGS_SEALS_DAEMON	(RINGS_SEALS | F_SEAL_FUTURE_WRITE)

struct rings {
	int		 client_fd;	/* passed read-write */
	int		 daemon_fd;	/* passed, mappable read-only */
	int		 doorbell;	/* eventfd, non-blocking */
	const uint8_t	*client;	/* CHANNEL_CLIENT_SIZE, read-only */
	uint8_t		*daemon;	/* CHANNEL_DAEMON_SIZE, read-write */
};

/*
 * Makes a channel's two memfds and maps them, and its doorbell: 0, or
 * -errno (nothing is left behind).  The memory costs nothing until touched; the caller
 * charges its size to the connection's uid.
 */
int	 rings_new(struct rings *r);
/* No channel yet: what rings_free() may be called on. */
void	 rings_init(struct rings *r);
/* Unmaps and closes; r may be one rings_new() refused, or freed before. */
void	 rings_free(struct rings *r);
/* Empties the doorbell: true when it had rung. */
bool	 rings_doorbell_drain(struct rings *r);

/* The bytes the two mappings span. */
#define RINGS_BYTES	((uint64_t)CHANNEL_CLIENT_SIZE + CHANNEL_DAEMON_SIZE)
/*
 * What a channel is charged to its uid: its control and grant pages, its
 * page tables and its bookkeeping, not the rings.  A ring's pages hold
 * copies of what is charged already: the tx ring is the client's memory
 * (it faults the pages in: its memory cgroup pays), and the rx ring holds
 * messages in flight, each charged as a message.  Charging the span would
 * cap a default mbxd at a few hundred channels.
 */
#define RINGS_CHARGE	(16u * 1024)

#endif
