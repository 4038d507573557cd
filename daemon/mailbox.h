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
 * - receiver is never in standby.
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
#include "msg.h"
#include "proto.h"
#include "ptrvec.h"

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

	struct msg_list	 queue;
	size_t		 nqueued;
	struct msg_list	 pending;
	size_t		 npending;
	struct msg_list	 inflight;	/* handed out, in that order */
	size_t		 ninflight;
	size_t		 bytes;		/* payload bytes of all three */
	unsigned	 reserved;	/* slots granted to senders ahead */
	struct ptrvec	 grants;	/* struct grant *, see credit.h */

	struct peer	*receiver;
	struct ptrvec	 standby;	/* struct peer *, FIFO */

	uint64_t	 sent;		/* sends that succeeded */
	uint64_t	 received;	/* receives acknowledged */
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
/* Moves pending's head into the queue; returns it. */
struct msg *mailbox_accept_pending(struct mailbox *mb);
/* Takes m out of the queue or pending list: it is now in flight. */
void	 mailbox_take(struct mailbox *mb, struct msg *m);
/* Puts in-flight m back at the head of the queue. */
void	 mailbox_return(struct mailbox *mb, struct msg *m);
/* Forgets m wherever it is in this mailbox (withdrawn or acknowledged). */
void	 mailbox_drop(struct mailbox *mb, struct msg *m);

int	 mailbox_standby_add(struct mailbox *mb, struct peer *p);
bool	 mailbox_standby_remove(struct mailbox *mb, struct peer *p);
bool	 mailbox_is_standby(const struct mailbox *mb, const struct peer *p);
/* Removes and returns the first standby, or NULL. */
struct peer *mailbox_standby_pop(struct mailbox *mb);

#endif
