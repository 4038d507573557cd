/*
 * broker.c - mailbox semantics: sends, receives, bindings and every way a
 * parked call ends (see broker.h).
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
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "broker.h"
#include "credit.h"
#include "log.h"
#include "mailbox.h"
#include "proto.h"

static uint64_t
monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct broker *
broker_new(const struct broker_limits *limits)
{
	struct broker *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->limits.max_memory = BROKER_DEFAULT_MAX_MEMORY;
	b->limits.max_msg = PROTO_MAX_PAYLOAD;
	if (limits != NULL)
		broker_set_limits(b, limits);
	table_init(&b->mailboxes);
	accounts_init(&b->accounts);
	TAILQ_INIT(&b->peers);
	deadline_heap_init(&b->deadlines);
	b->next_peer_id = 1;
	b->next_mailbox_id = 1;
	b->next_msg_id = 1;
	b->clock = monotonic_ms;
	return b;
}

void
broker_set_limits(struct broker *b, const struct broker_limits *l)
{
	struct broker_limits *n = &b->limits;

	*n = *l;
	if (n->max_memory == 0)
		n->max_memory = BROKER_DEFAULT_MAX_MEMORY;
	if (n->max_msg == 0)
		n->max_msg = PROTO_MAX_PAYLOAD;
	if (n->max_msg > BROKER_MAX_MSG_LIMIT)
		n->max_msg = BROKER_MAX_MSG_LIMIT;
	if (n->max_bytes_per_uid == 0)
		n->max_bytes_per_uid = n->max_memory / 2;
	if (n->max_connections == 0)
		n->max_connections = BROKER_DEFAULT_MAX_CONNECTIONS;
	if (n->max_connections_per_uid == 0)
		n->max_connections_per_uid =
		    BROKER_DEFAULT_MAX_CONNECTIONS_PER_UID;
	if (n->max_mailboxes_per_uid == 0)
		n->max_mailboxes_per_uid = BROKER_DEFAULT_MAX_MAILBOXES_PER_UID;
	if (n->max_pending_per_connection == 0)
		n->max_pending_per_connection = BROKER_DEFAULT_MAX_PENDING;
	if (n->max_standby_per_mailbox == 0)
		n->max_standby_per_mailbox = BROKER_DEFAULT_MAX_STANDBY;
	if (n->nadmin_gids > sizeof(n->admin_gids) / sizeof(n->admin_gids[0]))
		n->nadmin_gids = sizeof(n->admin_gids) / sizeof(n->admin_gids[0]);
}

bool
broker_is_admin(const struct broker *b, const struct peer *p)
{
	if (p == NULL || p->uid == 0)
		return true;
	for (size_t i = 0; i < b->limits.nadmin_gids; i++)
		if (peer_in_group(p, b->limits.admin_gids[i]))
			return true;
	return false;
}

/*
 * May p do what bit (S_IWOTH: send, S_IROTH: bind and receive) asks of
 * mb?  The owner's, the group's or the others' bits apply, as for a file.
 */
static bool
broker_may(const struct broker *b, const struct peer *p,
    const struct mailbox *mb, mode_t bit)
{
	if (mb->owner != NULL)
		return bit == S_IWOTH || mb->owner == p;
	if (broker_is_admin(b, p))
		return true;
	if (p->uid == mb->uid)
		return (mb->mode & (bit << 6)) != 0;
	if (peer_in_group(p, mb->gid))
		return (mb->mode & (bit << 3)) != 0;
	return (mb->mode & bit) != 0;
}

static void broker_set_owner(struct broker *, struct mailbox *, uid_t, gid_t);
static void broker_charge(struct broker *, struct peer *, struct msg *);
static void broker_mailbox_free(struct broker *, struct mailbox *);

/* Owner-only operations: destroy, purge, chmod, rebind, evict. */
static bool
broker_owns(const struct broker *b, const struct peer *p,
    const struct mailbox *mb)
{
	return broker_is_admin(b, p) || p->uid == mb->uid;
}

uint64_t
broker_now(const struct broker *b)
{
	return b->clock();
}

static void
broker_msg_free(struct broker *b, struct msg *m)
{
	b->mem_used -= m->len;
	if (m->acct != NULL) {
		m->acct->bytes -= m->len;
		account_put(&b->accounts, m->acct);
	}
	msg_free(m);
}

