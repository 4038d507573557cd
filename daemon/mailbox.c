/*
 * mailbox.c - queue and binding state of one mailbox (see mailbox.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mailbox.h"

struct mailbox *
mailbox_new(const char *name, size_t len, long capacity, size_t max_msg)
{
	struct mailbox *mb;

	if (len > PROTO_NAME_MAX)
		return NULL;
	mb = calloc(1, sizeof(*mb));
	if (mb == NULL)
		return NULL;
	memcpy(mb->name, name, len);
	mb->name_len = len;
	mb->capacity = capacity;
	mb->max_msg = max_msg;
	TAILQ_INIT(&mb->queue);
	TAILQ_INIT(&mb->pending);
	TAILQ_INIT(&mb->staged);
	TAILQ_INIT(&mb->inflight);
	TAILQ_INIT(&mb->timed);
	TAILQ_INIT(&mb->delayed);
	deadline_node_init(&mb->timer);
	ptrvec_init(&mb->standby);
	ptrvec_init(&mb->grants);
	return mb;
}

void
mailbox_free(struct mailbox *mb)
{
	if (mb == NULL)
		return;
	ptrvec_deinit(&mb->standby);
	ptrvec_deinit(&mb->grants);
	free(mb->dead_letter);
	free(mb);
}

struct peer *
mailbox_receiver(const struct mailbox *mb)
{
	return mb->owner != NULL ? mb->owner : mb->receiver;
}

bool
mailbox_has_room(const struct mailbox *mb)
{
	/* In-flight messages still hold their slot until acknowledged. */
	return mb->capacity < 0 || mb->nqueued + mb->ninflight + mb->ndelayed +
	    mb->nstaged + mb->reserved < (size_t)mb->capacity;
}

struct msg *
mailbox_head(const struct mailbox *mb)
{
	struct msg *m = TAILQ_FIRST(&mb->queue);

	return m != NULL ? m : TAILQ_FIRST(&mb->pending);
}

void
mailbox_add_pending(struct mailbox *mb, struct msg *m)
{
	m->mbox = mb;
	m->state = MSG_PENDING;
	TAILQ_INSERT_TAIL(&mb->pending, m, entry);
	mb->npending++;
	mb->bytes += m->len;
}

void
mailbox_add_queued(struct mailbox *mb, struct msg *m)
{
	m->mbox = mb;
	m->state = MSG_QUEUED;
	TAILQ_INSERT_TAIL(&mb->queue, m, entry);
	mb->nqueued++;
	mb->bytes += m->len;
}

struct msg *
mailbox_accept_pending(struct mailbox *mb)
{
	struct msg *m = TAILQ_FIRST(&mb->pending);

	if (m == NULL)
		return NULL;
	TAILQ_REMOVE(&mb->pending, m, entry);
	mb->npending--;
	m->state = MSG_QUEUED;
	TAILQ_INSERT_TAIL(&mb->queue, m, entry);
	mb->nqueued++;
	return m;
}

void
mailbox_stage_pending(struct mailbox *mb)
{
	struct msg *m = TAILQ_FIRST(&mb->pending);

	TAILQ_REMOVE(&mb->pending, m, entry);
	mb->npending--;
	m->state = MSG_STAGED;
	TAILQ_INSERT_TAIL(&mb->staged, m, entry);
	mb->nstaged++;
}

void
mailbox_add_staged(struct mailbox *mb, struct msg *m)
{
	m->mbox = mb;
	m->state = MSG_STAGED;
	TAILQ_INSERT_TAIL(&mb->staged, m, entry);
	mb->nstaged++;
	mb->bytes += m->len;
}

struct msg *
mailbox_commit_staged(struct mailbox *mb)
{
	struct msg *m = TAILQ_FIRST(&mb->staged);

	if (m == NULL)
		return NULL;
	TAILQ_REMOVE(&mb->staged, m, entry);
	mb->nstaged--;
	m->state = MSG_QUEUED;
	TAILQ_INSERT_TAIL(&mb->queue, m, entry);
	mb->nqueued++;
	return m;
}

