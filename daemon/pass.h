/*
 * pass.h - mbxd's passes over the tx rings of its channels: the order
 * rule of version 6 (proto/PROTOCOL.md, "The order rule").
 *
 * A pass reads the clock (t0), fences, and then takes from every hot
 * source the records stamped before t0, each stamp clamped into what its
 * writer could honestly have written (channel_stamp_clamp()); it merges
 * what it took by stamp and hands the records to the owner in that order.
 * So if one send returned before another began, whichever processes and
 * rings they came through, the first is handed over first.
 *
 * A source is hot while it may hold records: it joins the hot list when
 * its client wakes mbxd (pass_heat()) and leaves it through pass_cool(),
 * which sets the daemon's sleep flag, fences and looks once more, so that
 * a record published meanwhile is never left unseen: either this look
 * sees it, or its writer sees the flag and wakes mbxd.
 *
 * Nothing here knows mailboxes or sockets: the owner's take callback
 * turns a record into a message, and its wake callback writes the byte
 * that wakes a client waiting for room.
 */
#ifndef MBXD_PASS_H
#define MBXD_PASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "channel.h"

/*
 * At most this many records of one source per pass: a busy ring cannot
 * make a pass unbounded, and the others' records are merged in between.
 */
#define PASS_SOURCE_BATCH	64

struct pass_source {
	const uint8_t	*client;	/* the client's page set (read only) */
	uint8_t		*daemon;	/* the daemon's page set */
	struct channel_rx rx;		/* the tx ring, as read */
	uint64_t	 lo;		/* the clamp's floor */
	void		*owner;		/* the take and wake callbacks' */
	bool		 hot;
	bool		 broken;	/* the writer broke the rules */
	bool		 held;		/* a record waits for the next pass: */
	uint64_t	 held_pos;	/* where it is, */
	uint64_t	 held_stamp;	/* the stamp it was given */
	TAILQ_ENTRY(pass_source) entry;	/* pass's hot list */

	/* Within one pass_run(): */
	uint64_t	 start;		/* the ring's head when it began */
	uint64_t	 next;		/* the end of what was handed over */
	uint64_t	 last;		/* the stamp of that */
	size_t		 taken, handed;	/* items of this source */
	bool		 drained;	/* found empty at this pass's look */
};

/* One record a pass took, with its clamped stamp. */
struct pass_item {
	uint64_t	 stamp;
	uint64_t	 seq;		/* ties: the order taken */
	uint64_t	 pos;		/* where it starts in its ring */
	struct channel_rec rec;		/* its header, as copied */
	struct pass_source *src;
};

/*
 * Hands one record over.  The body is read with pass_item_copy() (the
 * only copy the daemon makes of it).  Returns 0; -EPROTO when the record
 * breaks the protocol (its source is then broken: nothing more is taken
 * from it); or another negative errno (-ENOMEM) when it cannot be taken
 * now: the pass stops there, and this record and every one after it in
 * the merged order stay in their rings for the next pass.
 */
typedef int	(*pass_take_fn)(void *owner, const struct pass_item *it,
		    void *arg);
struct pass;

struct pass_ops {
	pass_take_fn	 take;
	/* The client of owner waits for room, which it now has: wake it. */
	void		(*wake)(void *owner, void *arg);
	/*
	 * Called after t0 and its fence, before any tail is read: heat every
	 * source whose client rang since (pass_heat()), so that a record
	 * published to a cold ring before t0 is seen by this pass.
	 */
	void		(*poll)(struct pass *p, void *arg);
	/* The source of owner broke the rules and is off the hot list. */
	void		(*broken)(void *owner, void *arg);
};

struct pass {
	TAILQ_HEAD(, pass_source) hot;
	struct pass_item *items;
	size_t		 nitems, cap;
	uint64_t	 seq;
	uint64_t	 (*clock)(void);	/* monotonic nanoseconds */
	const struct pass_ops *ops;
	void		*arg;
	/* The smallest stamp the last pass left in a ring for its batch
	 * limit (UINT64_MAX: none). */
	uint64_t	 left;
};

void	 pass_init(struct pass *p, uint64_t (*clock)(void),
	    const struct pass_ops *ops, void *arg);
void	 pass_deinit(struct pass *p);

/*
 * A source over a channel's two page sets; cold (its sleep flag set, so
 * that its writer rings) until pass_heat().
 * head: where its tx ring was consumed up to (0 for a new channel).
 */
void	 pass_source_init(struct pass_source *s, const uint8_t *client,
	    uint8_t *daemon, uint64_t head, void *owner);
/* Takes s off the hot list (before it is freed). */
void	 pass_source_deinit(struct pass *p, struct pass_source *s);

/* s may hold records: put it on the hot list and clear its sleep flag. */
void	 pass_heat(struct pass *p, struct pass_source *s);
/*
 * Takes s off the hot list if it is empty, after telling its client to
 * wake mbxd for the next record; false when a record arrived meanwhile
 * (s stays hot).
 */
bool	 pass_cool(struct pass *p, struct pass_source *s);
/* pass_cool() of every hot source: true when all went cold. */
bool	 pass_cool_all(struct pass *p);
bool	 pass_idle(const struct pass *p);

/*
 * One pass over the hot sources.  Returns how many records were handed
 * over, or -ENOMEM (nothing was consumed; try again later).  Sources that
 * broke the rules are marked broken, taken off the hot list and reported
 * to the broken op, whose owner closes their connections.
 */
long	 pass_run(struct pass *p);

/*
 * Passes until no record stamped before t is left in a ring (t: the
 * clock read after a socket request was read, which must be queued after
 * every post published before it was written), or until a pass hands
 * nothing over.  At most PASS_BEFORE_MAX passes: a writer that keeps its
 * stamps low cannot hold a request back for ever.  What pass_run()
 * returns, summed.
 */
#define PASS_BEFORE_MAX	\
	(4 * CHANNEL_RING_SIZE / CHANNEL_REC_ALIGN / PASS_SOURCE_BATCH)
long	 pass_run_before(struct pass *p, uint64_t t);

/* Copies len bytes from offset off of the item's body into dst. */
bool	 pass_item_copy(const struct pass_item *it, size_t off, void *dst,
	    size_t len);

#endif