/* Frees a mailbox's messages; their senders are answered by the caller. */
static void
broker_mailbox_free(struct broker *b, struct mailbox *mb)
{
	struct msg *m;

	while ((m = TAILQ_FIRST(&mb->queue)) != NULL) {
		mailbox_drop(mb, m);
		broker_msg_free(b, m);
	}
	while ((m = TAILQ_FIRST(&mb->pending)) != NULL) {
		mailbox_drop(mb, m);
		broker_msg_free(b, m);
	}
	if (mb->acct != NULL) {
		mb->acct->mailboxes--;
		account_put(&b->accounts, mb->acct);
	}
	mailbox_free(mb);
}

void
broker_free(struct broker *b)
{
	struct mailbox *mb;
	size_t pos = 0;

	if (b == NULL)
		return;
	while ((mb = table_next(&b->mailboxes, &pos)) != NULL)
		broker_mailbox_free(b, mb);
	table_deinit(&b->mailboxes);
	deadline_heap_deinit(&b->deadlines);
	accounts_deinit(&b->accounts);
	free(b);
}

static struct mailbox *
broker_lookup(const struct broker *b, const char *name, size_t len)
{
	return table_get(&b->mailboxes, name, len);
}

/* Looks up a named (not direct) mailbox: -EINVAL, -ENOENT or 0. */
static int
broker_lookup_named(const struct broker *b, const char *name, size_t len,
    struct mailbox **out)
{
	if (!proto_name_valid(name, len))
		return -EINVAL;
	*out = broker_lookup(b, name, len);
	return *out != NULL ? 0 : -ENOENT;
}

/*
 * Parked calls.
 */

/* A parked call; NULL with *err set when p may park no more. */
static struct wait *
wait_new(struct broker *b, struct peer *p, enum wait_kind kind, uint32_t req,
    int timeout_ms, int *err)
{
	struct wait *w;

	*err = -EDQUOT;
	if (p->nwaits >= b->limits.max_pending_per_connection)
		return NULL;
	*err = -ENOMEM;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->kind = kind;
	w->peer = p;
	w->req = req;
	deadline_node_init(&w->deadline);
	if (timeout_ms > 0 && deadline_heap_add(&b->deadlines, &w->deadline,
	    broker_now(b) + (uint64_t)timeout_ms) < 0) {
		free(w);
		return NULL;
	}
	if (kind == WAIT_SEND)
		TAILQ_INSERT_TAIL(&p->sends, w, entry);
	else
		TAILQ_INSERT_TAIL(&p->recvs, w, entry);
	p->nwaits++;
	return w;
}

/* Unparks w; answers its caller with err unless err is 0 and quiet. */
static void
wait_end(struct broker *b, struct wait *w, int err, bool answer)
{
	struct peer *p = w->peer;

	deadline_heap_remove(&b->deadlines, &w->deadline);
	p->nwaits--;
	if (w->kind == WAIT_SEND) {
		TAILQ_REMOVE(&p->sends, w, entry);
		if (w->msg != NULL)
			w->msg->sender = NULL;
	} else {
		TAILQ_REMOVE(&p->recvs, w, entry);
	}
	if (answer)
		p->ops->reply(p, w->req, err);
	free(w);
}

/* A send succeeded: count it and answer its sender if it waits. */
static void
broker_send_done(struct broker *b, struct msg *m)
{
	m->mbox->sent++;
	if (m->sender != NULL)
		wait_end(b, m->sender, 0, true);
}

/*
 * Takes m out of the broker and frees it; its sender, if it still waits,
 * gets err (0: nobody is answered).
 */
static void
broker_withdraw(struct broker *b, struct msg *m, int err)
{
	if (m->state == MSG_INFLIGHT)
		peer_inflight_remove(m->holder, m);
	if (m->mbox != NULL)
		mailbox_drop(m->mbox, m);
	if (m->sender != NULL)
		wait_end(b, m->sender, err, err != 0);
	broker_msg_free(b, m);
}

/* The peer that receives from mb: its owner for a direct address. */
static struct peer *
mailbox_receiver(const struct mailbox *mb)
{
	return mb->owner != NULL ? mb->owner : mb->receiver;
}

/* The first receive parked by p that a message of mb may answer. */
static struct wait *
broker_find_recv(struct peer *p, const struct mailbox *mb)
{
	struct wait *w;

	TAILQ_FOREACH(w, &p->recvs, entry)
		if (w->mbox == mb || w->mbox == NULL)
			return w;
	return NULL;
}

