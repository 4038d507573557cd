/*
 * session.h - the protocol state of one connection in mbxd: the version
 * handshake, request decoding, and replies.  A session joins a conn (the
 * bytes) to a peer (the broker's view of the client at the other end).
 */
#ifndef MBXD_SESSION_H
#define MBXD_SESSION_H

#include <sys/queue.h>

#include "broker.h"
#include "pass.h"

struct event_base;
struct session;

/* Every session of one server, so that shutdown can reach them all. */
struct session_set {
	TAILQ_HEAD(, session) list;
	struct event_base *base;
	struct broker	*broker;
	/* Called after each batch of requests (the deadline timer re-arms). */
	void		(*after_batch)(void *ctx);
	void		*ctx;
	/* A connection that has not said HELLO by then is closed. */
	unsigned	 handshake_ms;
	/* Connections refused over a quota, open until told why. */
	unsigned	 nrefused;
	/*
	 * Channels (PROTOCOL.md, "CHANNEL"): their tx rings are read in
	 * passes; their doorbells are one epoll set, watched by the loop.
	 */
	struct pass	 pass;
	unsigned	 nchannels;
	int		 doorbells;	/* epoll, -1 until the first channel */
	struct event	*doorbell_ev;
	bool		 rang;		/* doorbell_ev fired since the last turn */
	uint64_t	 idle_since;	/* ns: the first pass that found nothing */
	uint8_t		*scratch;	/* one ring record, copied out */
	bool		 quiescing;	/* a planned restart: no receive now */
	/* Connections holding PROTO_MSG_STORE messages (session.c). */
	TAILQ_HEAD(, session) consumers;
	uint64_t	 watch_gen;	/* CHANNEL_DAEMON_WATCH, last stored */
};

/*
 * How long mbxd keeps reading its hot rings after they went quiet before
 * it sleeps: a client that posts again within it costs no wake-up.
 */
#define SESSION_SPIN_NS		(50u * 1000)

/* More refused connections than this are closed without a word. */
#define SESSION_MAX_REFUSED	64

#define SESSION_DEFAULT_HANDSHAKE_MS	5000

void	 session_set_init(struct session_set *set, struct event_base *base,
	    struct broker *b, void (*after_batch)(void *), void *ctx);
/* Takes ownership of fd, an accepted connection.  0 or -ENOMEM. */
int	 session_new(struct session_set *set, int fd);
void	 session_set_free_all(struct session_set *set);
/*
 * After every turn of the event loop: a pass over the hot rings, and
 * once they stayed quiet for SESSION_SPIN_NS, their cooling.
 */
void	 session_set_turn(struct session_set *set);
/*
 * After a change outside any request (a reload) that may have withdrawn
 * grants (broker_withdrawing()): drains their holders' rings and ends
 * them.
 */
void	 session_set_withdraw_end(struct session_set *set);
/*
 * The first half of a planned restart (PROTOCOL.md, "The restart, as
 * built"): each socket is shut for reading and what it holds is done
 * (a receive now is answered ESHUTDOWN), then each channel is settled
 * for good (its words moved, a fence, its ring drained, its store read)
 * and says so (CHANNEL_DAEMON_FINAL).  Nothing a client does after that
 * is taken.  The caller then shuts the broker down and writes the
 * answers (session_set_flush_wait()).
 */
void	 session_set_quiesce(struct session_set *set);
/*
 * Writes every connection's output (once the broker was shut down, the
 * answers to every parked call), waiting up to wait_ms for sockets that
 * take it slowly (0: what they take now); returns the bytes unwritten.
 */
size_t	 session_set_flush_wait(struct session_set *set, int wait_ms);
/* True while rings are hot: the loop must poll, not sleep. */
bool	 session_set_busy(const struct session_set *set);

#endif
