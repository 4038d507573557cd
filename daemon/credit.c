/*
 * credit.c - grants of room ahead of sends (see credit.h).  A layer of
 * the broker above the lookups (it asks broker_is_admin()) and below
 * delivery, which grants, takes and ends credit through it.  What a grant
 * holds of its uid's account is its charge: changed only through
 * account_charge() and account_release().
 */
#include <stdlib.h>

#include "account.h"
#include "broker.h"
#include "credit.h"
#include "mailbox.h"
#include "peer.h"

static struct grant *
credit_find(const struct peer *p, const struct mailbox *mb)
{
	for (size_t i = 0; i < p->grants.len; i++) {
		struct grant *g = p->grants.items[i];

		if (g->mb == mb)
			return g;
	}
	return NULL;
}

/*
 * Adds count slots and bytes to the grant, charged to its holder's uid
 * (unchecked: credit_target() sized them under half of every cap).
 */
static void
credit_grow(struct broker *b, struct grant *g, unsigned count, uint64_t bytes)
{
	const struct charge_amount amt = { .bytes = bytes,
	    .zc_slots = g->zerocopy ? count : 0 };

	(void)account_charge(&b->accounts, &g->charge, g->peer->acct, &amt,
	    ACCOUNT_RESERVED);
	g->count += count;
	g->bytes += bytes;
	g->mb->reserved += count;
}

/* Takes count slots and bytes out of the grant, and out of its charge. */
static void
credit_shrink(struct broker *b, struct grant *g, unsigned count,
    uint64_t bytes)
{
	const struct charge_amount amt = { .bytes = bytes,
	    .zc_slots = g->zerocopy ? count : 0 };

	account_release(&b->accounts, &g->charge, &amt);
	g->count -= count;
	g->bytes -= bytes;
	g->mb->reserved -= count;
}

/* Whether g covers memfd posts, its slots counted as such or not. */
static void
credit_set_zerocopy(struct broker *b, struct grant *g, bool zerocopy)
{
	const struct charge_amount slots = { .zc_slots = g->count };

	if (g->zerocopy == zerocopy)
		return;
	if (zerocopy)
		(void)account_charge(&b->accounts, &g->charge, g->peer->acct,
		    &slots, ACCOUNT_RESERVED);
	else
		account_release(&b->accounts, &g->charge, &slots);
	g->zerocopy = zerocopy;
}

/*
 * The most slots a grant of p (g, or a new one when NULL) may hold and
 * still cover memfd posts: CREDIT_ZC_WINDOW, and for a non-administrator
 * no more than keep the uid's zero-copy messages held and the memfd
 * slots of all its grants within half its max_fds_per_uid.
 */
static unsigned
credit_zc_room(const struct broker *b, const struct peer *p,
    const struct grant *g)
{
	uint64_t half = b->limits.max_fds_per_uid / 2;
	uint64_t used = (uint64_t)p->acct->fds + p->acct->zc_slots;

	if (g != NULL && g->zerocopy)
		used -= g->count;
	if (broker_is_admin(b, p))
		return CREDIT_ZC_WINDOW;
	if (used >= half)
		return 0;
	return half - used < CREDIT_ZC_WINDOW ? (unsigned)(half - used) :
	    CREDIT_ZC_WINDOW;
}

static void
credit_end(struct broker *b, struct grant *g)
{
	if (g->withdrawn)
		ptrvec_remove(&b->withdrawn, g);
	g->mb->reserved -= g->count;
	account_release(&b->accounts, &g->charge, NULL);
	ptrvec_remove(&g->peer->grants, g);
	ptrvec_remove(&g->mb->grants, g);
	free(g);
}

/*
 * How much to grant: a window of messages of about this size, no more
 * than a quarter of the free slots, and only while memory is plentiful
 * (under half of every cap), so credit never decides who gets ENOBUFS.
 * After a memfd send: fewer, larger messages, and only while the uid
 * holds under half its share of descriptors (memfd posts count against
 * it like queued messages, without being refused).
 */
static void
credit_target(const struct broker *b, const struct peer *p,
    const struct mailbox *mb, const struct grant *g, size_t len,
    bool zerocopy, unsigned *count, uint64_t *bytes)
{
	uint64_t per = len < 64 ? 64 : len, free_slots = CREDIT_WINDOW * 4;
	uint64_t max_bytes = zerocopy ? CREDIT_ZC_MAX_BYTES : CREDIT_MAX_BYTES;
	unsigned window = zerocopy ? CREDIT_ZC_WINDOW : CREDIT_WINDOW;

	*count = 0;
	*bytes = 0;
	/* A durable send is answered after its commit: never ahead of it. */
	if (mb->capacity == 0 || mb->durable || len > max_bytes / 4)
		return;
	if (mb->capacity > 0) {
		uint64_t used = mb->nqueued + mb->ninflight + mb->reserved;

		free_slots = (uint64_t)mb->capacity > used ?
		    (uint64_t)mb->capacity - used : 0;
	}
	*count = free_slots / 4 < window ? (unsigned)(free_slots / 4) : window;
	if ((uint64_t)*count * per > max_bytes)
		*count = (unsigned)(max_bytes / per);
	/* Descriptors: held and granted, the uid's stay under half. */
	if (zerocopy && *count > credit_zc_room(b, p, g))
		*count = credit_zc_room(b, p, g);
	*bytes = (uint64_t)*count * per;
	if (b->accounts.bytes + *bytes > b->limits.max_memory / 2 ||
	    (!broker_is_admin(b, p) &&
	    p->acct->bytes + *bytes > b->limits.max_bytes_per_uid / 2)) {
		*count = 0;
		*bytes = 0;
	}
}