/*
 * Hands m to p (answering req, with more to follow or not): m is in
 * flight until acknowledged.
 */
static void
broker_take(struct broker *b, struct peer *p, struct msg *m)
{
	/* An asynchronous sender parked on a full queue is done once taken. */
	if (m->state == MSG_PENDING && m->sender != NULL && !m->sender->sync)
		broker_send_done(b, m);
	mailbox_take(m->mbox, m);
	peer_inflight_add(p, m);
}

static void
broker_deliver(struct broker *b, struct peer *p, uint32_t req, struct msg *m,
    bool more)
{
	broker_take(b, p, m);
	p->ops->deliver(p, req, m, more);
}

/*
 * Wakes whatever the state of mb allows: waiting senders move into free
 * room, parked receives of the receiver take messages.
 */
static void
broker_pump(struct broker *b, struct mailbox *mb)
{
	struct peer *rcv;
	struct wait *w;
	struct msg *m;

	while (mailbox_has_room(mb) && (m = TAILQ_FIRST(&mb->pending)) != NULL) {
		mailbox_accept_pending(mb);
		if (m->sender != NULL && !m->sender->sync)
			broker_send_done(b, m);
	}
	rcv = mailbox_receiver(mb);
	if (rcv == NULL)
		return;
	while ((m = mailbox_head(mb)) != NULL &&
	    (w = broker_find_recv(rcv, mb)) != NULL) {
		uint32_t req = w->req;

		if (m->len > w->cap) {
			wait_end(b, w, -EMSGSIZE, true);
			continue;
		}
		wait_end(b, w, 0, false);
		broker_deliver(b, rcv, req, m, false);
	}
}

/*
 * Messages mb handed to its receiver p and that p has not acknowledged go
 * back to the head of the queue, in their order (at-least-once delivery).
 */
static void
broker_return_inflight(struct broker *b, struct peer *p, struct mailbox *mb)
{
	struct msg *m, *prev;

	for (m = TAILQ_LAST(&p->inflight, msg_list); m != NULL; m = prev) {
		prev = TAILQ_PREV(m, msg_list, entry);
		if (m->mbox != mb)
			continue;
		peer_inflight_remove(p, m);
		mailbox_return(mb, m);
		/* A sender that would not wait cannot wait for a redelivery. */
		if (m->sender != NULL && m->sender->nonblock)
			broker_withdraw(b, m, -EAGAIN);
	}
}

/* Ends p's receives parked on mb (not those on "any") with err. */
static void
broker_fail_recvs(struct broker *b, struct peer *p, struct mailbox *mb,
    int err)
{
	struct wait *w, *next;

	for (w = TAILQ_FIRST(&p->recvs); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (w->mbox == mb)
			wait_end(b, w, err, err != 0);
	}
}

