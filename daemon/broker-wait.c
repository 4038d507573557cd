/*
 * broker-wait.c - parked calls and their deadlines (see broker-wait.h).
 * Above the lookups; below delivery, which parks sends and receives here
 * and ends them when they are answered or expire.
 */
#include <errno.h>
#include <stdlib.h>

#include "broker-wait.h"

struct wait *
broker_wait_new(struct broker *b, struct peer *p, enum wait_kind kind,
    uint32_t req, int timeout_ms, int *err)
{
	const struct charge_amount cost = { .bytes = BROKER_WAIT_COST };
	struct charge charge = { 0 };
	struct wait *w;

	*err = -EDQUOT;
	if (p->nwaits >= b->limits.max_pending_per_connection)
		return NULL;
	if ((*err = account_charge(&b->accounts, &charge, p->acct, &cost,
	    broker_is_admin(b, p) ? ACCOUNT_EXEMPT : 0)) < 0)
		return NULL;
	*err = -ENOMEM;
	if ((w = calloc(1, sizeof(*w))) == NULL) {
		account_release(&b->accounts, &charge, NULL);
		return NULL;
	}
	/* A charge records what it holds, not where it is: it moves whole. */
	w->charge = charge;
	w->kind = kind;
	w->peer = p;
	w->req = req;
	deadline_node_init(&w->deadline);
	if (timeout_ms > 0 && deadline_heap_add(&b->deadlines, &w->deadline,
	    broker_now(b) + (uint64_t)timeout_ms) < 0) {
		account_release(&b->accounts, &w->charge, NULL);
		free(w);
		return NULL;
	}
	if (kind == WAIT_SEND) {
		TAILQ_INSERT_TAIL(&p->sends, w, entry);
		b->send_waits++;
	} else if (kind == WAIT_COMMIT)
		TAILQ_INSERT_TAIL(&b->commits, w, entry);
	else
		TAILQ_INSERT_TAIL(&p->recvs, w, entry);
	p->nwaits++;
	return w;
}

void
broker_wait_end(struct broker *b, struct wait *w, int err, bool answer)
{
	struct peer *p = w->peer;

	deadline_heap_remove(&b->deadlines, &w->deadline);
	p->nwaits--;
	if (w->kind == WAIT_SEND) {
		TAILQ_REMOVE(&p->sends, w, entry);
		b->send_waits--;
		if (w->msg != NULL)
			w->msg->sender = NULL;
	} else if (w->kind == WAIT_COMMIT) {
		TAILQ_REMOVE(&b->commits, w, entry);
	} else {
		TAILQ_REMOVE(&p->recvs, w, entry);
	}
	account_release(&b->accounts, &w->charge, NULL);
	if (answer)
		p->ops->reply(p, w->req, err);
	free(w);
}

void
broker_wait_fail_recvs(struct broker *b, struct peer *p, struct mailbox *mb,
    int err)
{
	struct wait *w, *next;

	for (w = TAILQ_FIRST(&p->recvs); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (w->mbox == mb)
			broker_wait_end(b, w, err, err != 0);
	}
}

struct wait *
broker_wait_find_recv(const struct peer *p, const struct mailbox *mb)
{
	struct wait *w;

	TAILQ_FOREACH(w, &p->recvs, entry)
		if (w->mbox == mb || w->mbox == NULL)
			return w;
	return NULL;
}

struct wait *
broker_wait_expired(const struct broker *b, uint64_t now)
{
	struct deadline *d = deadline_heap_first(&b->deadlines);

	if (d == NULL || d->when > now)
		return NULL;
	return (struct wait *)((char *)d - offsetof(struct wait, deadline));
}

uint64_t
broker_next_deadline(const struct broker *b)
{
	const struct deadline_heap *heaps[] = { &b->deadlines, &b->timers,
	    &b->delays };
	uint64_t when = DEADLINE_NONE;

	/* The mailboxes' timers and the delays (broker-deliver.c) too. */
	for (size_t i = 0; i < sizeof(heaps) / sizeof(heaps[0]); i++) {
		struct deadline *d = deadline_heap_first(heaps[i]);

		if (d != NULL && d->when < when)
			when = d->when;
	}
	return when;
}