void
credit_refill(struct broker *b, struct peer *p, struct mailbox *mb,
    size_t len, bool zerocopy, unsigned *count, uint64_t *bytes, bool *zc)
{
	struct grant *g = credit_find(p, mb);
	unsigned want_count;
	uint64_t want_bytes;

	/* Its holder was told it ends: nothing new is said of it. */
	if (g != NULL && g->withdrawn) {
		*count = 0;
		*bytes = 0;
		*zc = false;
		return;
	}
	credit_target(b, p, mb, g, len, zerocopy, &want_count, &want_bytes);
	if (g == NULL && want_count > 0) {
		g = calloc(1, sizeof(*g));
		if (g != NULL && (ptrvec_push(&p->grants, g) < 0 ||
		    ptrvec_push(&mb->grants, g) < 0)) {
			ptrvec_remove(&p->grants, g);
			free(g);
			g = NULL;
		}
		if (g != NULL) {
			g->peer = p;
			g->mb = mb;
		}
	}
	/* Top up only: a grant never shrinks under its holder. */
	if (g != NULL && (want_count > g->count || want_bytes > g->bytes))
		credit_grow(b, g, want_count > g->count ?
		    want_count - g->count : 0,
		    want_bytes > g->bytes ? want_bytes - g->bytes : 0);
	/* Posts are judged by what the peer was told, even if it shrinks. */
	if (g != NULL)
		g->max_msg = mb->max_msg < b->limits.max_msg ? mb->max_msg :
		    b->limits.max_msg;
	/*
	 * A memfd send says afresh whether memfd posts may follow: not on
	 * a grant grown past what memfd posts may hold (an inline one of
	 * 64 slots), which an inline send's top-up may also make it.
	 */
	if (g != NULL && zerocopy)
		credit_set_zerocopy(b, g, want_count > 0 &&
		    g->count <= credit_zc_room(b, p, g));
	else if (g != NULL && g->zerocopy &&
	    g->count > credit_zc_room(b, p, g))
		credit_set_zerocopy(b, g, false);
	/* The holder hears of the grant anew: it may post on it again. */
	if (g != NULL)
		g->revoked = false;
	*count = g != NULL ? g->count : 0;
	*bytes = g != NULL ? g->bytes : 0;
	*zc = g != NULL && g->zerocopy;
}

static struct grant *
credit_find_id(const struct peer *p, uint64_t mailbox_id)
{
	for (size_t i = 0; i < p->grants.len; i++) {
		struct grant *g = p->grants.items[i];

		if (g->mb->id == mailbox_id)
			return g;
	}
	return NULL;
}

uint64_t
credit_max_post(const struct peer *p, uint64_t mailbox_id)
{
	struct grant *g = credit_find_id(p, mailbox_id);

	return g != NULL ? g->max_msg : 0;
}

bool
credit_covers(const struct peer *p, uint64_t len)
{
	for (size_t i = 0; i < p->grants.len; i++) {
		const struct grant *g = p->grants.items[i];

		if (g->count > 0 && g->bytes >= len)
			return true;
	}
	return false;
}

struct mailbox *
credit_take(struct broker *b, struct peer *p, uint64_t mailbox_id,
    size_t len, bool zerocopy)
{
	struct grant *g = credit_find_id(p, mailbox_id);
	struct mailbox *mb;

	if (g == NULL || g->count == 0 || g->bytes < len ||
	    (zerocopy && !g->zerocopy))
		return NULL;
	credit_shrink(b, g, 1, len);
	mb = g->mb;
	/* Used up: the bytes left over go back to everyone. */
	if (g->count == 0)
		credit_end(b, g);
	return mb;
}

bool
credit_tell_shared(struct peer *p, struct mailbox *mb, bool shared)
{
	struct grant *g = credit_find(p, mb);

	if (g == NULL)
		return false;
	g->shared = shared && g->zerocopy;
	return g->shared;
}

void
credit_release(struct broker *b, struct peer *p, struct mailbox *mb)
{
	struct grant *g = credit_find(p, mb);

	if (g != NULL)
		credit_end(b, g);
}

void
credit_release_peer(struct broker *b, struct peer *p)
{
	while (p->grants.len > 0)
		credit_end(b, p->grants.items[0]);
}

void
credit_release_mailbox(struct broker *b, struct mailbox *mb)
{
	while (mb->grants.len > 0)
		credit_end(b, mb->grants.items[0]);
}

bool
credit_withdraw(struct broker *b, struct grant *g)
{
	const struct peer_ops *ops = g->peer->ops;

	if (g->withdrawn)
		return true;
	if (ops->withdraw == NULL || ptrvec_push(&b->withdrawn, g) < 0)
		return false;
	if (!ops->withdraw(g->peer, g->mb)) {
		ptrvec_remove(&b->withdrawn, g);
		return false;
	}
	g->withdrawn = true;
	return true;
}

bool
credit_withdrawing(const struct broker *b)
{
	return b->withdrawn.len > 0;
}
