/*
 * account.h - what one uid holds in the broker, charged where it is
 * taken and released in one place, in the spirit of dbus-broker's
 * per-user accounting: connections, mailboxes owned, queued payload bytes
 * and parked calls, credit, and the output its connections have not read.
 *
 * Two sides of a uid: what it sent and the daemon holds for it (bytes,
 * msgs, fds, zc_slots, held against max_bytes_per_uid, max_msgs_per_uid
 * and max_fds_per_uid), and what the daemon has written to it that it has
 * not read (out_bytes, out_fds, held against max_bytes_per_uid and
 * max_fds_per_uid too, counted apart so that a uid whose mailboxes are
 * full can still read them).
 *
 * An account lives while anything is charged to it.  Quotas are checked
 * by the broker against struct broker_limits; the account only counts.
 */
#ifndef MBXD_ACCOUNT_H
#define MBXD_ACCOUNT_H

#include <stdbool.h>
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
	unsigned	zc_slots;	/* memfd posts granted, not yet used */
	uint64_t	out_bytes;	/* output not yet written to its conns */
	unsigned	out_fds;	/* descriptors passed, not yet read */
	uint64_t	out_fds_looked;	/* when they were last asked of the
					 * kernel, in broker_now() ms */
	bool		out_over;	/* out_bytes passed the share: its
					 * conns with output waiting are not
					 * read until under half of it */
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
