/*
 * grant.h - room the daemon granted this handle ahead of its sends (the
 * client's side of credit; daemon/credit.c is the daemon's).
 *
 * A send that succeeded may come back with a grant: so many more messages,
 * so many bytes, in that mailbox (named by its unique id, so a mailbox
 * destroyed and created again under the same name is not confused with
 * the old one).  While a message fits the grant, mbx_send() posts it
 * without waiting for an answer.  No I/O here.  (struct grant_slot, not
 * struct grant: that is the daemon's record of the same grant.)
 */
#ifndef MBX_GRANT_H
#define MBX_GRANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define GRANT_SLOTS	8

struct grant_slot {
	char		name[PROTO_NAME_MAX + 1];	/* "" : unused */
	uint64_t	mailbox_id;
	unsigned	count;
	uint64_t	bytes;
	uint64_t	max_msg;	/* the mailbox's largest message */
	bool		zerocopy;	/* memfd posts too */
	bool		shared;		/* shared memfd posts too */
};

struct grants {
	struct grant_slot slot[GRANT_SLOTS];
	unsigned	 next_victim;
};

void	grant_init(struct grants *g);
/* The grant in name that covers a message of len bytes, or NULL. */
struct grant_slot *grant_cover(struct grants *g, const char *name,
	    size_t len);
/*
 * Records the daemon's grant in name (count 0: none); flags are those of
 * the REPLY that carried it (PROTO_REPLY_ZEROCOPY, PROTO_REPLY_SHARED).
 */
void	grant_set(struct grants *g, const char *name, uint64_t mailbox_id,
	    unsigned count, uint64_t bytes, uint64_t max_msg, uint32_t flags);
/* The mailbox with that id is gone: its grant with it. */
void	grant_drop(struct grants *g, uint64_t mailbox_id);

#endif
