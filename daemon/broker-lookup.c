/*
 * broker-lookup.c - lookups and permissions (see broker-lookup.h): the
 * bottom layer of the broker, calling nothing of the broker's but the
 * table, the mailboxes and the peers.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "broker-lookup.h"
#include "mailbox.h"
#include "proto.h"

uint64_t
broker_now(const struct broker *b)
{
	return b->clock();
}

bool
broker_is_admin(const struct broker *b, const struct peer *p)
{
	if (p == NULL || p->uid == 0)
		return true;
	for (size_t i = 0; i < b->limits.nadmin_gids; i++)
		if (peer_in_group(p, b->limits.admin_gids[i]))
			return true;
	return false;
}

/*
 * May p do what bit (S_IWOTH: send, S_IROTH: bind and receive) asks of
 * mb?  The owner's, the group's or the others' bits apply, as for a file.
 */
bool
broker_may(const struct broker *b, const struct peer *p,
    const struct mailbox *mb, mode_t bit)
{
	if (mb->owner != NULL)
		return bit == S_IWOTH || mb->owner == p;
	/*
	 * Root reads and writes anything, as with files; an admin group
	 * manages mailboxes (destroy, chmod, rebind...) but reads and writes
	 * only what the bits allow it.
	 */
	if (p->uid == 0)
		return true;
	if (p->uid == mb->uid)
		return (mb->mode & (bit << 6)) != 0;
	if (peer_in_group(p, mb->gid))
		return (mb->mode & (bit << 3)) != 0;
	return (mb->mode & bit) != 0;
}

bool
broker_owns(const struct broker *b, const struct peer *p,
    const struct mailbox *mb)
{
	return broker_is_admin(b, p) || p->uid == mb->uid;
}

/*
 * A recycled buffer stays writable by its sender: it may go only where
 * no other uid is meant to receive, a named mailbox of the sender's uid
 * that gives neither group nor others the read bit, or the direct address
 * of a connection of the sender's uid.  Judged on owner and mode alone,
 * whoever the sender (uid 0 too) and whoever binds: an administrator may
 * bind anything, so the receiver of the moment proves nothing.
 */
bool
broker_shared_ok(const struct peer *p, const struct mailbox *mb)
{
	return mb->uid == p->uid && (mb->owner != NULL ||
	    (mb->mode & 044) == 0);
}

struct mailbox *
broker_lookup(struct broker *b, const char *name, size_t len)
{
	return table_get(&b->mailboxes, name, len);
}

int
broker_lookup_named(struct broker *b, const char *name, size_t len,
    struct mailbox **out)
{
	if (!proto_name_valid(name, len))
		return -EINVAL;
	*out = broker_lookup(b, name, len);
	return *out != NULL ? 0 : -ENOENT;
}

int
broker_lookup_owned(struct broker *b, const struct peer *p,
    const char *name, size_t len, struct mailbox **out)
{
	int err = broker_lookup_named(b, name, len, out);

	if (err == 0 && p != NULL && !broker_owns(b, p, *out))
		return -EACCES;
	return err;
}

struct peer *
broker_peer_find(struct broker *b, uint64_t id)
{
	char name[32];
	int len = snprintf(name, sizeof(name), "@%llu", (unsigned long long)id);
	struct mailbox *mb = broker_lookup(b, name, (size_t)len);

	return mb != NULL ? mb->owner : NULL;
}
