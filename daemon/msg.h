/*
 * msg.h - one message held by the broker, from the moment a send is
 * accepted until the receiver acknowledges it or it is withdrawn.
 *
 * A message is always in exactly one list: its mailbox's pending list (the
 * sender waits for room or for a rendezvous), its mailbox's queue, its
 * mailbox's delayed list (given back with a delay, NACK), or the
 * in-flight list of the receiver it was handed to (two-phase receive).
 * In flight to a receiver that acknowledges explicitly, in a mailbox with
 * an acknowledgement timeout, it is also in the mailbox's timed list
 * (timer_entry), in deadline order.
 * In flight it is also in its mailbox's in-flight list (mbox_entry) and in
 * its holder's index by id (hnext), and, when its holder acknowledges by
 * a store (peer.h), in the holder's stored list (store_entry), so that
 * an acknowledgement and a receiver losing a mailbox cost what they
 * touch, not what is in flight.
 */
#ifndef MBXD_MSG_H
#define MBXD_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "account.h"
#include "deadline.h"

struct mailbox;
struct peer;
struct wait;

enum msg_state {
	MSG_PENDING,	/* not yet accepted into the queue */
	MSG_QUEUED,
	MSG_INFLIGHT,	/* handed to a receiver, not yet acknowledged */
	MSG_DELAYED,	/* given back, returns to the queue at due */
	MSG_STAGED,	/* durable: its PUT is not yet synced */
};

struct msg {
	TAILQ_ENTRY(msg) entry;
	TAILQ_ENTRY(msg) mbox_entry;	/* mailbox's in flight, while so */
	struct msg	*hnext;		/* holder's index chain, see peer.h */
	TAILQ_ENTRY(msg) timer_entry;	/* mailbox's timed list, if timed */
	TAILQ_ENTRY(msg) store_entry;	/* holder's stored list, if stored */
	uint64_t	 seq;		/* its MSG's number on the holder's
					 * connection, while in flight */
	bool		 stored;	/* PROTO_MSG_STORE: the holder's
					 * consumption word acknowledges it */
	uint64_t	 due;		/* ms: the acknowledgement deadline,
					 * while timed */
	struct deadline	 delay;		/* in the broker's delays heap while
					 * MSG_DELAYED, and only then */
	bool		 timed;
	bool		 explicit_ack;	/* its holder acknowledges itself */
	bool		 dead_logged;	/* "cannot move to its dead letters"
					 * said once */
	uint32_t	 attempts;	/* deliveries in this mailbox */
	uint64_t	 log_seq;	/* in a durable mailbox: its PUT's
					 * number in the journal, else 0 */
	uint32_t	 log_seg;	/* the segment of that PUT */
	char		*origin;	/* a dead letter: where it came from */
	uint32_t	 origin_attempts; /* its deliveries there */
	uint64_t	 id;		/* unique and increasing: arrival order */
	struct mailbox	*mbox;
	struct wait	*sender;	/* the sender's parked call, if it waits */
	struct peer	*holder;	/* the receiver, while in flight */
	enum msg_state	 state;
	struct charge	 charge;	/* len bytes, one message, its fd: to
					 * the sender's uid */
	uint64_t	 sender_id;
	uint32_t	 pid;
	uint32_t	 uid;
	int		 fd;		/* a memfd payload (zero-copy), or -1 */
	bool		 shared;	/* that memfd is recycled, not sealed */
	size_t		 len;		/* payload bytes, inline or in fd */
	unsigned char	 data[];	/* the inline payload */
};

TAILQ_HEAD(msg_list, msg);

/* A message with a copy of data; NULL when out of memory. */
struct msg *msg_new(uint64_t id, const void *data, size_t len);
/* A message whose len bytes are in memfd fd, which it takes. */
struct msg *msg_new_fd(uint64_t id, int fd, size_t len, bool shared);
/*
 * An inline message with a copy of the len payload bytes of memfd fd
 * (marked free again when shared); fd stays the caller's.  NULL with
 * *err -ENOMEM, -EINVAL (shorter than len) or a read's -errno.
 */
struct msg *msg_new_copy_memfd(uint64_t id, int fd, size_t len, bool shared,
	    int *err);
/*
 * Turns a shared (recycled, writable) memfd payload into a sealed copy of
 * its own, for a receiver of another uid, and hands the sender's buffer
 * back (its header's state word to free).  0 or -errno; m is unchanged on
 * failure.
 */
int	 msg_make_private(struct msg *m);
/* Frees m and closes its descriptor. */
void	 msg_free(struct msg *m);

#endif
