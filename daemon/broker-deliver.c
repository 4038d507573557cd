/*
 * broker-deliver.c - messages through the broker: sends, receives,
 * acknowledgements, and every way a parked call ends (see broker.h).
 *
 * Every message moves through one path: accepted into pending or the
 * queue, handed to a receiver (in flight), then acknowledged and freed,
 * returned to the head of its queue, or withdrawn.  After anything that
 * may free room or add a message, broker_pump() moves waiting senders in
 * and hands messages to parked receivers, so there is one place where
 * calls wake up.
 *
 * A send "succeeds" (its sender is answered 0 and the mailbox counts it
 * sent) when the message is queued, or for a synchronous or rendezvous
 * send, when the receiver acknowledges it.  Until then it can be
 * withdrawn, so a failed send never leaves a message behind.
 *
 * The delivery layer: above the lookups (broker-lookup.c), the parked
 * calls (broker-wait.c) and credit (credit.c); below the bindings
 * (broker-bind.c) and the lifecycle (broker.c), which it never calls.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker-deliver.h"
#include "broker-durable.h"
#include "broker-lookup.h"
#include "broker-wait.h"
#include "credit.h"
#include "journal.h"
#include "log.h"
#include "mailbox.h"
#include "proto.h"

/* A send succeeded: count it and answer its sender if it waits. */
static void
broker_send_done(struct broker *b, struct msg *m)
{
	m->mbox->sent++;
	if (m->sender != NULL)
		broker_wait_end(b, m->sender, 0, true);
}

void
broker_msg_free(struct broker *b, struct msg *m)
{
	account_release(&b->accounts, &m->charge, NULL);
	msg_free(m);
}

/*
 * Takes m out of the broker and frees it; its sender, if it still waits,
 * gets err (0: nobody is answered).
 */
void
broker_withdraw(struct broker *b, struct msg *m, int err)
{
	if (m->state == MSG_INFLIGHT)
		peer_inflight_remove(m->holder, m);
	if (m->state == MSG_DELAYED)
		deadline_heap_remove(&b->delays, &m->delay);
	/* Gone for good from a durable mailbox: so on disk too. */
	broker_log_del(b, m);
	if (m->mbox != NULL)
		mailbox_drop(m->mbox, m);
	if (m->sender != NULL)
		broker_wait_end(b, m->sender, err, err != 0);
	broker_msg_free(b, m);
}

/*
 * A recycled buffer stays writable by its sender: only a receiver of the
 * sender's uid (or root) may map it.  Anyone else gets a sealed copy,
 * made once (a mailbox's mode may have changed since the send, or an
 * administrator bound it).
 */
static int
broker_fit_reader(const struct peer *p, struct msg *m)
{
	if (m->fd < 0 || !m->shared || p->uid == m->uid || p->uid == 0)
		return 0;
	return msg_make_private(m);
}

/*
 * May p be handed n more memfd messages?  Each passes a descriptor that
 * stays in the daemon's table, or in the kernel's books on its user,
 * until p reads it: the peer's protocol layer bounds them per connection
 * and per uid.
 */
static bool
broker_may_take_fds(struct peer *p, unsigned n)
{
	return p->ops->may_take_fds == NULL || p->ops->may_take_fds(p, n);
}

/*
 * mb's timer goes off at the earliest acknowledgement due of its timed
 * list.  Called when a due is added: one that goes away leaves the timer
 * early, never late, and broker_expire() sets it again.
 */
static void
broker_timer_arm(struct broker *b, struct mailbox *mb)
{
	uint64_t when = mailbox_next_due(mb);

	if (mb->timer.slot != SIZE_MAX && mb->timer.when <= when)
		return;
	deadline_heap_remove(&b->timers, &mb->timer);
	if (when != DEADLINE_NONE &&
	    deadline_heap_add(&b->timers, &mb->timer, when) < 0)
		log_warn("mailbox %s: no memory for its timer: messages due "
		    "there wait for the next one", mb->name);
}

