/*
 * mailbox.h - a named port: its message queue, its bound receiver and the
 * standbys waiting to take the binding over.
 *
 * The mailbox is a data structure with invariants; the policy (who may
 * bind, when a parked call wakes) lives in the broker.  Invariants:
 * - queue holds accepted messages in arrival order; messages returned by
 *   a receiver that lost them go back to its head, so the queue may exceed
 *   capacity until it drains;
 * - pending holds messages whose senders wait for room (or, in a
 *   rendezvous mailbox, for a receiver), in arrival order;
 * - staged holds a durable mailbox's messages whose PUT is appended to
 *   its journal and not yet synced: they hold their slot, no receiver
 *   sees them, and the commit queues them in order (or fails them);
 * - receiver is never in standby;
 * - timed holds the in-flight messages that have an acknowledgement
 *   deadline, in deadline order; delayed the messages given back with a
 *   delay (NACK), in the order they were (the broker's delays heap says
 *   when each returns).  Delayed messages hold their slot, as in-flight
 *   ones do.
 * A direct address ("@ID") is a mailbox with an owner: it has no standbys
 * and its owner is always its receiver.
 */
#ifndef MBXD_MAILBOX_H
#define MBXD_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "account.h"
#include "deadline.h"
#include "msg.h"
#include "proto.h"
#include "ptrvec.h"

struct journal;
struct peer;

struct mailbox {
	char		 name[PROTO_NAME_MAX + 1];
	size_t		 name_len;
	long		 capacity;	/* -1 unbounded, 0 rendezvous */
	size_t		 max_msg;
	uint64_t	 id;		/* unique for the daemon's life */
	struct peer	*owner;		/* non-NULL: a direct address */
	uid_t		 uid;		/* owner, group and mode, as a file's */
	gid_t		 gid;
	mode_t		 mode;
	struct charge	 charge;	/* this mailbox, to its owner uid */
	/* Work queues (PROTOCOL.md, "Explicit acknowledgement"). */
	uint32_t	 max_attempts;	/* 0: unlimited */
	uint32_t	 ack_timeout_ms;	/* 0: none */
	char		*dead_letter;	/* a mailbox name, or NULL */
	size_t		 dead_letter_len;

	struct msg_list	 queue;
	size_t		 nqueued;
	struct msg_list	 pending;
	size_t		 npending;
	struct msg_list	 staged;	/* durable: waiting for the commit */
	size_t		 nstaged;
	struct msg_list	 inflight;	/* handed out, in that order */
	size_t		 ninflight;
	struct msg_list	 timed;		/* in flight with a deadline */
	struct msg_list	 delayed;	/* given back for later */
	size_t		 ndelayed;
	struct deadline	 timer;		/* the earliest due of timed */
	size_t		 bytes;		/* payload bytes of all three */
	unsigned	 reserved;	/* slots granted to senders ahead */
	struct ptrvec	 grants;	/* struct grant *, see credit.h */

	struct peer	*receiver;
	struct ptrvec	 standby;	/* struct peer *, FIFO */

	/* Durable (PROTOCOL.md, "Durable mailboxes"). */
	bool		 durable;	/* its messages are kept on disk */
	struct journal	*journal;	/* its log; NULL when failed */
	bool		 failed;	/* the log cannot be trusted: EIO */
	bool		 dirty;		/* in the broker's dirty list */

	uint64_t	 sent;		/* sends that succeeded */
	uint64_t	 received;	/* receives acknowledged */
	uint64_t	 redelivered;	/* given back for another delivery */
	uint64_t	 dead;		/* moved to the dead-letter mailbox */
};

struct mailbox *mailbox_new(const char *name, size_t len, long capacity,
	    size_t max_msg);
/* Frees the mailbox; it must hold no message, and its charge is released. */
void	 mailbox_free(struct mailbox *mb);

/* The peer that receives from mb: its owner for a direct address. */
struct peer *mailbox_receiver(const struct mailbox *mb);

/* True when one more message may enter the queue. */
bool	 mailbox_has_room(const struct mailbox *mb);
/* The next message a receiver gets: the queue's head, else pending's. */
struct msg *mailbox_head(const struct mailbox *mb);

void	 mailbox_add_pending(struct mailbox *mb, struct msg *m);
void	 mailbox_add_queued(struct mailbox *mb, struct msg *m);
/* Moves pending's head (there is one) into staged. */
void	 mailbox_stage_pending(struct mailbox *mb);
void	 mailbox_add_staged(struct mailbox *mb, struct msg *m);
/* Moves staged's head into the queue; returns it, or NULL. */
struct msg *mailbox_commit_staged(struct mailbox *mb);
/* Moves pending's head into the queue; returns it. */
struct msg *mailbox_accept_pending(struct mailbox *mb);
/* Takes m out of the queue or pending list: it is now in flight. */
void	 mailbox_take(struct mailbox *mb, struct msg *m);
/*
 * Puts m (in flight or delayed) back into the queue: at its head, or
 * right after after (a queued message of mb) when not NULL.
 */
void	 mailbox_return(struct mailbox *mb, struct msg *m, struct msg *after);
/* In-flight m must be acknowledged by due (ms). */
void	 mailbox_time(struct mailbox *mb, struct msg *m, uint64_t due);
/* In-flight m waits outside the queue (the broker times it). */
void	 mailbox_delay(struct mailbox *mb, struct msg *m);
/* The earliest due of the timed list, or DEADLINE_NONE. */
uint64_t mailbox_next_due(const struct mailbox *mb);
/* Sets the dead-letter mailbox's name (len 0: none); 0 or -ENOMEM. */
int	 mailbox_set_dead_letter(struct mailbox *mb, const char *name,
	    size_t len);
/* Forgets m wherever it is in this mailbox (withdrawn or acknowledged). */
void	 mailbox_drop(struct mailbox *mb, struct msg *m);

int	 mailbox_standby_add(struct mailbox *mb, struct peer *p);
bool	 mailbox_standby_remove(struct mailbox *mb, struct peer *p);
bool	 mailbox_is_standby(const struct mailbox *mb, const struct peer *p);
/* Removes and returns the first standby, or NULL. */
struct peer *mailbox_standby_pop(struct mailbox *mb);

#endif
