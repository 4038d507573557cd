/*
 * account.c - per-uid accounts and the charges against them (see
 * account.h).  The only file that changes a counter, the output ones
 * included.
 */
#include <errno.h>
#include <stdlib.h>

#include "account.h"

void
accounts_init(struct accounts *a)
{
	ptrvec_init(&a->list);
	a->bytes = 0;
}

void
accounts_deinit(struct accounts *a)
{
	for (size_t i = 0; i < a->list.len; i++)
		free(a->list.items[i]);
	ptrvec_deinit(&a->list);
}

void
accounts_set_quota(struct accounts *a, const struct account_quota *q)
{
	a->quota = *q;
}

struct account *
account_find(const struct accounts *a, uid_t uid)
{
	for (size_t i = 0; i < a->list.len; i++) {
		struct account *acct = a->list.items[i];

		if (acct->uid == uid)
			return acct;
	}
	return NULL;
}

struct account *
account_of(struct accounts *a, uid_t uid)
{
	struct account *acct = account_find(a, uid);

	if (acct != NULL)
		return acct;
	if ((acct = calloc(1, sizeof(*acct))) == NULL)
		return NULL;
	acct->uid = uid;
	if (ptrvec_push(&a->list, acct) < 0) {
		free(acct);
		return NULL;
	}
	return acct;
}

/* An account that no charge holds goes. */
static void
account_drop_unheld(struct accounts *a, struct account *acct)
{
	if (acct->refs > 0)
		return;
	ptrvec_remove(&a->list, acct);
	free(acct);
}

/* True when used + want passes max (used may be past it already). */
static bool
account_over(uint64_t used, uint64_t want, uint64_t max)
{
	return used > max || want > max - used;
}

/* The first quota amt would pass: 0 or the error to answer. */
static int
account_check(const struct accounts *a, const struct account *acct,
    const struct charge_amount *amt, unsigned flags)
{
	const struct account_quota *q = &a->quota;
	bool memory = amt->bytes > 0 || amt->msgs > 0;

	if (flags & ACCOUNT_RESERVED)
		return 0;
	if (memory && account_over(a->bytes, amt->bytes, q->max_memory))
		return -ENOBUFS;
	if (flags & ACCOUNT_EXEMPT)
		return 0;
	/* One uid's share of the memory: the rest stays for the others. */
	if (memory && account_over(acct->bytes, amt->bytes, q->max_bytes))
		return -ENOBUFS;
	if (amt->msgs > 0 && account_over(acct->msgs, amt->msgs, q->max_msgs))
		return -ENOBUFS;
	if (amt->fds > 0 && account_over(acct->fds, amt->fds, q->max_fds))
		return -EMFILE;
	if (amt->connections > 0 && account_over(acct->connections,
	    amt->connections, q->max_connections))
		return -EDQUOT;
	if (amt->mailboxes > 0 && account_over(acct->mailboxes,
	    amt->mailboxes, q->max_mailboxes))
		return -EDQUOT;
	return 0;
}

static bool
charge_amount_empty(const struct charge_amount *c)
{
	return c->bytes == 0 && c->msgs == 0 && c->fds == 0 &&
	    c->zc_slots == 0 && c->connections == 0 && c->mailboxes == 0;
}

int
account_charge(struct accounts *a, struct charge *ch, struct account *acct,
    const struct charge_amount *amt, unsigned flags)
{
	struct charge_amount *h = &ch->held;
	int err;

	/* A charge stays with the account it holds: the release is exact. */
	if (ch->acct != NULL)
		acct = ch->acct;
	if ((err = account_check(a, acct, amt, flags)) < 0) {
		account_drop_unheld(a, acct);
		return err;
	}
	if (charge_amount_empty(amt)) {
		account_drop_unheld(a, acct);
		return 0;
	}
	if (ch->acct == NULL) {
		ch->acct = acct;
		acct->refs++;
	}
	a->bytes += amt->bytes;
	acct->bytes += amt->bytes;
	acct->msgs += amt->msgs;
	acct->fds += amt->fds;
	acct->zc_slots += amt->zc_slots;
	acct->connections += amt->connections;
	acct->mailboxes += amt->mailboxes;
	h->bytes += amt->bytes;
	h->msgs += amt->msgs;
	h->fds += amt->fds;
	h->zc_slots += amt->zc_slots;
	h->connections += amt->connections;
	h->mailboxes += amt->mailboxes;
	return 0;
}

#define ACCOUNT_MIN(x, y)	((x) < (y) ? (x) : (y))

void
account_release(struct accounts *a, struct charge *ch,
    const struct charge_amount *amt)
{
	struct charge_amount *h = &ch->held, d;
	struct account *acct = ch->acct;

	if (acct == NULL)
		return;
	d = amt != NULL ? *amt : *h;
	/* Never more than was charged: the counters stay exact. */
	d.bytes = ACCOUNT_MIN(d.bytes, h->bytes);
	d.msgs = ACCOUNT_MIN(d.msgs, h->msgs);
	d.fds = ACCOUNT_MIN(d.fds, h->fds);
	d.zc_slots = ACCOUNT_MIN(d.zc_slots, h->zc_slots);
	d.connections = ACCOUNT_MIN(d.connections, h->connections);
	d.mailboxes = ACCOUNT_MIN(d.mailboxes, h->mailboxes);
	a->bytes -= d.bytes;
	acct->bytes -= d.bytes;
	acct->msgs -= d.msgs;
	acct->fds -= d.fds;
	acct->zc_slots -= d.zc_slots;
	acct->connections -= d.connections;
	acct->mailboxes -= d.mailboxes;
	h->bytes -= d.bytes;
	h->msgs -= d.msgs;
	h->fds -= d.fds;
	h->zc_slots -= d.zc_slots;
	h->connections -= d.connections;
	h->mailboxes -= d.mailboxes;
	if (!charge_amount_empty(h))
		return;
	ch->acct = NULL;
	acct->refs--;
	account_drop_unheld(a, acct);
}

int
account_move(struct accounts *a, struct charge *ch, uid_t uid)
{
	struct charge_amount held = ch->held;
	struct account *to;

	if (ch->acct == NULL || ch->acct->uid == uid)
		return 0;
	if ((to = account_of(a, uid)) == NULL)
		return -ENOMEM;
	/* Release first: the total passes through the same bytes. */
	account_release(a, ch, NULL);
	return account_charge(a, ch, to, &held, ACCOUNT_RESERVED);
}

bool
account_output(struct account *acct, int64_t bytes, int fds, uint64_t share,
    bool exempt)
{
	acct->out_bytes = (uint64_t)((int64_t)acct->out_bytes + bytes);
	acct->out_fds = (unsigned)((int)acct->out_fds + fds);
	if (!acct->out_over && acct->out_bytes > share && !exempt)
		acct->out_over = true;
	if (!acct->out_over || acct->out_bytes >= share / 2)
		return false;
	acct->out_over = false;
	return true;
}

bool
account_output_look(struct account *acct, unsigned max, uint64_t now,
    uint64_t every)
{
	if (acct->out_fds < max || now - acct->out_fds_looked < every)
		return false;
	acct->out_fds_looked = now;
	return true;
}