static void
broker_take(struct broker *b, struct peer *p, struct msg *m, bool explicit_ack)
{
	struct mailbox *mb = m->mbox;

	/* An asynchronous sender parked on a full queue is done once taken. */
	if (m->state == MSG_PENDING && m->sender != NULL && !m->sender->sync)
		broker_send_done(b, m);
	mailbox_take(mb, m);
	peer_inflight_add(p, m);
	if (m->attempts < UINT32_MAX)
		m->attempts++;
	/* A crash now brings it back as a redelivery. */
	broker_log_hand(b, m);
	m->explicit_ack = explicit_ack;
	if (explicit_ack && mb->ack_timeout_ms > 0) {
		mailbox_time(mb, m, broker_now(b) + mb->ack_timeout_ms);
		broker_timer_arm(b, mb);
	}
}

static void
broker_deliver(struct broker *b, struct peer *p, uint32_t req, struct msg *m,
    bool more, bool explicit_ack)
{
	broker_take(b, p, m, explicit_ack);
	broker_log_flush(b, m->mbox);
	peer_handed(p, m);
	p->ops->deliver(p, req, m, more);
}

/*
 * m, given back by its holder after max_attempts deliveries, moves whole
 * to its mailbox's dead-letter mailbox, at the tail: its id, payload and
 * sender stay, and where it came from and how often it was delivered
 * there go with it.  A message whose sender still waits for it (a
 * synchronous send) is not moved: that sender's deadline decides.  When
 * the dead-letter mailbox is missing or full the message stays, said
 * once in the log.  True when moved.
 */
/* Has m, coming back, used up its attempts (and may it move)? */
static bool
broker_is_dead(const struct msg *m)
{
	const struct mailbox *mb = m->mbox;

	return mb->max_attempts > 0 && m->attempts >= mb->max_attempts &&
	    m->sender == NULL;
}

static bool
broker_dead_letter(struct broker *b, struct msg *m)
{
	struct mailbox *mb = m->mbox, *dl = NULL;
	const char *why = NULL;
	char *origin;

	if (!broker_is_dead(m))
		return false;
	if (broker_lookup_named(b, mb->dead_letter, mb->dead_letter_len,
	    &dl) < 0 || dl == mb)
		why = "does not exist";
	else if (dl->capacity == 0 || !mailbox_has_room(dl))
		why = "is full";
	else if ((origin = malloc(mb->name_len + 1)) == NULL)
		why = "cannot be reached (no memory)";
	if (why != NULL) {
		if (!m->dead_logged)
			log_warn("mailbox %s: message %llu reached "
			    "max_attempts (%u deliveries) but stays at the "
			    "head: its dead-letter mailbox %s %s", mb->name,
			    (unsigned long long)m->id, m->attempts,
			    mb->dead_letter, why);
		m->dead_logged = true;
		return false;
	}
	memcpy(origin, mb->name, mb->name_len + 1);
	broker_log_del(b, m);
	mailbox_drop(mb, m);
	mb->dead++;
	free(m->origin);
	m->origin = origin;
	m->origin_attempts = m->attempts;
	m->attempts = 0;
	m->dead_logged = false;
	m->holder = NULL;
	mailbox_add_queued(dl, m);
	/* Synced with the commit of this pass, as the DEL above. */
	if (dl->durable && !broker_log_put(b, dl, m))
		log_err("mailbox %s: out of memory: dead letter %llu is not "
		    "logged", dl->name, (unsigned long long)m->id);
	broker_pump(b, dl);
	return true;
}

struct msg *
broker_give_back(struct broker *b, struct msg *m, struct msg *after)
{
	struct mailbox *mb = m->mbox;

	if (m->state == MSG_DELAYED)
		deadline_heap_remove(&b->delays, &m->delay);
	if (broker_dead_letter(b, m))
		return after;
	/* A message delivered meanwhile is no place to insert after. */
	if (after != NULL && (after->state != MSG_QUEUED || after->mbox != mb))
		after = NULL;
	mailbox_return(mb, m, after);
	mb->redelivered++;
	return m;
}

/*
 * A durable mailbox's send moves from pending into staged: its PUT is
 * appended and its sender answered at the commit.  A staged send keeps
 * no deadline: the commit ends this turn of the loop, and a send that
 * timed out after its PUT was written would be on disk though it failed.
 */
static void
broker_stage(struct broker *b, struct mailbox *mb, struct msg *m)
{
	mailbox_stage_pending(mb);
	if (m->sender != NULL)
		deadline_heap_remove(&b->deadlines, &m->sender->deadline);
	if (!broker_log_put(b, mb, m))
		broker_withdraw(b, m, -ENOMEM);
}

