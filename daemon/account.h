/*
 * account.h - what one uid holds in the broker, charged where it is
 * taken and released in one place, in the spirit of dbus-broker's
 * per-user accounting: connections, mailboxes owned, queued payload bytes
 * and parked calls.
 *
 * An account lives while anything is charged to it.  Quotas are checked
 * by the broker against struct broker_limits; the account only counts.
 */
#ifndef MBX_ACCOUNT_H
#define MBX_ACCOUNT_H

#include <stdint.h>
#include <sys/types.h>

#include "ptrvec.h"

struct account {
	uid_t		uid;
	unsigned	refs;		/* peers, mailboxes and messages */
	unsigned	connections;
	unsigned	mailboxes;
	uint64_t	bytes;
	unsigned	fds;		/* zero-copy messages held */
	unsigned	msgs;		/* messages held */
};

/* The accounts of a broker: few uids, so a short vector. */
struct accounts {
	struct ptrvec	list;
};

void	 accounts_init(struct accounts *a);
void	 accounts_deinit(struct accounts *a);
/* The account of uid with one more reference; NULL when out of memory. */
struct account *account_get(struct accounts *a, uid_t uid);
/* One more reference to an account already held. */
void	 account_hold(struct account *acct);
/* Drops a reference; the account goes when nothing is charged to it. */
void	 account_put(struct accounts *a, struct account *acct);
struct account *account_find(const struct accounts *a, uid_t uid);

#endif
