/*
 * broker-bind.c - who receives from a mailbox: binding, standing by,
 * giving the binding up, and an operator moving it (see broker.h).
 *
 * Invariants: a mailbox has at most one receiver, which is never among
 * its standbys; a peer's bound and standing vectors mirror the mailboxes'
 * receiver and standby fields.  A receiver that loses a binding loses its
 * parked receives there (EPERM) and the messages it held in flight, which
 * go back to the head of the queue in order.
 *
 * The bindings layer: above delivery (a new receiver is pumped, a lost
 * one's messages withdrawn), the parked calls and the lookups; below the
 * lifecycle (broker.c), which it never calls.
 */
#include <errno.h>
#include <sys/stat.h>

#include "broker-bind.h"
#include "broker-deliver.h"
#include "broker-lookup.h"
#include "broker-wait.h"
#include "mailbox.h"
#include "proto.h"

/*
 * Messages mb handed to its receiver p and that p has not acknowledged go
 * back to the head of the queue, in their order (at-least-once delivery).
 * With tell (p stays connected), p hears of each one it was to
 * acknowledge itself, so that its mbx_ack() of it fails, and of each one
 * its consumption word might have acknowledged, so that a receive whose
 * store came too late knows it (PROTOCOL.md, "Consumption by a store").
 */
static void
broker_return_inflight(struct broker *b, struct peer *p, struct mailbox *mb,
    bool tell)
{
	struct msg *m, *prev;
	bool told;

	/* mb's own list: the cost is what mb handed out, not all p holds. */
	for (m = TAILQ_LAST(&mb->inflight, msg_list); m != NULL; m = prev) {
		prev = TAILQ_PREV(m, msg_list, mbox_entry);
		if (m->holder != p)
			continue;
		/* Those it may have handed out already: it must know. */
		told = m->explicit_ack || m->stored;
		peer_inflight_remove(p, m);
		if (tell && told && p->ops->takeback != NULL)
			p->ops->takeback(p, mb, m->id);
		(void)broker_give_back(b, m, NULL);
		/* A sender that would not wait cannot wait for a redelivery. */
		if (m->sender != NULL && m->sender->nonblock)
			broker_withdraw(b, m, -EAGAIN);
	}
}

/* The receiver of mb loses the binding (unbind, replace, rebind, gone). */
void
broker_drop_receiver(struct broker *b, struct mailbox *mb, int err)
{
	struct peer *p = mb->receiver;

	if (p == NULL)
		return;
	/*
	 * Taken away by another connection's call (rebind, evict, replace):
	 * p's ACKs may still wait in its socket, written before that call
	 * was made.  The daemon reads connections in turn, so without this
	 * it could put back a message whose receive had already returned,
	 * and hand it to the next receiver as well.
	 */
	if (err != 0 && p->ops->settle != NULL)
		p->ops->settle(p);
	mb->receiver = NULL;
	ptrvec_remove(&p->bound, mb);
	broker_wait_fail_recvs(b, p, mb, err);
	broker_return_inflight(b, p, mb, err != 0);
	/* Messages p's library holds ahead of its calls are no longer p's. */
	if (err != 0)
		p->ops->revoke(p, mb, PROTO_REVOKE_BINDING);
}

/* Makes p the receiver of mb; p is neither bound nor standing by there. */
static int
broker_set_receiver(struct broker *b, struct mailbox *mb, struct peer *p)
{
	int err = ptrvec_push(&p->bound, mb);

	if (err < 0)
		return err;
	mb->receiver = p;
	broker_pump(b, mb);
	return 0;
}

/* With no receiver, the first standby takes the binding. */
void
broker_promote(struct broker *b, struct mailbox *mb)
{
	struct peer *p;

	while (mb->receiver == NULL && (p = mailbox_standby_pop(mb)) != NULL) {
		ptrvec_remove(&p->standing, mb);
		if (broker_set_receiver(b, mb, p) < 0)
			broker_wait_fail_recvs(b, p, mb, -ENOMEM);
	}
}

/* Removes p from the standbys of mb, failing its receives there. */
void
broker_drop_standby(struct broker *b, struct mailbox *mb, struct peer *p,
    int err)
{
	mailbox_standby_remove(mb, p);
	ptrvec_remove(&p->standing, mb);
	broker_wait_fail_recvs(b, p, mb, err);
}

int
broker_bind(struct broker *b, struct peer *p, const char *name, size_t len,
    int how)
{
	struct mailbox *mb;
	int err = broker_lookup_named(b, name, len, &mb);

	if (err < 0)
		return err;
	if (how != PROTO_BIND_EXCLUSIVE && how != PROTO_BIND_REPLACE &&
	    how != PROTO_BIND_QUEUE)
		return -EINVAL;
	if (!broker_may(b, p, mb, S_IROTH))
		return -EACCES;
	if (mb->receiver == p)
		return 0;
	if (mb->receiver != NULL && how == PROTO_BIND_EXCLUSIVE)
		return -EBUSY;
	if (mb->receiver != NULL && how == PROTO_BIND_QUEUE) {
		if (mailbox_is_standby(mb, p))
			return 0;
		if (mb->standby.len >= b->limits.max_standby_per_mailbox)
			return -EDQUOT;
		if ((err = ptrvec_push(&p->standing, mb)) < 0)
			return err;
		if ((err = mailbox_standby_add(mb, p)) < 0) {
			ptrvec_remove(&p->standing, mb);
			return err;
		}
		return 0;
	}
	/* Reserve p's slot first so that failing changes nothing. */
	if ((err = ptrvec_push(&p->bound, mb)) < 0)
		return err;
	ptrvec_remove(&p->bound, mb);
	if (mailbox_is_standby(mb, p)) {
		mailbox_standby_remove(mb, p);
		ptrvec_remove(&p->standing, mb);
	}
	broker_drop_receiver(b, mb, -EPERM);
	return broker_set_receiver(b, mb, p);
}

int
broker_unbind(struct broker *b, struct peer *p, const char *name, size_t len,
    bool evict)
{
	struct mailbox *mb;
	int err = broker_lookup_named(b, name, len, &mb);

	if (err < 0)
		return err;
	if (evict || mb->receiver == p) {
		if (mb->receiver == NULL)
			return -EPERM;
		if (mb->receiver != p && !broker_owns(b, p, mb))
			return -EACCES;
		broker_drop_receiver(b, mb, -EPERM);
		broker_promote(b, mb);
		return 0;
	}
	if (!mailbox_is_standby(mb, p))
		return -EPERM;
	broker_drop_standby(b, mb, p, -EPERM);
	return 0;
}

int
broker_rebind(struct broker *b, struct peer *caller, const char *name,
    size_t len, uint64_t target)
{
	struct mailbox *mb;
	struct peer *p;
	int err = broker_lookup_owned(b, caller, name, len, &mb);

	if (err < 0)
		return err;
	p = broker_peer_find(b, target);
	if (p == NULL || !mailbox_is_standby(mb, p))
		return -ESRCH;
	if ((err = ptrvec_push(&p->bound, mb)) < 0)
		return err;
	ptrvec_remove(&p->bound, mb);
	mailbox_standby_remove(mb, p);
	ptrvec_remove(&p->standing, mb);
	broker_drop_receiver(b, mb, -EPERM);
	return broker_set_receiver(b, mb, p);
}