/*
 * Wakes whatever the state of mb allows: waiting senders move into free
 * room, parked receives of the receiver take messages.
 */
void
broker_pump(struct broker *b, struct mailbox *mb)
{
	struct peer *rcv;
	struct wait *w;
	struct msg *m;
	int err;

	while (mailbox_has_room(mb) && (m = TAILQ_FIRST(&mb->pending)) != NULL) {
		if (mb->durable) {
			broker_stage(b, mb, m);
			continue;
		}
		mailbox_accept_pending(mb);
		if (m->sender != NULL && !m->sender->sync)
			broker_send_done(b, m);
	}
	rcv = mailbox_receiver(mb);
	if (rcv == NULL)
		return;
	while ((m = mailbox_head(mb)) != NULL &&
	    (w = broker_wait_find_recv(rcv, mb)) != NULL) {
		uint32_t req = w->req;
		bool w_explicit = w->explicit_ack;

		if (m->len > w->cap) {
			broker_wait_end(b, w, -EMSGSIZE, true);
			continue;
		}
		if (m->fd >= 0 && !broker_may_take_fds(rcv, 1)) {
			broker_wait_end(b, w, -EMFILE, true);
			continue;
		}
		err = broker_fit_reader(rcv, m);
		broker_wait_end(b, w, err, err != 0);
		if (err == 0)
			broker_deliver(b, rcv, req, m, false,
			    w_explicit);
	}
}

/*
 * One mailbox's part of the group commit: its appends written (and, with
 * sync "always" or when asked, synced), then its staged sends queued in
 * order and answered, its acknowledgements waiting for the commit
 * answered, and what that frees pumped.  On an error every staged send
 * fails with it (nothing of them stays on disk: the write was cut back,
 * or the mailbox is failed for good and answers EIO from now on).
 */
static int
broker_commit_mailbox(struct broker *b, struct mailbox *mb)
{
	struct journal *j = mb->journal;
	struct wait *w, *next;
	struct msg *m;
	int err;

	if (mb->dirty) {
		ptrvec_remove(&b->dirty, mb);
		mb->dirty = false;
	}
	if (j == NULL)
		err = -EIO;
	else if ((err = journal_write(j)) == 0 && b->sync_ms == 0)
		err = journal_sync(j);
	if (err != 0) {
		broker_log_error(mb, err);
		while ((m = TAILQ_FIRST(&mb->staged)) != NULL) {
			/* Its PUT is not on disk: no DEL either. */
			m->log_seq = 0;
			broker_withdraw(b, m, err);
		}
	} else {
		while ((m = mailbox_commit_staged(mb)) != NULL)
			broker_send_done(b, m);
	}
	/*
	 * The receives happened: their messages are gone from memory, and
	 * an error would tell the receiver nothing happened.  A DEL the
	 * disk refused can only bring a message back (the log is failed).
	 */
	for (w = TAILQ_FIRST(&b->commits); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (w->mbox == mb)
			broker_wait_end(b, w, 0, true);
	}
	broker_pump(b, mb);
	return err;
}

void
broker_commit(struct broker *b)
{
	b->last_commit = broker_staged(b);
	while (b->dirty.len > 0)
		(void)broker_commit_mailbox(b,
		    b->dirty.items[b->dirty.len - 1]);
}

size_t
broker_staged(const struct broker *b)
{
	size_t n = 0;

	for (size_t i = 0; i < b->dirty.len; i++)
		n += ((const struct mailbox *)b->dirty.items[i])->nstaged;
	return n;
}

bool
broker_commit_due(const struct broker *b)
{
	size_t staged;

	if (b->dirty.len == 0)
		return false;
	/* Only acknowledgements and the like: nobody else to wait for. */
	staged = broker_staged(b);
	return staged == 0 || staged >= b->last_commit;
}

void
broker_commit_waits_end(struct broker *b, struct peer *p)
{
	struct wait *w, *next;

	for (w = TAILQ_FIRST(&b->commits); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (w->peer == p)
			broker_wait_end(b, w, 0, false);
	}
}

