/*
 * grant.c - the handle's table of grants (see grant.h).  A handle
 * sends to few mailboxes at a time, so a small table with round-robin
 * replacement is enough; a grant forgotten here is only room unused.
 */
#include <stdio.h>
#include <string.h>

#include "grant.h"

void
grant_init(struct grants *g)
{
	memset(g, 0, sizeof(*g));
}

static struct grant_slot *
grant_find(struct grants *g, const char *name)
{
	for (unsigned i = 0; i < GRANT_SLOTS; i++)
		if (g->slot[i].name[0] != '\0' &&
		    strcmp(g->slot[i].name, name) == 0)
			return &g->slot[i];
	return NULL;
}

struct grant_slot *
grant_cover(struct grants *g, const char *name, size_t len)
{
	struct grant_slot *c = grant_find(g, name);

	if (c == NULL || c->count == 0 || c->bytes < len || len > c->max_msg)
		return NULL;
	return c;
}

void
grant_set(struct grants *g, const char *name, uint64_t mailbox_id,
    unsigned count, uint64_t bytes, uint64_t max_msg, uint32_t flags)
{
	struct grant_slot *c = grant_find(g, name);

	if (c == NULL) {
		if (count == 0)
			return;
		for (unsigned i = 0; i < GRANT_SLOTS && c == NULL; i++)
			if (g->slot[i].name[0] == '\0')
				c = &g->slot[i];
		if (c == NULL) {
			c = &g->slot[g->next_victim];
			g->next_victim = (g->next_victim + 1) % GRANT_SLOTS;
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
grant_drop(struct grants *g, uint64_t mailbox_id)
{
	for (unsigned i = 0; i < GRANT_SLOTS; i++)
		if (g->slot[i].mailbox_id == mailbox_id)
			g->slot[i].name[0] = '\0';
}
