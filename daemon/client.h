/*
 * client.h - the protocol state of one connection: the version
 * handshake, request decoding, and replies.  A client joins a conn (the
 * bytes) to a peer (the broker's view of it).
 */
#ifndef MBXD_CLIENT_H
#define MBXD_CLIENT_H

#include <sys/queue.h>

#include "broker.h"

struct event_base;
struct client;

/* Every client of one server, so that shutdown can reach them all. */
struct client_set {
	TAILQ_HEAD(, client) list;
	struct event_base *base;
	struct broker	*broker;
	/* Called after each batch of requests (the deadline timer re-arms). */
	void		(*after_batch)(void *ctx);
	void		*ctx;
	/* A connection that has not said HELLO by then is closed. */
	unsigned	 handshake_ms;
	/* Connections refused over a quota, open until told why. */
	unsigned	 nrefused;
};

/* More refused connections than this are closed without a word. */
#define CLIENT_MAX_REFUSED	64

#define CLIENT_DEFAULT_HANDSHAKE_MS	5000

void	 client_set_init(struct client_set *set, struct event_base *base,
	    struct broker *b, void (*after_batch)(void *), void *ctx);
/* Takes ownership of fd, an accepted connection.  0 or -ENOMEM. */
int	 client_new(struct client_set *set, int fd);
/* Answers every parked call (the broker was shut down), then writes. */
void	 client_set_flush(struct client_set *set);
void	 client_set_free_all(struct client_set *set);

#endif