/* True when a receive is parked on mb and would take a message now. */
static bool
broker_receiver_waits(struct mailbox *mb, size_t len)
{
	struct peer *rcv = mailbox_receiver(mb);
	struct wait *w;

	if (rcv == NULL || mailbox_head(mb) != NULL)
		return false;
	w = broker_wait_find_recv(rcv, mb);
	return w != NULL && w->cap >= len;
}

/*
 * What a message of len bytes from p costs: its bytes, one message, and
 * with a memfd one of the daemon's descriptors.  Checked against the
 * caps (flags 0) or taken from room reserved before (ACCOUNT_RESERVED).
 */
static int
broker_charge_msg(struct broker *b, struct peer *p, size_t len, bool fd,
    unsigned flags, struct charge *ch)
{
	const struct charge_amount cost = { .bytes = len, .msgs = 1,
	    .fds = fd ? 1 : 0 };

	if (broker_is_admin(b, p))
		flags |= ACCOUNT_EXEMPT;
	return account_charge(&b->accounts, ch, p->acct, &cost, flags);
}

/* m, from p, takes the charge made for it. */
static void
broker_stamp(struct peer *p, struct msg *m, const struct charge *ch)
{
	m->charge = *ch;
	m->sender_id = p->id;
	m->pid = (uint32_t)p->pid;
	m->uid = (uint32_t)p->uid;
}

int
broker_send(struct broker *b, struct peer *p, uint32_t req,
    struct broker_send *s)
{
	struct mailbox *mb = broker_lookup(b, s->name, s->name_len);
	bool sync = s->sync, room, zerocopy, durable, copy_fd;
	struct charge charge = { 0 };
	struct msg *m;
	struct wait *w = NULL;
	int err;

	if (mb == NULL)
		return proto_name_valid(s->name, s->name_len) ||
		    proto_direct_id(s->name, s->name_len) ? -ENOENT : -EINVAL;
	if (s->len > mb->max_msg || s->len > b->limits.max_msg)
		return -EMSGSIZE;
	if (!broker_may(b, p, mb, S_IWOTH))
		return -EACCES;
	if (s->shared && !broker_shared_ok(p, mb))
		return -EPERM;
	if (mb->durable) {
		/* Its log cannot be trusted: nothing more goes in. */
		if (mb->failed)
			return -EIO;
		/* Kept, or handed over: a send cannot be both. */
		if (s->sync)
			return -EINVAL;
		if (s->len > JOURNAL_PAYLOAD_MAX)
			return -EMSGSIZE;
	}
	durable = mb->durable;
	/* Into a durable mailbox a memfd's payload is copied: it is logged. */
	copy_fd = durable && s->fd >= 0;
	zerocopy = s->fd >= 0 && !copy_fd;
	/* Memory (ENOBUFS), messages (ENOBUFS), descriptors (EMFILE). */
	if ((err = broker_charge_msg(b, p, s->len, zerocopy, 0,
	    &charge)) < 0)
		return err;
	if (mb->capacity == 0)
		sync = true;
	room = mailbox_has_room(mb) && TAILQ_EMPTY(&mb->pending);
	if (s->timeout_ms == 0 &&
	    (sync ? !broker_receiver_waits(mb, s->len) : !room)) {
		account_release(&b->accounts, &charge, NULL);
		return -EAGAIN;
	}
	if (copy_fd)
		m = msg_new_copy_memfd(b->next_msg_id, s->fd, s->len, s->shared,
		    &err);
	else if (s->fd >= 0)
		m = msg_new_fd(b->next_msg_id, s->fd, s->len, s->shared);
	else
		m = msg_new(b->next_msg_id, s->data, s->len);
	if (m == NULL) {
		account_release(&b->accounts, &charge, NULL);
		return copy_fd ? err : -ENOMEM;
	}
	if (copy_fd)
		close(s->fd);
	s->fd = -1;
	/* A batch's send (req 0) cannot wait for the commit: it has its own. */
	if (sync || !room || (durable && req != 0)) {
		/*
		 * The parked call's cost is judged on what the uid held
		 * without this message, as the message was judged without the
		 * call: each must fit on its own.  The message's charge, just
		 * checked, is taken back unchecked once the call is parked.
		 */
		account_release(&b->accounts, &charge, NULL);
		/*
		 * Timeout 0 and a receive parked for it: the receiver has
		 * BROKER_SYNC_NOW_MS to acknowledge, then the message is
		 * withdrawn (its ACK comes back STALE) and the send fails.
		 */
		w = broker_wait_new(b, p, WAIT_SEND, req, durable && room ? 0 :
		    s->timeout_ms == 0 ? BROKER_SYNC_NOW_MS : s->timeout_ms,
		    &err);
		if (w == NULL) {
			/* Give the descriptor back: an error changed nothing. */
			s->fd = m->fd;
			m->fd = -1;
			msg_free(m);
			return err;
		}
		(void)broker_charge_msg(b, p, s->len, zerocopy,
		    ACCOUNT_RESERVED, &charge);
		w->msg = m;
		w->sync = sync;
		w->nonblock = s->timeout_ms == 0;
		m->sender = w;
	}
	b->next_msg_id++;
	broker_stamp(p, m, &charge);
	if (durable && room) {
		mailbox_add_staged(mb, m);
		if (!broker_log_put(b, mb, m)) {
			if (w == NULL) {
				broker_withdraw(b, m, 0);
				return -ENOMEM;
			}
			broker_withdraw(b, m, -ENOMEM);
			return BROKER_PARKED;
		}
		/* A batch's send: committed now, on its own. */
		if (w == NULL && (err = broker_commit_mailbox(b, mb)) < 0)
			return err;
	} else if (room)
		mailbox_add_queued(mb, m);
	else
		mailbox_add_pending(mb, m);
	if (w == NULL && !durable)
		mb->sent++;
	broker_pump(b, mb);
	if (w != NULL)
		return BROKER_PARKED;
	s->mailbox_id = mb->id;
	s->max_msg = mb->max_msg < b->limits.max_msg ? mb->max_msg :
	    b->limits.max_msg;
	/* A sender that no longer asks for credit gives back what it had. */
	if (s->want_credit) {
		credit_refill(b, p, mb, s->len, zerocopy, &s->credit_count,
		    &s->credit_bytes, &s->credit_zerocopy);
		/* Told afresh with every grant, as the rule stands now. */
		s->credit_shared = credit_tell_shared(p, mb,
		    broker_shared_ok(p, mb));
	}
	else if (!zerocopy && req != 0)
		credit_release(b, p, mb);
	return 0;
}

