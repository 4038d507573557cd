/*
 * inbox.h - messages libmbx holds ahead of the caller's receives.
 *
 * A receive asks the daemon for a batch; the first message answers the
 * call and the rest wait here, still in flight at the daemon (owned by it
 * until acknowledged).  The inbox is a FIFO per handle; receives take the
 * first message that matches their mailbox, so order within a mailbox is
 * the daemon's.  No I/O here.
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

#include "proto.h"

struct held {
	struct held	*next;
	uint64_t	 id;
	char		 mailbox[PROTO_NAME_MAX + 1];
	long		 sender;
	pid_t		 pid;
	uid_t		 uid;
	int		 fd;		/* a zero-copy payload, or -1 */
	bool		 shared;	/* that memfd is recycled */
	size_t		 len;
	size_t		 cap;		/* room in data */
	unsigned char	 data[];	/* the inline payload */
};

/* Spare blocks kept: how many, and the most bytes they may hold. */
#define INBOX_SPARE_MAX		8
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
 * Holds a message: a copy of data, or (fd >= 0) the memfd holding len
 * bytes, which the inbox takes.  False when out of memory.
 */
bool	 inbox_push(struct inbox *in, uint64_t id, const char *mailbox,
	    size_t mailbox_len, long sender, pid_t pid, uid_t uid, int fd,
	    bool shared, const void *data, size_t len);
/* Gives back a taken message (closing its descriptor if it still has
 * it): a spare block, or freed. */
void	 inbox_release(struct inbox *in, struct held *h);
/* The first held message of mailbox (NULL: of any), or NULL. */
struct held *inbox_find(const struct inbox *in, const char *mailbox);
/* Unlinks h (found by inbox_find); then inbox_release() it. */
void	 inbox_take(struct inbox *in, struct held *h);
/* Forgets every message of mailbox: the daemon took them back. */
void	 inbox_drop_mailbox(struct inbox *in, const char *mailbox,
	    size_t len);

#endif
