/*
 * pass.c - the passes over the channels' tx rings (pass.h).
 *
 * A pass has three steps.  It looks: t0 from the clock, a fence, every
 * hot source's tail, then hi from the clock, after which no honest record
 * it saw can have been stamped.  It takes: per source, in ring order, the
 * headers of the records whose clamped stamp is before t0, at most
 * PASS_SOURCE_BATCH of them (bodies stay in the ring).  It hands over:
 * the items sorted by (stamp, order taken), up to the cut, which is the
 * smallest stamp a source had to leave behind for its batch limit: every
 * item past the cut waits, so that no record is handed over ahead of one
 * with a smaller stamp still in a ring.  What was handed over is
 * a prefix of each source's items (stamps only grow within a source), so
 * each ring's head moves to the end of that prefix and the rest is read
 * again by the next pass.
 *
 * The clamp's floor moves only with what was handed over: raising a
 * record's stamp to a later record's would move it past records that
 * causally follow it.  A source found empty gets the floor t0 (taken
 * before the look), which honest records published after the look are
 * stamped above or raised to, at most to their publication time.
 */
#include <errno.h>
#include <stdlib.h>

#include "pass.h"

void
pass_init(struct pass *p, uint64_t (*clock)(void), const struct pass_ops *ops,
    void *arg)
{
	TAILQ_INIT(&p->hot);
	p->items = NULL;
	p->nitems = p->cap = 0;
	p->seq = 0;
	p->clock = clock;
	p->ops = ops;
	p->arg = arg;
	p->left = UINT64_MAX;
}

void
pass_deinit(struct pass *p)
{
	struct pass_source *s;

	while ((s = TAILQ_FIRST(&p->hot)) != NULL)
		pass_source_deinit(p, s);
	free(p->items);
	p->items = NULL;
	p->cap = 0;
}

void
pass_source_init(struct pass_source *s, const uint8_t *client,
    uint8_t *daemon, uint64_t head, void *owner)
{
	s->client = client;
	s->daemon = daemon;
	channel_rx_init(&s->rx, client + CHANNEL_CLIENT_RING, head);
	s->lo = 0;
	s->owner = owner;
	s->hot = false;
	s->broken = false;
	s->held = false;
	/* Cold from the start: its first record rings the doorbell. */
	channel_store(daemon, CHANNEL_DAEMON_SLEEP, CHANNEL_WANT_DATA);
}

void
pass_source_deinit(struct pass *p, struct pass_source *s)
{
	if (s->hot) {
		TAILQ_REMOVE(&p->hot, s, entry);
		s->hot = false;
	}
}

void
pass_heat(struct pass *p, struct pass_source *s)
{
	if (s->broken)
		return;
	channel_store(s->daemon, CHANNEL_DAEMON_SLEEP, 0);
	if (!s->hot) {
		TAILQ_INSERT_TAIL(&p->hot, s, entry);
		s->hot = true;
	}
}

bool
pass_cool(struct pass *p, struct pass_source *s)
{
	if (!s->hot)
		return true;
	/*
	 * The flag first, then one more look: a writer publishes, fences,
	 * then reads the flag, so either this look sees its record or it
	 * sees the flag and wakes mbxd through the socket.
	 */
	channel_store(s->daemon, CHANNEL_DAEMON_SLEEP, CHANNEL_WANT_DATA);
	channel_fence();
	if (channel_load(s->client, CHANNEL_CLIENT_TX_TAIL) != s->rx.head) {
		channel_store(s->daemon, CHANNEL_DAEMON_SLEEP, 0);
		return false;
	}
	TAILQ_REMOVE(&p->hot, s, entry);
	s->hot = false;
	return true;
}

bool
pass_cool_all(struct pass *p)
{
	struct pass_source *s, *next;
	bool all = true;

	for (s = TAILQ_FIRST(&p->hot); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		all &= pass_cool(p, s);
	}
	return all;
}

bool
pass_idle(const struct pass *p)
{
	return TAILQ_EMPTY(&p->hot);
}

bool
pass_item_copy(const struct pass_item *it, size_t off, void *dst, size_t len)
{
	return channel_rx_copy(&it->src->rx, it->pos, &it->rec, off, dst, len);
}