unsigned
broker_withdraw_room(struct broker *b, struct peer *p, const char *name,
    size_t len)
{
	struct mailbox *mb = broker_lookup(b, name, len);
	unsigned n = 0;

	if (mb == NULL || mb->capacity <= 0 || mb->reserved == 0 ||
	    mailbox_has_room(mb))
		return 0;
	for (size_t i = 0; i < mb->grants.len; i++) {
		struct grant *g = mb->grants.items[i];

		if (g->peer != p && g->count > 0 && credit_withdraw(b, g))
			n++;
	}
	return n;
}

bool
broker_withdrawing(const struct broker *b)
{
	return credit_withdrawing(b);
}

void
broker_withdraw_end(struct broker *b)
{
	while (b->withdrawn.len > 0) {
		struct grant *g = b->withdrawn.items[0];
		struct mailbox *mb = g->mb;

		credit_release(b, g->peer, mb);
		/* The room is back: senders parked for it come in, in order. */
		broker_pump(b, mb);
	}
}

size_t
broker_sendv(struct broker *b, struct peer *p, struct broker_send *s,
    size_t n, int *err)
{
	size_t i;

	*err = 0;
	for (i = 0; i < n; i++) {
		struct mailbox *mb = broker_lookup(b, s[i].name, s[i].name_len);

		/* Only what completes now: nothing in a batch waits. */
		if (s[i].sync || (mb != NULL && mb->capacity == 0)) {
			*err = -EAGAIN;
			break;
		}
		s[i].timeout_ms = 0;
		if ((*err = broker_send(b, p, 0, &s[i])) != 0)
			break;
	}
	return i;
}

