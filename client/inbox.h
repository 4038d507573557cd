/*
 * inbox.h - messages libmbx holds ahead of the caller's receives.
 *
 * A receive asks the daemon for a batch; the first message answers the
 * call and the rest wait here, still in flight at the daemon (owned by it
 * until acknowledged).  The inbox is a FIFO per handle; receives take the
 * first message that matches their mailbox, so order within a mailbox is
 * the daemon's; a receive-any takes the oldest (the lowest message id:
 * the daemon numbers every message it accepts in order).  No I/O here.
 *
 * Receive-any and held messages.  A batch answering a receive-any holds
 * the oldest messages the daemon had for the handle: all that it still
 * holds are younger.  A batch answering a named receive does not: the
 * daemon may hold an older message of another mailbox.  Such a held
 * message is "unsettled" until a later receive-any's answer shows
 * nothing older is left in the daemon (inbox_settle()).
 *
 * Taken messages go back to a few spare blocks that the next ones reuse:
 * a malloc and free per message of 64 KiB would make glibc hand the
 * memory back and forth with the kernel (brk, then page faults), which
 * cost more than the copy itself.
 */
#ifndef MBX_INBOX_H
#define MBX_INBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mbx.h"
#include "proto.h"

struct held {
	struct held	*next;
	struct mbx_meta	 meta;		/* what the caller will be told: its
					 * id, mailbox and len among them */
	int		 fd;		/* a zero-copy payload, or -1 */
	bool		 shared;	/* that memfd is recycled */
	bool		 sync;		/* its sender waits for the ACK */
	bool		 unsettled;	/* the daemon may hold older ones */
	bool		 store;		/* PROTO_MSG_STORE: a store acknowledges
					 * it (its number: seq) */
	bool		 durable;	/* PROTO_MSG_DURABLE */
	uint64_t	 seq;		/* its MSG's number on the connection */
	size_t		 cap;		/* room in data */
	unsigned char	 data[];	/* the inline payload */
};

/*
 * Spare blocks kept: how many, and the most bytes they may hold.  A whole
 * batch's worth (MBX_PREFETCH_COUNT): with 8, a batch of 64 4 KiB
 * messages made 56 fresh allocations, which glibc gave back and took again
 * from the kernel each time (page faults were the receiver's largest cost
 * after the copies, at 263 k msg/s).
 */
#define INBOX_SPARE_MAX		64
#define INBOX_SPARE_BYTES	(1u << 20)

struct inbox {
	struct held	*head;
	struct held	**tail;
	size_t		 count;
	struct held	*spare;		/* free blocks, linked by next */
	size_t		 nspare;
	size_t		 spare_bytes;
};

void	 inbox_init(struct inbox *in);
/* Frees every held message and spare block. */
void	 inbox_clear(struct inbox *in);
/*
 * Holds the message described by meta: a copy of its meta->len payload
 * bytes at data, or (fd >= 0) the memfd holding them, which the inbox
 * takes.  sync and unsettled as in struct held; the caller sets store and
 * seq.  NULL when out of memory.
 */
struct held *inbox_push(struct inbox *in, const struct mbx_meta *meta,
	    const void *data, int fd, bool shared, bool sync, bool unsettled);
/*
 * The number of the oldest held PROTO_MSG_STORE message, or next when
 * none is held: the consumption word may say everything below it.
 */
uint64_t inbox_store_floor(const struct inbox *in, uint64_t next);
/* Drops the held message id, if held (it was taken back). */
void	 inbox_drop_id(struct inbox *in, uint64_t id);
/* Gives back a taken message (closing its descriptor if it still has
 * it): a spare block, or freed. */
void	 inbox_release(struct inbox *in, struct held *h);
/* The first held message of mailbox (NULL: the oldest of any), or NULL. */
struct held *inbox_find(const struct inbox *in, const char *mailbox);
/*
 * Nothing older than message id upto is left in the daemon for a
 * receive-any: the held messages up to it are settled.
 */
void	 inbox_settle(struct inbox *in, uint64_t upto);
/* Unlinks h (found by inbox_find); then inbox_release() it. */
void	 inbox_take(struct inbox *in, struct held *h);
/* Forgets every message of mailbox: the daemon took them back. */
void	 inbox_drop_mailbox(struct inbox *in, const char *mailbox,
	    size_t len);

#endif