/* The receiver of mb loses the binding (unbind, replace, rebind, gone). */
static void
broker_drop_receiver(struct broker *b, struct mailbox *mb, int err)
{
	struct peer *p = mb->receiver;

	if (p == NULL)
		return;
	mb->receiver = NULL;
	ptrvec_remove(&p->bound, mb);
	broker_fail_recvs(b, p, mb, err);
	broker_return_inflight(b, p, mb);
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
static void
broker_promote(struct broker *b, struct mailbox *mb)
{
	struct peer *p;

	while (mb->receiver == NULL && (p = mailbox_standby_pop(mb)) != NULL) {
		ptrvec_remove(&p->standing, mb);
		if (broker_set_receiver(b, mb, p) < 0)
			broker_fail_recvs(b, p, mb, -ENOMEM);
	}
}

/* Removes p from the standbys of mb, failing its receives there. */
static void
broker_drop_standby(struct broker *b, struct mailbox *mb, struct peer *p,
    int err)
{
	mailbox_standby_remove(mb, p);
	ptrvec_remove(&p->standing, mb);
	broker_fail_recvs(b, p, mb, err);
}

/*
 * Peers.
 */

int
broker_peer_add(struct broker *b, struct peer *p, const struct peer_ops *ops,
    void *ctx)
{
	char name[32];
	int len;

	if (b->npeers >= b->limits.max_connections)
		return -ENOBUFS;
	if ((p->acct = account_get(&b->accounts, p->uid)) == NULL)
		return -ENOMEM;
	if (p->acct->connections >= b->limits.max_connections_per_uid &&
	    !broker_is_admin(b, p)) {
		account_put(&b->accounts, p->acct);
		return -EDQUOT;
	}
	p->id = b->next_peer_id;
	p->ops = ops;
	p->ctx = ctx;
	len = snprintf(name, sizeof(name), "@%llu", (unsigned long long)p->id);
	p->direct = mailbox_new(name, (size_t)len, -1, b->limits.max_msg);
	if (p->direct == NULL || table_put(&b->mailboxes, p->direct->name,
	    p->direct->name_len, p->direct) < 0) {
		mailbox_free(p->direct);
		account_put(&b->accounts, p->acct);
		return -ENOMEM;
	}
	p->direct->owner = p;
	p->direct->id = b->next_mailbox_id++;
	p->direct->uid = p->uid;
	p->direct->gid = p->gid;
	p->acct->connections++;
	b->next_peer_id++;
	TAILQ_INSERT_TAIL(&b->peers, p, entry);
	b->npeers++;
	return 0;
}

struct peer *
broker_peer_find(const struct broker *b, uint64_t id)
{
	char name[32];
	int len = snprintf(name, sizeof(name), "@%llu", (unsigned long long)id);
	struct mailbox *mb = broker_lookup(b, name, (size_t)len);

	return mb != NULL ? mb->owner : NULL;
}

/* Ends every call waiting on mb with err and frees mb and its messages. */
static void
broker_mailbox_close(struct broker *b, struct mailbox *mb, int err)
{
	struct peer *rcv = mailbox_receiver(mb);
	struct msg *m, *next;

	table_del(&b->mailboxes, mb->name, mb->name_len);
	/* Whoever may hold credit or messages ahead of calls forgets them. */
	for (size_t i = 0; err != 0 && i < mb->grants.len; i++) {
		struct grant *g = mb->grants.items[i];

		if (g->peer != mb->owner)
			g->peer->ops->revoke(g->peer, mb, PROTO_REVOKE_GONE);
	}
	credit_release_mailbox(b, mb);
	if (rcv != NULL && rcv != mb->owner && err != 0)
		rcv->ops->revoke(rcv, mb, PROTO_REVOKE_GONE);
	while (mb->standby.len > 0)
		broker_drop_standby(b, mb, mb->standby.items[0], err);
	if (rcv != NULL) {
		broker_fail_recvs(b, rcv, mb, err);
		for (m = TAILQ_FIRST(&rcv->inflight); m != NULL; m = next) {
			next = TAILQ_NEXT(m, entry);
			if (m->mbox == mb)
				broker_withdraw(b, m, err);
		}
		if (mb->receiver != NULL)
			ptrvec_remove(&rcv->bound, mb);
	}
	TAILQ_FOREACH(m, &mb->queue, entry)
		if (m->sender != NULL)
			wait_end(b, m->sender, err, true);
	TAILQ_FOREACH(m, &mb->pending, entry)
		if (m->sender != NULL)
			wait_end(b, m->sender, err, true);
	broker_mailbox_free(b, mb);
}

void
broker_peer_remove(struct broker *b, struct peer *p)
{
	struct wait *w;

	/* Receives first, so that no pump below hands p a message. */
	while ((w = TAILQ_FIRST(&p->recvs)) != NULL)
		wait_end(b, w, 0, false);
	while ((w = TAILQ_FIRST(&p->sends)) != NULL) {
		struct mailbox *mb = w->msg->mbox;

		broker_withdraw(b, w->msg, 0);
		broker_pump(b, mb);
	}
	while (p->bound.len > 0) {
		struct mailbox *mb = p->bound.items[0];

		broker_drop_receiver(b, mb, 0);
		broker_promote(b, mb);
	}
	while (p->standing.len > 0)
		broker_drop_standby(b, p->standing.items[0], p, 0);
	credit_release_peer(b, p);
	/* Whatever is left in flight came from the direct address. */
	broker_mailbox_close(b, p->direct, -EIDRM);
	p->direct = NULL;
	TAILQ_REMOVE(&b->peers, p, entry);
	b->npeers--;
	p->acct->connections--;
	account_put(&b->accounts, p->acct);
	peer_deinit(p);
}

/*
 * Mailboxes and bindings.
 */

/* Checks the attributes a creator asks for; 0 or -errno. */
static int
broker_check_attr(const struct broker *b, const struct peer *p,
    const struct broker_attr *a)
{
	if (a->capacity < -1 || a->max_msg > b->limits.max_msg ||
	    (a->mode & ~(uint32_t)0777) != 0)
		return -EINVAL;
	/* Like chgrp: a group the creator belongs to, unless an admin. */
	if (p != NULL && a->gid != (gid_t)-1 && !peer_in_group(p, a->gid) &&
	    !broker_is_admin(b, p))
		return -EPERM;
	return 0;
}

int
broker_create(struct broker *b, struct peer *p, const char *name, size_t len,
    const struct broker_attr *a)
{
	struct mailbox *mb;
	uint64_t max_msg = a->max_msg;
	int err;

	if (!proto_name_valid(name, len))
		return -EINVAL;
	if ((err = broker_check_attr(b, p, a)) < 0)
		return err;
	if (broker_lookup(b, name, len) != NULL)
		return -EEXIST;
	if (max_msg == 0)
		max_msg = BROKER_DEFAULT_MAX_MSG < b->limits.max_msg ?
		    BROKER_DEFAULT_MAX_MSG : b->limits.max_msg;
	mb = mailbox_new(name, len, a->capacity, (size_t)max_msg);
	if (mb == NULL)
		return -ENOMEM;
	mb->id = b->next_mailbox_id++;
	mb->uid = p != NULL ? p->uid : a->uid;
	mb->gid = a->gid != (gid_t)-1 ? a->gid : p != NULL ? p->gid : 0;
	mb->mode = a->mode != 0 ? a->mode : BROKER_DEFAULT_MODE;
	if ((mb->acct = account_get(&b->accounts, mb->uid)) == NULL) {
		mailbox_free(mb);
		return -ENOMEM;
	}
	if (p != NULL && mb->acct->mailboxes >=
	    b->limits.max_mailboxes_per_uid && !broker_is_admin(b, p)) {
		broker_mailbox_free(b, mb);
		return -EDQUOT;
	}
	mb->acct->mailboxes++;
	if (table_put(&b->mailboxes, mb->name, mb->name_len, mb) < 0) {
		broker_mailbox_free(b, mb);
		return -ENOMEM;
	}
	b->nnamed++;
	return 0;
}

int
broker_declare(struct broker *b, const char *name, size_t len,
    const struct broker_attr *a)
{
	struct mailbox *mb = broker_lookup(b, name, len);
	uint64_t max_msg = a->max_msg;
	int err;

	if (mb == NULL) {
		err = broker_create(b, NULL, name, len, a);
		return err < 0 ? err : BROKER_CREATED;
	}
	if (mb->owner != NULL || (err = broker_check_attr(b, NULL, a)) < 0)
		return mb->owner != NULL ? -EINVAL : err;
	if (max_msg == 0)
		max_msg = mb->max_msg;
	if (mb->capacity == a->capacity && mb->max_msg == max_msg &&
	    mb->uid == a->uid && mb->gid == a->gid &&
	    mb->mode == (a->mode != 0 ? a->mode : BROKER_DEFAULT_MODE))
		return 0;
	mb->capacity = a->capacity;
	mb->max_msg = (size_t)max_msg;
	mb->mode = a->mode != 0 ? a->mode : BROKER_DEFAULT_MODE;
	broker_set_owner(b, mb, a->uid, a->gid);
	/* More room may let waiting senders in. */
	broker_pump(b, mb);
	return BROKER_CHANGED;
}

/* Looks up a named mailbox that p owns (or administers). */
static int
broker_lookup_owned(const struct broker *b, const struct peer *p,
    const char *name, size_t len, struct mailbox **out)
{
	int err = broker_lookup_named(b, name, len, out);

	if (err == 0 && p != NULL && !broker_owns(b, p, *out))
		return -EACCES;
	return err;
}

int
broker_destroy(struct broker *b, struct peer *p, const char *name, size_t len)
{
	struct mailbox *mb;
	int err = broker_lookup_owned(b, p, name, len, &mb);

	if (err < 0)
		return err;
	broker_mailbox_close(b, mb, -EIDRM);
	b->nnamed--;
	return 0;
}

int
broker_purge(struct broker *b, struct peer *p, const char *name, size_t len)
{
	struct mailbox *mb;
	struct msg *m, *next;
	int err = broker_lookup_owned(b, p, name, len, &mb);

	if (err < 0)
		return err;
	/* Only accepted messages: a waiting sender's is not yet queued. */
	for (m = TAILQ_FIRST(&mb->queue); m != NULL; m = next) {
		next = TAILQ_NEXT(m, entry);
		broker_withdraw(b, m, -EIDRM);
	}
	broker_pump(b, mb);
	return 0;
}

int
broker_chmod(struct broker *b, struct peer *p, const char *name, size_t len,
    uint32_t mode)
{
	struct mailbox *mb;
	int err = broker_lookup_owned(b, p, name, len, &mb);

	if (err < 0)
		return err;
	if ((mode & ~(uint32_t)0777) != 0)
		return -EINVAL;
	mb->mode = mode;
	return 0;
}

/* Moves mb's ownership (and its charge) to uid. */
static void
broker_set_owner(struct broker *b, struct mailbox *mb, uid_t uid, gid_t gid)
{
	if (uid != mb->uid) {
		struct account *acct = account_get(&b->accounts, uid);

		/* Out of memory: keep the old charge rather than lose it. */
		if (acct != NULL) {
			mb->acct->mailboxes--;
			account_put(&b->accounts, mb->acct);
			mb->acct = acct;
			acct->mailboxes++;
		}
		mb->uid = uid;
	}
	mb->gid = gid;
}

int
broker_chown(struct broker *b, struct peer *p, const char *name, size_t len,
    uid_t uid, gid_t gid)
{
	struct mailbox *mb;
	int err = broker_lookup_owned(b, p, name, len, &mb);

	if (err < 0)
		return err;
	/* As for files: only an admin gives a mailbox away. */
	if (uid != (uid_t)-1 && uid != mb->uid && !broker_is_admin(b, p))
		return -EACCES;
	if (gid != (gid_t)-1 && !peer_in_group(p, gid) && !broker_is_admin(b, p))
		return -EACCES;
	broker_set_owner(b, mb, uid != (uid_t)-1 ? uid : mb->uid,
	    gid != (gid_t)-1 ? gid : mb->gid);
	return 0;
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

/*
 * Sending and receiving.
 */

/* True when a receive is parked on mb and would take a message now. */
static bool
broker_receiver_waits(struct mailbox *mb, size_t len)
{
	struct peer *rcv = mailbox_receiver(mb);
	struct wait *w;

	if (rcv == NULL || mailbox_head(mb) != NULL)
		return false;
	w = broker_find_recv(rcv, mb);
	return w != NULL && w->cap >= len;
}

int
broker_send(struct broker *b, struct peer *p, uint32_t req,
    struct broker_send *s)
{
	struct mailbox *mb = broker_lookup(b, s->name, s->name_len);
	bool sync = s->sync, room;
	struct msg *m;
	struct wait *w = NULL;

	if (mb == NULL)
		return proto_name_valid(s->name, s->name_len) ||
		    proto_direct_id(s->name, s->name_len) ? -ENOENT : -EINVAL;
	if (s->len > mb->max_msg || s->len > b->limits.max_msg)
		return -EMSGSIZE;
	if (!broker_may(b, p, mb, S_IWOTH))
		return -EACCES;
	/* A recycled buffer stays writable: only for the sender's own uid. */
	if (s->shared && (mb->uid != p->uid ||
	    (mb->owner == NULL && (mb->mode & 044) != 0)))
		return -EPERM;
	if (b->mem_used > b->limits.max_memory ||
	    s->len > b->limits.max_memory - b->mem_used)
		return -ENOBUFS;
	/* One uid's share of the memory: the rest stays for the others. */
	if (!broker_is_admin(b, p) &&
	    (p->acct->bytes > b->limits.max_bytes_per_uid ||
	    s->len > b->limits.max_bytes_per_uid - p->acct->bytes))
		return -ENOBUFS;
	if (mb->capacity == 0)
		sync = true;
	room = mailbox_has_room(mb) && TAILQ_EMPTY(&mb->pending);
	if (s->timeout_ms == 0 &&
	    (sync ? !broker_receiver_waits(mb, s->len) : !room))
		return -EAGAIN;
	m = s->fd >= 0 ? msg_new_fd(b->next_msg_id, s->fd, s->len, s->shared) :
	    msg_new(b->next_msg_id, s->data, s->len);
	if (m == NULL)
		return -ENOMEM;
	s->fd = -1;
	if (sync || !room) {
		int err;

		w = wait_new(b, p, WAIT_SEND, req, s->timeout_ms, &err);
		if (w == NULL) {
			/* Give the descriptor back: an error changed nothing. */
			s->fd = m->fd;
			m->fd = -1;
			msg_free(m);
			return err;
		}
		w->msg = m;
		w->sync = sync;
		w->nonblock = s->timeout_ms == 0;
		m->sender = w;
	}
	b->next_msg_id++;
	broker_charge(b, p, m);
	if (room)
		mailbox_add_queued(mb, m);
	else
		mailbox_add_pending(mb, m);
	if (w == NULL)
		mb->sent++;
	broker_pump(b, mb);
	if (w != NULL)
		return BROKER_PARKED;
	s->mailbox_id = mb->id;
	if (m->fd < 0 && s->want_credit)
		credit_refill(b, p, mb, s->len, &s->credit_count,
		    &s->credit_bytes);
	return 0;
}

/* Charges m (len bytes from p) to the memory accounts. */
static void
broker_charge(struct broker *b, struct peer *p, struct msg *m)
{
	b->mem_used += m->len;
	m->acct = p->acct;
	account_hold(m->acct);
	m->acct->bytes += m->len;
	m->sender_id = p->id;
	m->pid = (uint32_t)p->pid;
	m->uid = (uint32_t)p->uid;
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

void
broker_post(struct broker *b, struct peer *p, uint64_t mailbox_id,
    const void *data, size_t len)
{
	struct mailbox *mb = credit_take(b, p, mailbox_id, len);
	struct msg *m;

	if (mb == NULL)
		return;
	/* The grant's room is the message's: this cannot fail but for memory. */
	if ((m = msg_new(b->next_msg_id, data, len)) == NULL) {
		log_err("client %llu: out of memory: a posted message is lost",
		    (unsigned long long)p->id);
		return;
	}
	b->next_msg_id++;
	broker_charge(b, p, m);
	mailbox_add_queued(mb, m);
	mb->sent++;
	broker_pump(b, mb);
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
	size_t n = 0;
	struct msg *m;

	while (n < max && (m = mailbox_head(mb)) != NULL && m->len <= r->cap &&
	    (n == 0 || m->len <= r->budget - total)) {
		/* A sync sender waits for this very receive: send it alone. */
		if (n > 0 && m->sender != NULL && m->sender->sync)
			break;
		total += m->len;
		broker_take(b, p, m);
		batch[n++] = m;
		if (m->sender != NULL && m->sender->sync)
			break;
		if (r->name == NULL)
			mb = broker_oldest(p);
		if (total > r->budget)
			break;
	}
	for (size_t i = 0; i < n; i++)
		p->ops->deliver(p, req, batch[i], i + 1 < n);
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
		broker_recv_batch(b, p, req, r, mb);
		return 0;
	}
	if (r->timeout_ms == 0)
		return -EAGAIN;
	w = wait_new(b, p, WAIT_RECV, req, r->timeout_ms, &err);
	if (w == NULL)
		return err;
	w->mbox = r->name != NULL ? mb : NULL;
	w->cap = r->cap;
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

/*
 * Deadlines and shutdown.
 */

static void
broker_timeout(struct broker *b, struct wait *w)
{
	struct mailbox *mb;

	if (w->kind == WAIT_RECV) {
		wait_end(b, w, -ETIMEDOUT, true);
		return;
	}
	/* A withdrawn message may have held a queue slot: wake the next. */
	mb = w->msg->mbox;
	broker_withdraw(b, w->msg, -ETIMEDOUT);
	broker_pump(b, mb);
}

void
broker_expire(struct broker *b, uint64_t now)
{
	struct deadline *d;

	while ((d = deadline_heap_first(&b->deadlines)) != NULL &&
	    d->when <= now) {
		struct wait *w = (struct wait *)((char *)d -
		    offsetof(struct wait, deadline));

		broker_timeout(b, w);
	}
}

uint64_t
broker_next_deadline(const struct broker *b)
{
	struct deadline *d = deadline_heap_first(&b->deadlines);

	return d != NULL ? d->when : DEADLINE_NONE;
}

void
broker_shutdown(struct broker *b)
{
	struct peer *p;
	struct wait *w;

	TAILQ_FOREACH(p, &b->peers, entry) {
		while ((w = TAILQ_FIRST(&p->sends)) != NULL)
			broker_withdraw(b, w->msg, -ESHUTDOWN);
		while ((w = TAILQ_FIRST(&p->recvs)) != NULL)
			wait_end(b, w, -ESHUTDOWN, true);
	}
}