int
broker_post(struct broker *b, struct peer *p, uint64_t mailbox_id,
    const void *data, size_t len, int fd, bool shared)
{
	uint64_t max_post = credit_max_post(p, mailbox_id);
	struct charge charge = { 0 };
	struct mailbox *mb;
	struct msg *m;

	if (max_post != 0 && len > max_post) {
		if (fd >= 0)
			close(fd);
		return -EMSGSIZE;
	}
	if ((mb = credit_take(b, p, mailbox_id, len, fd >= 0)) == NULL) {
		if (fd >= 0)
			close(fd);
		return BROKER_POST_DROPPED;
	}
	/*
	 * The grant's room is the message's: this cannot fail but for memory.
	 */
	m = fd >= 0 ? msg_new_fd(b->next_msg_id, fd, len, shared) :
	    msg_new(b->next_msg_id, data, len);
	if (m == NULL) {
		if (fd >= 0)
			close(fd);
		log_err("client %llu: out of memory: a posted message is lost",
		    (unsigned long long)p->id);
		return 0;
	}
	/*
	 * A shared post is judged as a shared send would be, now.  A POST
	 * has no answer to carry EPERM, and one that fails the rule was
	 * written before its sender could know (the mode or owner changed
	 * since the grant; the REVOKE is on its way) or by a client that did
	 * not ask: either way it goes in as a sealed copy, and no receiver,
	 * root included, gets the writable buffer.
	 */
	if (m->shared && !broker_shared_ok(p, mb)) {
		int err = msg_make_private(m);

		if (err < 0) {
			log_err("client %llu: %s: a shared post is lost",
			    (unsigned long long)p->id, strerror(-err));
			msg_free(m);
			return 0;
		}
	}
	b->next_msg_id++;
	/* The room the grant held (released by credit_take()) is its. */
	(void)broker_charge_msg(b, p, len, m->fd >= 0, ACCOUNT_RESERVED,
	    &charge);
	broker_stamp(p, m, &charge);
	mailbox_add_queued(mb, m);
	mb->sent++;
	broker_pump(b, mb);
	return 0;
}

/*
 * The mailbox whose head p receives next: the oldest head among the
 * mailboxes p is bound to and its direct address.
 */
static struct mailbox *
broker_oldest(const struct peer *p)
{
	struct mailbox *best = p->direct;
	struct msg *bm = mailbox_head(p->direct);

	for (size_t i = 0; i < p->bound.len; i++) {
		struct mailbox *mb = p->bound.items[i];
		struct msg *m = mailbox_head(mb);

		if (m != NULL && (bm == NULL || m->id < bm->id)) {
			best = mb;
			bm = m;
		}
	}
	return best;
}

/* Which mailbox r names, and whether p may receive from it now. */
static int
broker_recv_source(struct broker *b, struct peer *p,
    const struct broker_recv *r, struct mailbox **out)
{
	struct mailbox *mb;

	if (r->name == NULL) {
		*out = broker_oldest(p);
		return 0;
	}
	mb = broker_lookup(b, r->name, r->name_len);
	if (mb == NULL)
		return proto_name_valid(r->name, r->name_len) ||
		    proto_direct_id(r->name, r->name_len) ? -ENOENT : -EINVAL;
	*out = mb;
	/* Its log was refused or failed: what it holds cannot be trusted. */
	if (mb->failed)
		return -EIO;
	if (mailbox_receiver(mb) == p)
		return 0;
	/* A standby's blocking or timed receive waits for the binding. */
	if (mb->owner == NULL && r->timeout_ms != 0 &&
	    mailbox_is_standby(mb, p))
		return BROKER_PARKED;
	return -EPERM;
}

/*
 * Hands p the head of mb and, up to r's count and budget, the messages
 * that follow it (from the same mailbox, or the next oldest for a
 * receive from any): one request, many messages, one write.
 */
