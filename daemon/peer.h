/*
 * peer.h - the broker's view of one connected client: its identity, the
 * mailboxes it is bound to or stands by on, its parked calls and the
 * messages it holds in flight.
 *
 * The messages in flight are a list in delivery order (returned in that
 * order) and an index by id, a chained hash table that grows with them
 * and shrinks when they drain: an acknowledgement costs O(1) whatever the
 * number in flight.  Message ids are the daemon's, not the client's, so
 * the index needs no secret key.  Should the index's memory run out, the
 * list is walked instead: slower, never wrong.
 *
 * The broker knows nothing of sockets.  It answers parked calls through
 * the peer's ops, which the protocol layer (session.c) implements.
 */
#ifndef MBXD_PEER_H
#define MBXD_PEER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "account.h"
#include "deadline.h"
#include "msg.h"
#include "proto.h"
#include "ptrvec.h"

struct mailbox;
struct peer;

struct peer_ops {
	/* A parked call ends with err (0: a send succeeded). */
	void	(*reply)(struct peer *p, uint32_t req, int err);
	/*
	 * A receive gets m, now in flight at p until acknowledged; more:
	 * further messages answer the same request.
	 */
	void	(*deliver)(struct peer *p, uint32_t req, const struct msg *m,
		    bool more);
	/* p lost its binding on mb, or mb is gone (PROTO_REVOKE_*). */
	void	(*revoke)(struct peer *p, const struct mailbox *mb,
		    unsigned what);
	/*
	 * The message msg_id of mb, in flight at p, was taken back (its
	 * acknowledgement timeout passed): PROTO_REVOKE_MSG.  Called after
	 * settle.
	 */
	void	(*takeback)(struct peer *p, const struct mailbox *mb,
		    uint64_t msg_id);
	/*
	 * p is about to lose messages it holds to something it did not ask
	 * for (another connection's call, a timeout): apply the
	 * acknowledgements p wrote before now, so that a receive or an
	 * mbx_ack() that returned stays done.  NULL: nothing to read.
	 */
	void	(*settle)(struct peer *p);
	/*
	 * May n more descriptors (memfd messages) be handed to p now, within
	 * its connection's and its uid's bounds on descriptors not yet read?
	 * Optional: without it, always.
	 */
	bool	(*may_take_fds)(struct peer *p, unsigned n);
	/*
	 * p's grant in mb is being withdrawn: tell p (a REVOKE, and the
	 * channel's revocation word, so that a post p publishes from now on
	 * is checked by it before its send returns) and mark p's ring to be
	 * drained before the grant ends (broker_withdraw_end()).  False when
	 * p cannot be told in time (its posts travel without a channel): its
	 * grant then stays.  Optional: without it, never.
	 */
	bool	(*withdraw)(struct peer *p, const struct mailbox *mb);
};

enum wait_kind {
	WAIT_SEND,
	WAIT_COMMIT,	/* an acknowledgement answered once its DEL is synced */
	WAIT_RECV,
};

/* A parked call: a send waiting for room or a receiver, or a receive. */
struct wait {
	enum wait_kind	 kind;
	struct peer	*peer;
	uint32_t	 req;
	struct deadline	 deadline;
	struct charge	 charge;	/* BROKER_WAIT_COST bytes, to its uid */
	TAILQ_ENTRY(wait) entry;	/* peer's sends or recvs */
	/* WAIT_SEND */
	struct msg	*msg;
	bool		 sync;		/* answered at the acknowledgement */
	bool		 nonblock;	/* timeout 0: fail rather than wait */
	/* WAIT_RECV; WAIT_COMMIT: the durable mailbox whose commit */
	struct mailbox	*mbox;		/* NULL: any */
	uint64_t	 cap;
	bool		 explicit_ack;	/* RECV with PROTO_RECV_ACK */
};

TAILQ_HEAD(wait_list, wait);

/* The longest command name the kernel gives (TASK_COMM_LEN - 1). */
#define PEER_COMM_RAW	15

struct peer {
	uint64_t	 id;
	pid_t		 pid;
	uid_t		 uid;
	gid_t		 gid;
	gid_t		*groups;	/* supplementary, from SO_PEERGROUPS */
	size_t		 ngroups;
	struct account	*acct;		/* its uid's: charge.acct, for short */
	struct charge	 charge;	/* this connection, to its uid */
	struct charge	 input;		/* large frames announced, not read */
	struct charge	 channel;	/* its channel's pages (rings.h) */
	size_t		 nwaits;	/* parked calls, sends and receives */
	uint64_t	 out_bytes;	/* output its connection holds unwritten */
	unsigned	 out_fds;	/* descriptors passed to it, not read */
	char		 comm[PROTO_ESCAPED_MAX(PEER_COMM_RAW)];	/* escaped */
	const struct peer_ops *ops;
	void		*ctx;		/* the protocol layer's client */

	struct mailbox	*direct;	/* "@ID" */
	struct ptrvec	 bound;		/* struct mailbox *: receiver of */
	struct ptrvec	 standing;	/* struct mailbox *: standby on */
	struct ptrvec	 grants;	/* struct grant *, see credit.h */
	struct wait_list sends;
	struct wait_list recvs;
	struct msg_list	 inflight;	/* delivered, not acknowledged */
	size_t		 ninflight;
	struct msg	**index;	/* by id: 1 << index_bits chains */
	unsigned	 index_bits;
	/*
	 * Consumption by a store (PROTOCOL.md): the MSG frames handed to
	 * the connection so far (the last one's number), the messages a
	 * store may acknowledge, in that order, and the word's value taken
	 * last (nothing numbered below it is in stored).
	 */
	bool		 consumes_by_store;
	uint64_t	 delivered;
	struct msg_list	 stored;
	uint64_t	 consumed;
	TAILQ_ENTRY(peer) entry;	/* broker's peers */
};

/* Empties p; the caller then fills in its credentials. */
void	 peer_init(struct peer *p);
/* Releases the peer's own memory; the broker has emptied its lists. */
void	 peer_deinit(struct peer *p);
void	 peer_inflight_add(struct peer *p, struct msg *m);
void	 peer_inflight_remove(struct peer *p, struct msg *m);
struct msg *peer_inflight_find(const struct peer *p, uint64_t msg_id);
/*
 * m, in flight at p, is about to go out in p's next MSG frame: it takes
 * that frame's number, and joins p's stored list if p acknowledges by a
 * store and m is neither synchronous nor explicitly acknowledged.
 */
void	 peer_handed(struct peer *p, struct msg *m);
/*
 * The output p's connection holds unwritten changed by bytes, the
 * descriptors passed to it and not read by fds (the protocol layer's
 * report; its uid's side is account_output()).
 */
void	 peer_output(struct peer *p, int64_t bytes, int fds);
/* True when gid is p's primary or one of its supplementary groups. */
bool	 peer_in_group(const struct peer *p, gid_t gid);

#endif
