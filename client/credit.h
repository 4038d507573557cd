/*
 * credit.h - room the daemon granted this handle ahead of its sends.
 *
 * A send that succeeded may come back with a grant: so many more messages,
 * so many bytes, in that mailbox (named by its unique id, so a mailbox
 * destroyed and created again under the same name is not confused with
 * the old one).  While a message fits the grant, mbx_send() posts it
 * without waiting for an answer.  No I/O here.
 */
#ifndef MBX_CREDIT_H
#define MBX_CREDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define CREDIT_SLOTS	8

struct credit {
	char		name[PROTO_NAME_MAX + 1];	/* "" : unused */
	uint64_t	mailbox_id;
	unsigned	count;
	uint64_t	bytes;
	uint64_t	max_msg;	/* the mailbox's largest message */
	bool		zerocopy;	/* memfd posts too */
	bool		shared;		/* shared memfd posts too */
};

struct credits {
	struct credit	slot[CREDIT_SLOTS];
	unsigned	next_victim;
};

void	credits_init(struct credits *cr);
/* The grant in name that covers a message of len bytes, or NULL. */
struct credit *credits_cover(struct credits *cr, const char *name,
	    size_t len);
/*
 * Records the daemon's grant in name (count 0: none); flags are those of
 * the REPLY that carried it (PROTO_REPLY_ZEROCOPY, PROTO_REPLY_SHARED).
 */
void	credits_set(struct credits *cr, const char *name, uint64_t mailbox_id,
	    unsigned count, uint64_t bytes, uint64_t max_msg, uint32_t flags);
/* The mailbox with that id is gone: its grant with it. */
void	credits_drop(struct credits *cr, uint64_t mailbox_id);

#endif