static int
item_cmp(const void *a, const void *b)
{
	const struct pass_item *x = a, *y = b;

	if (x->stamp != y->stamp)
		return x->stamp < y->stamp ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
items_grow(struct pass *p)
{
	size_t cap = p->cap == 0 ? 256 : 2 * p->cap;
	struct pass_item *n;

	if ((n = reallocarray(p->items, cap, sizeof(*n))) == NULL)
		return -ENOMEM;
	p->items = n;
	p->cap = cap;
	return 0;
}

/* The source broke the rules: nothing more is read from it. */
static void
source_break(struct pass_source *s)
{
	s->broken = true;
}

/* Takes the headers of s's records stamped before t0; the cut lowers. */
static int
source_take(struct pass *p, struct pass_source *s, uint64_t t0, uint64_t hi,
    uint64_t *cut)
{
	uint64_t lo = s->lo;
	struct channel_rec rec;
	enum channel_read rc;

	if (hi <= lo)
		hi = lo + 1;
	while ((rc = channel_rx_peek(&s->rx, CHANNEL_REC_MAX, &rec)) ==
	    CHANNEL_READ_OK) {
		uint64_t pos = channel_rx_pos(&s->rx), stamp;

		/*
		 * A record seen before keeps the stamp it was given then:
		 * re-clamped to this pass's hi, a liar's stamp would wait
		 * for ever, and the daemon spin on its ring.
		 */
		stamp = channel_stamp_clamp(s->held && s->held_pos == pos ?
		    s->held_stamp : rec.stamp, lo, hi);
		if (stamp >= t0) {
			s->held = true;		/* the next pass takes it */
			s->held_pos = pos;
			s->held_stamp = stamp;
			break;
		}
		if (s->taken == PASS_SOURCE_BATCH) {
			if (stamp < *cut)
				*cut = stamp;
			break;
		}
		if (p->nitems == p->cap && items_grow(p) < 0)
			return -ENOMEM;
		p->items[p->nitems++] = (struct pass_item){ stamp, p->seq++,
		    pos, rec, s };
		s->taken++;
		lo = stamp;
		channel_rx_skip(&s->rx);
	}
	if (rc == CHANNEL_READ_MALFORMED)
		source_break(s);
	s->drained = rc == CHANNEL_READ_EMPTY;
	return 0;
}

/* Moves s's head to the end of what was handed over and wakes its writer. */
static void
source_settle(struct pass *p, struct pass_source *s, uint64_t t0)
{
	uint64_t tail = s->rx.tail;

	if (s->handed == s->taken) {
		/* All handed over: the reader's head, past any PAD, stands. */
		s->lo = s->drained && !s->broken ? t0 : s->handed > 0 ?
		    s->last : s->lo;
	} else {
		channel_rx_rewind(&s->rx, s->next);
		if (s->handed > 0)
			s->lo = s->last;
	}
	if (s->rx.head == s->start)
		return;
	channel_store(s->daemon, CHANNEL_DAEMON_TX_HEAD, s->rx.head);
	channel_fence();
	if ((channel_load(s->client, CHANNEL_CLIENT_SLEEP) &
	    CHANNEL_WANT_ROOM) && channel_room_wake(tail, s->rx.head))
		p->ops->wake(s->owner, p->arg);
}

long
pass_run(struct pass *p)
{
	struct pass_source *s, *tmp;
	uint64_t t0, hi, cut = UINT64_MAX;
	long handed = 0;
	int err = 0;

	p->left = UINT64_MAX;
	t0 = p->clock();
	channel_fence();
	if (p->ops->poll != NULL)
		p->ops->poll(p, p->arg);
	if (TAILQ_EMPTY(&p->hot))
		return 0;
	TAILQ_FOREACH(s, &p->hot, entry) {
		s->start = s->next = s->rx.head;
		s->taken = s->handed = 0;
		s->drained = false;
		if (channel_rx_limit(&s->rx, channel_load(s->client,
		    CHANNEL_CLIENT_TX_TAIL)) != CHANNEL_READ_OK)
			source_break(s);
	}
	hi = p->clock();
	p->nitems = 0;
	TAILQ_FOREACH(s, &p->hot, entry)
		if (!s->broken && (err = source_take(p, s, t0, hi, &cut)) < 0)
			break;
	if (err == 0) {
		if (p->nitems > 0)	/* qsort(NULL, 0) is undefined */
			qsort(p->items, p->nitems, sizeof(*p->items),
			    item_cmp);
		for (size_t i = 0; i < p->nitems; i++) {
			struct pass_item *it = &p->items[i];
			int rc;

			/*
			 * Equal stamps are concurrent sends (one that returned
			 * before another began has the smaller stamp), so an
			 * item at the cut may go before what was left there.
			 */
			if (it->stamp > cut)
				break;
			if (it->src->broken)
				continue;
			if ((rc = p->ops->take(it->src->owner, it, p->arg)) ==
			    -EPROTO) {
				source_break(it->src);
				continue;
			}
			if (rc < 0) {
				err = rc;
				break;
			}
			it->src->handed++;
			it->src->next = it->pos + channel_rec_need(it->rec.len);
			it->src->last = it->stamp;
			handed++;
		}
	}
	p->left = cut;
	for (s = TAILQ_FIRST(&p->hot); s != NULL; s = tmp) {
		tmp = TAILQ_NEXT(s, entry);
		source_settle(p, s, t0);
		if (s->broken) {
			pass_source_deinit(p, s);
			if (p->ops->broken != NULL)
				p->ops->broken(s->owner, p->arg);
		}
	}
	return err < 0 && handed == 0 ? err : handed;
}

long
pass_run_before(struct pass *p, uint64_t t)
{
	long n, sum = 0;

	for (unsigned i = 0; i < PASS_BEFORE_MAX; i++) {
		if ((n = pass_run(p)) <= 0)
			return sum > 0 ? sum : n;
		sum += n;
		if (p->left >= t)
			break;
	}
	return sum;
}