/* Unlinks m from the queue or pending list, keeping its bytes counted. */
static void
mailbox_unlink(struct mailbox *mb, struct msg *m)
{
	if (m->state == MSG_QUEUED) {
		TAILQ_REMOVE(&mb->queue, m, entry);
		mb->nqueued--;
	} else if (m->state == MSG_PENDING) {
		TAILQ_REMOVE(&mb->pending, m, entry);
		mb->npending--;
	} else if (m->state == MSG_DELAYED) {
		TAILQ_REMOVE(&mb->delayed, m, entry);
		mb->ndelayed--;
	} else if (m->state == MSG_STAGED) {
		TAILQ_REMOVE(&mb->staged, m, entry);
		mb->nstaged--;
	} else {
		TAILQ_REMOVE(&mb->inflight, m, mbox_entry);
		mb->ninflight--;
	}
	if (m->timed) {
		TAILQ_REMOVE(&mb->timed, m, timer_entry);
		m->timed = false;
	}
}

void
mailbox_take(struct mailbox *mb, struct msg *m)
{
	mailbox_unlink(mb, m);
	m->state = MSG_INFLIGHT;
	TAILQ_INSERT_TAIL(&mb->inflight, m, mbox_entry);
	mb->ninflight++;
}

void
mailbox_return(struct mailbox *mb, struct msg *m, struct msg *after)
{
	mailbox_unlink(mb, m);
	m->state = MSG_QUEUED;
	m->holder = NULL;
	if (after != NULL)
		TAILQ_INSERT_AFTER(&mb->queue, after, m, entry);
	else
		TAILQ_INSERT_HEAD(&mb->queue, m, entry);
	mb->nqueued++;
}

void
mailbox_time(struct mailbox *mb, struct msg *m, uint64_t due)
{
	struct msg *prev = TAILQ_LAST(&mb->timed, msg_list);

	m->due = due;
	m->timed = true;
	/* Deliveries come in time order: the walk is a step, unless the
	 * mailbox's timeout was lowered meanwhile. */
	while (prev != NULL && prev->due > due)
		prev = TAILQ_PREV(prev, msg_list, timer_entry);
	if (prev != NULL)
		TAILQ_INSERT_AFTER(&mb->timed, prev, m, timer_entry);
	else
		TAILQ_INSERT_HEAD(&mb->timed, m, timer_entry);
}

void
mailbox_delay(struct mailbox *mb, struct msg *m)
{
	mailbox_unlink(mb, m);
	m->state = MSG_DELAYED;
	m->holder = NULL;
	TAILQ_INSERT_TAIL(&mb->delayed, m, entry);
	mb->ndelayed++;
}

uint64_t
mailbox_next_due(const struct mailbox *mb)
{
	const struct msg *t = TAILQ_FIRST(&mb->timed);

	return t != NULL ? t->due : DEADLINE_NONE;
}

int
mailbox_set_dead_letter(struct mailbox *mb, const char *name, size_t len)
{
	char *copy = NULL;

	if (len > 0) {
		if ((copy = malloc(len + 1)) == NULL)
			return -ENOMEM;
		memcpy(copy, name, len);
		copy[len] = '\0';
	}
	free(mb->dead_letter);
	mb->dead_letter = copy;
	mb->dead_letter_len = len;
	return 0;
}

void
mailbox_drop(struct mailbox *mb, struct msg *m)
{
	mailbox_unlink(mb, m);
	mb->bytes -= m->len;
	m->mbox = NULL;
}

int
mailbox_standby_add(struct mailbox *mb, struct peer *p)
{
	return ptrvec_push(&mb->standby, p);
}

bool
mailbox_standby_remove(struct mailbox *mb, struct peer *p)
{
	return ptrvec_remove(&mb->standby, p);
}

bool
mailbox_is_standby(const struct mailbox *mb, const struct peer *p)
{
	return ptrvec_contains(&mb->standby, p);
}

struct peer *
mailbox_standby_pop(struct mailbox *mb)
{
	struct peer *p;

	if (mb->standby.len == 0)
		return NULL;
	p = mb->standby.items[0];
	ptrvec_remove(&mb->standby, p);
	return p;
}
