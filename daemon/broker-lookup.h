/*
 * broker-lookup.h - the bottom of the broker: finding mailboxes and peers,
 * and who may do what to a mailbox.  Read-only: nothing here changes the
 * broker's state (a lookup moves only the table's memory of its last find),
 * so every layer above may ask (see broker.c's top note
 * for the stack).  broker_is_admin(), broker_peer_find() and broker_now(),
 * used outside the broker too, are declared in broker.h.
 */
#ifndef MBXD_BROKER_LOOKUP_H
#define MBXD_BROKER_LOOKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "broker.h"

struct mailbox;

/* The mailbox of that name or "@ID" direct address, or NULL. */
struct mailbox *broker_lookup(struct broker *b, const char *name,
	    size_t len);
/* A named (not direct) mailbox: -EINVAL, -ENOENT or 0. */
int	 broker_lookup_named(struct broker *b, const char *name,
	    size_t len, struct mailbox **out);
/* A named mailbox p owns or administers: also -EACCES. */
int	 broker_lookup_owned(struct broker *b, const struct peer *p,
	    const char *name, size_t len, struct mailbox **out);
/* May p send (S_IWOTH) to, or bind and receive (S_IROTH) from, mb? */
bool	 broker_may(const struct broker *b, const struct peer *p,
	    const struct mailbox *mb, mode_t bit);
/* Owner-only operations: destroy, purge, chmod, rebind, evict. */
bool	 broker_owns(const struct broker *b, const struct peer *p,
	    const struct mailbox *mb);
/*
 * The shared-buffer rule: p may put a recycled (writable) buffer into mb
 * only if no other uid is meant to receive from it.
 */
bool	 broker_shared_ok(const struct peer *p, const struct mailbox *mb);

#endif