static void
broker_recv_batch(struct broker *b, struct peer *p, uint32_t req,
    const struct broker_recv *r, struct mailbox *mb)
{
	struct msg *batch[BROKER_RECV_MAX];
	unsigned max = r->max < 1 ? 1 : r->max > BROKER_RECV_MAX ?
	    BROKER_RECV_MAX : r->max;
	uint64_t total = 0;
	size_t n = 0, nfds = 0;
	struct msg *m;

	/*
	 * The budget bounds the inline bytes the client holds for later
	 * receives; a memfd message holds a descriptor there, not its payload
	 * (at most BROKER_RECV_MAX_FDS of them).
	 */
	while (n < max && (m = mailbox_head(mb)) != NULL && m->len <= r->cap &&
	    (n == 0 || (m->fd >= 0 ? 0 : m->len) <= r->budget - total)) {
		/* Each descriptor is held by the connection until written. */
		if (m->fd >= 0 && (nfds++ == BROKER_RECV_MAX_FDS ||
		    !broker_may_take_fds(p, (unsigned)nfds)))
			break;
		if (broker_fit_reader(p, m) < 0)
			break;
		/* A sync sender waits for this very receive: send it alone. */
		if (n > 0 && m->sender != NULL && m->sender->sync)
			break;
		total += m->fd >= 0 ? 0 : m->len;
		broker_take(b, p, m, r->explicit_ack);
		batch[n++] = m;
		if (m->sender != NULL && m->sender->sync)
			break;
		if (r->name == NULL)
			mb = broker_oldest(p);
		if (total > r->budget)
			break;
	}
	for (size_t i = 0; i < n; i++)
		broker_log_flush(b, batch[i]->mbox);
	for (size_t i = 0; i < n; i++) {
		peer_handed(p, batch[i]);
		p->ops->deliver(p, req, batch[i], i + 1 < n);
	}
}

int
broker_recv(struct broker *b, struct peer *p, uint32_t req,
    const struct broker_recv *r)
{
	struct mailbox *mb;
	struct msg *m = NULL;
	struct wait *w;
	int err = broker_recv_source(b, p, r, &mb);

	if (err < 0)
		return err;
	if (err == 0 && (m = mailbox_head(mb)) != NULL) {
		if (m->len > r->cap)
			return -EMSGSIZE;
		if (m->fd >= 0 && !broker_may_take_fds(p, 1))
			return -EMFILE;
		/* The batch always starts with this one: it must be sendable. */
		if ((err = broker_fit_reader(p, m)) < 0)
			return err;
		broker_recv_batch(b, p, req, r, mb);
		return 0;
	}
	if (r->timeout_ms == 0)
		return -EAGAIN;
	w = broker_wait_new(b, p, WAIT_RECV, req, r->timeout_ms, &err);
	if (w == NULL)
		return err;
	w->mbox = r->name != NULL ? mb : NULL;
	w->cap = r->cap;
	w->explicit_ack = r->explicit_ack;
	return BROKER_PARKED;
}

int
broker_ack(struct broker *b, struct peer *p, uint64_t msg_id)
{
	struct msg *m = peer_inflight_find(p, msg_id);
	struct mailbox *mb;

	if (m == NULL)
		return -ESTALE;
	mb = m->mbox;
	mb->received++;
	if (m->sender != NULL)
		broker_send_done(b, m);
	broker_withdraw(b, m, 0);
	broker_pump(b, mb);
	return 0;
}

int
broker_ack_reply(struct broker *b, struct peer *p, uint64_t msg_id,
    uint32_t req)
{
	struct msg *m = peer_inflight_find(p, msg_id);
	struct mailbox *mb;
	struct wait *w;
	int err;

	if (m == NULL || !m->mbox->durable || m->log_seq == 0)
		return broker_ack(b, p, msg_id);
	mb = m->mbox;
	(void)broker_ack(b, p, msg_id);
	/* Answered when the DEL is on disk; now, if no call can be parked. */
	if ((w = broker_wait_new(b, p, WAIT_COMMIT, req, 0, &err)) == NULL)
		return broker_commit_mailbox(b, mb);
	w->mbox = mb;
	return BROKER_PARKED;
}

void
broker_consumed(struct broker *b, struct peer *p, uint64_t upto)
{
	struct mailbox *last = NULL;
	struct msg *m;

	if (upto > p->delivered + 1)
		upto = p->delivered + 1;
	if (upto <= p->consumed)
		return;
	p->consumed = upto;
	/* One pump per run of one mailbox's messages, as for due delays. */
	while ((m = TAILQ_FIRST(&p->stored)) != NULL && m->seq < upto) {
		if (last != NULL && m->mbox != last)
			broker_pump(b, last);
		last = m->mbox;
		last->received++;
		broker_withdraw(b, m, 0);
	}
	if (last != NULL)
		broker_pump(b, last);
}

bool
broker_has_stored(const struct peer *p)
{
	return !TAILQ_EMPTY(&p->stored);
}

bool
broker_sends_wait(const struct broker *b)
{
	return b->send_waits > 0;
}

