/*
 * account.h - what each uid holds in the broker, and the charges that
 * hold it, in the spirit of dbus-broker's UserCharge: connections,
 * mailboxes owned, queued payload bytes, messages and descriptors, parked
 * calls, frames being read, and credit.
 *
 * Every object that makes the daemon hold something for a uid embeds a
 * struct charge: a message (bytes, one message, one descriptor for a
 * memfd), a grant (its bytes, its memfd slots), a parked call (its
 * cost), a peer (its connection, the input it has announced), a mailbox.
 * account_charge() is the one place a quota is checked and a counter
 * raised; account_release() the one place it is lowered, by what the
 * charge records, so a release is exact and a second one does nothing.
 * Nothing else writes the counters of struct account or the total of
 * struct accounts; anyone may read them (the views, credit's sizing).
 *
 * Two sides of a uid: what it sent and the daemon holds for it (bytes,
 * msgs, fds, zc_slots, held against max_bytes_per_uid, max_msgs_per_uid
 * and max_fds_per_uid), and what the daemon has written to it that it has
 * not read (out_bytes, out_fds, held against max_bytes_per_uid and
 * max_fds_per_uid too, counted apart so that a uid whose mailboxes are
 * full can still read them).  The second side is not held by charges:
 * the protocol layer (daemon/session.c) reports each change of its
 * connections' output to account_output(), and account_output_look()
 * paces its recounts of the descriptors; they too are in this file.
 *
 * An account lives while a charge holds anything of it.
 */
#ifndef MBXD_ACCOUNT_H
#define MBXD_ACCOUNT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "ptrvec.h"

struct account {
	uid_t		uid;
	unsigned	refs;		/* charges holding something */
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

/* An amount charged, or to charge: zero fields are not asked for. */
struct charge_amount {
	uint64_t	bytes;
	unsigned	msgs;
	unsigned	fds;
	unsigned	zc_slots;
	unsigned	connections;
	unsigned	mailboxes;
};

/*
 * What one object holds of one account.  All zero (as calloc leaves it):
 * nothing held.  The owner embeds it and releases it before it goes.
 */
struct charge {
	struct account	*acct;		/* NULL: nothing held */
	struct charge_amount held;
};

/* The quotas account_charge() checks (struct broker_limits' copies). */
struct account_quota {
	uint64_t	max_memory;	/* all accounts' bytes together */
	uint64_t	max_bytes;	/* one uid's bytes */
	unsigned	max_msgs;
	unsigned	max_fds;
	unsigned	max_connections;
	unsigned	max_mailboxes;
};

/* The accounts of a broker: few uids, so a short vector. */
struct accounts {
	struct ptrvec	list;
	uint64_t	bytes;		/* every account's bytes */
	struct account_quota quota;
};

/* account_charge() flags. */
/* Per-uid quotas do not apply (administrators, the daemon itself). */
#define ACCOUNT_EXEMPT		0x1
/*
 * No quota applies: the room was reserved or bounded before (a post
 * takes what its grant holds, a grant is sized under half of the caps).
 */
#define ACCOUNT_RESERVED	0x2

void	 accounts_init(struct accounts *a);
void	 accounts_deinit(struct accounts *a);
void	 accounts_set_quota(struct accounts *a, const struct account_quota *q);
struct account *account_find(const struct accounts *a, uid_t uid);
/*
 * The account of uid, made if it has none (NULL: out of memory), for a
 * charge to take at once: one that nothing comes to hold goes with the
 * next account_charge() that fails on it, or with the accounts.
 */
struct account *account_of(struct accounts *a, uid_t uid);

/*
 * Checks amt against the quotas and adds it to ch, charged to acct (or,
 * when ch holds something already, to the account it holds).  In order: the memory
 * cap, then the uid's bytes (both for any charge of bytes or messages:
 * an empty message costs memory too) and messages, -ENOBUFS; its
 * descriptors, -EMFILE; its connections and mailboxes, -EDQUOT.  On an
 * error nothing changed.
 */
int	 account_charge(struct accounts *a, struct charge *ch,
	    struct account *acct, const struct charge_amount *amt,
	    unsigned flags);
/*
 * Gives back amt of what ch holds (no more than it holds), or everything
 * with amt NULL; the account goes when no charge holds anything of it.
 */
void	 account_release(struct accounts *a, struct charge *ch,
	    const struct charge_amount *amt);
/*
 * Moves what ch holds to uid's account, unchecked (an owner changing
 * hands).  -ENOMEM, the charge left where it was, or 0.
 */
int	 account_move(struct accounts *a, struct charge *ch, uid_t uid);

/*
 * The output acct's connections hold unwritten changed by bytes, the
 * descriptors passed to them and not read by fds (either may be
 * negative).  Past share bytes the uid is over (out_over: its connections
 * with output waiting are not read), unless exempt; it stays over until
 * its output is under half of share.  True when this change brought it
 * back under: its connections are to be read again.
 */
bool	 account_output(struct account *acct, int64_t bytes, int fds,
	    uint64_t share, bool exempt);
/*
 * Whether acct's descriptors not yet read, once at max, are to be counted
 * again from the kernel now: true when no count was made in the every ms
 * before now (broker_now() ms), and now is then taken as the last count.
 */
bool	 account_output_look(struct account *acct, unsigned max, uint64_t now,
	    uint64_t every);

#endif
