/*
 * credit.h - room in a mailbox granted ahead to one sender.
 *
 * A round trip per message costs far more than the message (14x a one-way
 * write on our machines, tests/bench/COSTS.md): so when a send succeeds
 * with room to spare, the broker reserves a few more slots and bytes in
 * that mailbox for that sender and tells it so.
 * The sender then posts messages that fit the grant without waiting for
 * an answer: the room is already theirs, so nothing can fail.
 *
 * Invariants: a grant's slots count in its mailbox's reserved slots and
 * its bytes in the broker's and the sender's memory accounts, exactly as
 * if queued, so the caps hold whatever senders do; a grant ends with its
 * peer, its mailbox, or when used up.  The slots of a grant that covers
 * memfd posts count in the sender uid's zc_slots: each may become a
 * descriptor held, so its zero-copy messages held plus those slots stay
 * within half its max_fds_per_uid, and one such grant holds at most
 * CREDIT_ZC_WINDOW slots, however it grew.
 */
#ifndef MBXD_CREDIT_H
#define MBXD_CREDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "account.h"

struct broker;
struct mailbox;
struct peer;

struct grant {
	struct peer	*peer;
	struct mailbox	*mb;
	unsigned	 count;
	uint64_t	 bytes;
	uint64_t	 max_msg;	/* the largest post, as told to the peer */
	bool		 zerocopy;	/* memfd posts allowed too */
	bool		 shared;	/* told: shared memfd posts too */
	bool		 revoked;	/* told PROTO_REVOKE_CREDIT since the
					 * holder last heard of the grant */
	bool		 withdrawn;	/* told it ends; in broker->withdrawn */
	struct charge	 charge;	/* bytes, and count memfd slots while
					 * zerocopy: to the holder's uid */
};

/* Most slots and bytes one grant holds. */
#define CREDIT_WINDOW		64
#define CREDIT_MAX_BYTES	(256u * 1024)
/* The same for a grant earned by a memfd send: few, large messages. */
#define CREDIT_ZC_WINDOW	8
#define CREDIT_ZC_MAX_BYTES	(64u * 1024 * 1024)

/*
 * After a send of len bytes by p to mb succeeded (a memfd one when
 * zerocopy): tops p's grant in mb up when there is room to spare, and
 * returns it through count and bytes (0 and 0: no credit), and through
 * zc whether memfd posts may use it.
 */
void	 credit_refill(struct broker *b, struct peer *p, struct mailbox *mb,
	    size_t len, bool zerocopy, unsigned *count, uint64_t *bytes,
	    bool *zc);
/*
 * Takes one slot and len bytes of p's grant in the mailbox with that id
 * and returns the mailbox; NULL when p holds no such grant, or (for a
 * memfd post, zerocopy) one that does not cover memfds.
 */
struct mailbox *credit_take(struct broker *b, struct peer *p,
	    uint64_t mailbox_id, size_t len, bool zerocopy);
/*
 * The largest post p's grant in the mailbox with that id allows (the
 * max_msg it was told), or 0 when p holds no such grant.
 */
uint64_t credit_max_post(const struct peer *p, uint64_t mailbox_id);
/*
 * Records whether p was told, with its grant in mb, that shared memfd
 * posts may use it (only a grant that covers memfd posts can say so);
 * returns what it was told.
 */
bool	 credit_tell_shared(struct peer *p, struct mailbox *mb, bool shared);
/* True when some grant of p has a slot and at least len bytes left. */
bool	 credit_covers(const struct peer *p, uint64_t len);
/* Ends p's grant in mb, if any: p sends there without credit now. */
void	 credit_release(struct broker *b, struct peer *p, struct mailbox *mb);
/*
 * Withdrawal, for room a grant's holder must give back (a full bounded
 * mailbox, a write permission gone): credit_withdraw() has the holder
 * told (its withdraw op), and false when it cannot be (the grant stays);
 * the caller then drains the holders' rings, so that every post they
 * published before they could know is taken on the grant, and ends
 * every grant so told (credit_release()).  A withdrawn grant is
 * not topped up again.
 */
bool	 credit_withdraw(struct broker *b, struct grant *g);
bool	 credit_withdrawing(const struct broker *b);
/* Ends every grant of p, or every grant in mb. */
void	 credit_release_peer(struct broker *b, struct peer *p);
void	 credit_release_mailbox(struct broker *b, struct mailbox *mb);

#endif