bool
broker_msg_delay(struct broker *b, struct msg *m, uint64_t due)
{
	/*
	 * A delay is a node in one heap for the daemon: O(log n) whatever
	 * the order of the delays a client asks for.  With no memory for
	 * it the message goes back now (logged): never held for ever.
	 */
	deadline_node_init(&m->delay);
	if (deadline_heap_add(&b->delays, &m->delay, due) == 0) {
		mailbox_delay(m->mbox, m);
		return true;
	}
	log_warn("mailbox %s: no memory to delay message %llu: it goes back "
	    "now", m->mbox->name, (unsigned long long)m->id);
	return false;
}

int
broker_nack(struct broker *b, struct peer *p, uint64_t msg_id,
    uint32_t delay_ms)
{
	struct msg *m = peer_inflight_find(p, msg_id);
	struct mailbox *mb;

	if (m == NULL)
		return -ESTALE;
	mb = m->mbox;
	peer_inflight_remove(p, m);
	/*
	 * A delay is a node in one heap for the daemon: O(log n) whatever
	 * the order of the delays a client asks for.  With no memory for
	 * it the message goes back now (logged): never held for ever.
	 */
	if (delay_ms > 0 && !broker_is_dead(m) &&
	    broker_msg_delay(b, m, broker_now(b) + delay_ms))
		return 0;
	(void)broker_give_back(b, m, NULL);
	broker_pump(b, mb);
	return 0;
}

/*
 * mb's timer went off: in-flight messages whose holder let the
 * acknowledgement timeout pass go back to the head of the queue, in
 * their order.  The holder's acknowledgements
 * written before now are applied first (settle), and it is told
 * (takeback) before the message goes: an mbx_ack() that returned before
 * this point stays done, one after it fails.
 */
static void
broker_mailbox_due(struct broker *b, struct mailbox *mb, uint64_t now)
{
	struct msg *m, *after = NULL;

	while ((m = TAILQ_FIRST(&mb->timed)) != NULL && m->due <= now) {
		struct peer *p = m->holder;
		uint64_t id = m->id;

		if (p->ops->settle != NULL) {
			p->ops->settle(p);
			m = peer_inflight_find(p, id);
			if (m == NULL || m->mbox != mb || !m->timed)
				continue;
		}
		peer_inflight_remove(p, m);
		if (p->ops->takeback != NULL)
			p->ops->takeback(p, mb, id);
		after = broker_give_back(b, m, after);
	}
	broker_pump(b, mb);
	broker_timer_arm(b, mb);
}

/*
 * Delayed messages now due go back to the head of their mailboxes.  They
 * come out of the heap in due order; a run of them from one mailbox
 * keeps that order at the head (each goes after the one before).
 */
static void
broker_delays_due(struct broker *b, uint64_t now)
{
	struct msg *after = NULL;
	struct mailbox *last = NULL;
	struct deadline *d;

	while ((d = deadline_heap_first(&b->delays)) != NULL && d->when <= now) {
		struct msg *m = (struct msg *)((char *)d -
		    offsetof(struct msg, delay));
		struct mailbox *mb = m->mbox;

		if (mb != last && last != NULL)
			broker_pump(b, last);
		after = broker_give_back(b, m, mb == last ? after : NULL);
		last = mb;
	}
	if (last != NULL)
		broker_pump(b, last);
}

/* A parked call's deadline passed. */
static void
broker_timeout(struct broker *b, struct wait *w)
{
	struct mailbox *mb;

	if (w->kind == WAIT_RECV) {
		broker_wait_end(b, w, -ETIMEDOUT, true);
		return;
	}
	/* A withdrawn message may have held a queue slot: wake the next. */
	mb = w->msg->mbox;
	broker_withdraw(b, w->msg, w->nonblock ? -EAGAIN : -ETIMEDOUT);
	broker_pump(b, mb);
}

void
broker_expire(struct broker *b, uint64_t now)
{
	struct wait *w;
	struct deadline *d;

	while ((w = broker_wait_expired(b, now)) != NULL)
		broker_timeout(b, w);
	while ((d = deadline_heap_first(&b->timers)) != NULL && d->when <= now) {
		struct mailbox *mb = (struct mailbox *)((char *)d -
		    offsetof(struct mailbox, timer));

		deadline_heap_remove(&b->timers, d);
		broker_mailbox_due(b, mb, now);
	}
	broker_delays_due(b, now);
}
