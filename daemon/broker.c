/*
 * broker.c - the broker's state and its administration: limits and who
 * may do what, peers coming and going, mailboxes created, changed and
 * destroyed, deadlines and shutdown.  Sending, receiving and every way a
 * parked call ends live in broker-deliver.c; bindings in broker-bind.c.
 *
 * The broker is pure state: see broker.h for its conventions.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "broker-int.h"
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
	uint8_t key[TABLE_KEY_LEN];

	if (b == NULL)
		return NULL;
	/* A fresh secret per daemon: names cannot be chosen to collide. */
	if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) {
		free(b);
		return NULL;
	}
	b->limits.max_memory = BROKER_DEFAULT_MAX_MEMORY;
	b->limits.max_msg = PROTO_MAX_PAYLOAD;
	if (limits != NULL)
		broker_set_limits(b, limits);
	table_init(&b->mailboxes, key);
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
	if (n->max_fds_per_uid == 0)
		n->max_fds_per_uid = BROKER_DEFAULT_MAX_FDS_PER_UID;
	if (n->max_msgs_per_uid == 0)
		n->max_msgs_per_uid = BROKER_DEFAULT_MAX_MSGS_PER_UID;
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
bool
broker_may(const struct broker *b, const struct peer *p,
    const struct mailbox *mb, mode_t bit)
{
	if (mb->owner != NULL)
		return bit == S_IWOTH || mb->owner == p;
	/*
	 * Root reads and writes anything, as with files; an admin group
	 * manages mailboxes (destroy, chmod, rebind...) but reads and writes
	 * only what the bits allow it.
	 */
	if (p->uid == 0)
		return true;
	if (p->uid == mb->uid)
		return (mb->mode & (bit << 6)) != 0;
	if (peer_in_group(p, mb->gid))
		return (mb->mode & (bit << 3)) != 0;
	return (mb->mode & bit) != 0;
}

static void broker_set_owner(struct broker *, struct mailbox *, uid_t, gid_t);
static void broker_check_grants(struct broker *, struct mailbox *);
static void broker_mailbox_free(struct broker *, struct mailbox *);

/* Owner-only operations: destroy, purge, chmod, rebind, evict. */
bool
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

void
broker_msg_free(struct broker *b, struct msg *m)
{
	b->mem_used -= m->len;
	if (m->acct != NULL) {
		m->acct->bytes -= m->len;
		if (m->fd >= 0)
			m->acct->fds--;
		m->acct->msgs--;
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

struct mailbox *
broker_lookup(const struct broker *b, const char *name, size_t len)
{
	return table_get(&b->mailboxes, name, len);
}

/* Looks up a named (not direct) mailbox: -EINVAL, -ENOENT or 0. */
int
broker_lookup_named(const struct broker *b, const char *name, size_t len,
    struct mailbox **out)
{
	if (!proto_name_valid(name, len))
		return -EINVAL;
	*out = broker_lookup(b, name, len);
	return *out != NULL ? 0 : -ENOENT;
}

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
	struct msg *m;

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
		while ((m = TAILQ_FIRST(&mb->inflight)) != NULL)
			broker_withdraw(b, m, err);
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
	/* From the end: each removal from the vector is then O(1). */
	while (p->bound.len > 0) {
		struct mailbox *mb = p->bound.items[p->bound.len - 1];

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
		/* Not counted yet: nothing to give back but the reference. */
		account_put(&b->accounts, mb->acct);
		mailbox_free(mb);
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
	broker_check_grants(b, mb);
	/* More room may let waiting senders in. */
	broker_pump(b, mb);
	return BROKER_CHANGED;
}

/* Looks up a named mailbox that p owns (or administers). */
int
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

/*
 * After a permission change: a sender holding credit in mb that may no
 * longer write there, or that was told it may post shared buffers there
 * and no longer may, is told to stop using it.  Messages it posted before
 * it could know are still taken (the grant's room is theirs): they were
 * sent while the sender had the right, as far as it could tell (a shared
 * one then goes in as a sealed copy, see broker_post()).
 */
static void
broker_check_grants(struct broker *b, struct mailbox *mb)
{
	for (size_t i = 0; i < mb->grants.len; i++) {
		struct grant *g = mb->grants.items[i];

		/* Once: its holder knows until it hears of the grant again. */
		if (!g->revoked && (!broker_may(b, g->peer, mb, S_IWOTH) ||
		    (g->shared && !broker_shared_ok(g->peer, mb)))) {
			g->revoked = true;
			g->peer->ops->revoke(g->peer, mb, PROTO_REVOKE_CREDIT);
		}
	}
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
	broker_check_grants(b, mb);
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
	broker_check_grants(b, mb);
	return 0;
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

int
broker_charge_input(struct broker *b, struct peer *p, int64_t delta)
{
	uint64_t d = (uint64_t)(delta < 0 ? -delta : delta);

	if (delta < 0) {
		b->mem_used -= d;
		p->acct->bytes -= d;
		return 0;
	}
	if (b->mem_used > b->limits.max_memory ||
	    d > b->limits.max_memory - b->mem_used)
		return -ENOBUFS;
	if (!broker_is_admin(b, p) &&
	    (p->acct->bytes > b->limits.max_bytes_per_uid ||
	    d > b->limits.max_bytes_per_uid - p->acct->bytes))
		return -ENOBUFS;
	b->mem_used += d;
	p->acct->bytes += d;
	return 0;
}

bool
broker_post_covered(const struct peer *p, uint64_t len)
{
	return credit_covers(p, len);
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
