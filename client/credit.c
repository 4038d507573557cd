/*
 * credit.c - the handle's table of grants (see credit.h).  A handle
 * sends to few mailboxes at a time, so a small table with round-robin
 * replacement is enough; a grant forgotten here is only room unused.
 */
#include <stdio.h>
#include <string.h>

#include "credit.h"

void
credits_init(struct credits *cr)
{
	memset(cr, 0, sizeof(*cr));
}

static struct credit *
credits_find(struct credits *cr, const char *name)
{
	for (unsigned i = 0; i < CREDIT_SLOTS; i++)
		if (cr->slot[i].name[0] != '\0' &&
		    strcmp(cr->slot[i].name, name) == 0)
			return &cr->slot[i];
	return NULL;
}

struct credit *
credits_cover(struct credits *cr, const char *name, size_t len)
{
	struct credit *c = credits_find(cr, name);

	if (c == NULL || c->count == 0 || c->bytes < len || len > c->max_msg)
		return NULL;
	return c;
}

void
credits_set(struct credits *cr, const char *name, uint64_t mailbox_id,
    unsigned count, uint64_t bytes, uint64_t max_msg, uint32_t flags)
{
	struct credit *c = credits_find(cr, name);

	if (c == NULL) {
		if (count == 0)
			return;
		for (unsigned i = 0; i < CREDIT_SLOTS && c == NULL; i++)
			if (cr->slot[i].name[0] == '\0')
				c = &cr->slot[i];
		if (c == NULL) {
			c = &cr->slot[cr->next_victim];
			cr->next_victim = (cr->next_victim + 1) % CREDIT_SLOTS;
		}
		snprintf(c->name, sizeof(c->name), "%s", name);
	}
	c->mailbox_id = mailbox_id;
	c->count = count;
	c->bytes = bytes;
	c->max_msg = max_msg;
	c->zerocopy = (flags & PROTO_REPLY_ZEROCOPY) != 0;
	/* Where the daemon would refuse a shared send, no shared post. */
	c->shared = c->zerocopy && (flags & PROTO_REPLY_SHARED) != 0;
}

void
credits_drop(struct credits *cr, uint64_t mailbox_id)
{
	for (unsigned i = 0; i < CREDIT_SLOTS; i++)
		if (cr->slot[i].mailbox_id == mailbox_id)
			cr->slot[i].name[0] = '\0';
}
