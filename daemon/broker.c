/*
 * broker.c - the broker's state and its lifecycle: limits, peers coming
 * and going, mailboxes created, changed and destroyed, shutdown.
 *
 * The broker is a one-way stack of files; each calls only those below it
 * (their headers say what they offer the layers above):
 *
 *   broker.c          lifecycle: peers, mailboxes, limits, shutdown
 *   broker-bind.c     who receives from a mailbox: bind, standby, rebind
 *   broker-deliver.c  send, post, receive, acknowledge, expire, pump
 *   broker-wait.c     parked calls and their deadlines   credit.c: grants
 *   broker-durable.c  durable mailboxes' journals: what changes append
 *   broker-lookup.c   lookups and permissions, the clock
 *   mailbox.c, peer.c, msg.c, account.c, table.c, deadline.c: data
 *
 * The broker is pure state: see broker.h for its conventions.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker-bind.h"
#include "broker-deliver.h"
#include "broker-durable.h"
#include "broker-lookup.h"
#include "broker-wait.h"
#include "credit.h"
#include "journal.h"
#include "log.h"
#include "mailbox.h"
#include "proto.h"

/* The accounts check the per-uid quotas of the limits. */
static void
broker_set_quota(struct broker *b)
{
	const struct broker_limits *l = &b->limits;
	const struct account_quota q = {
		.max_memory = l->max_memory,
		.max_bytes = l->max_bytes_per_uid,
		.max_msgs = l->max_msgs_per_uid,
		.max_fds = l->max_fds_per_uid,
		.max_connections = l->max_connections_per_uid,
		.max_mailboxes = l->max_mailboxes_per_uid,
	};

	accounts_set_quota(&b->accounts, &q);
}

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
	table_init(&b->mailboxes, key);
	accounts_init(&b->accounts);
	b->limits.max_memory = BROKER_DEFAULT_MAX_MEMORY;
	b->limits.max_msg = PROTO_MAX_PAYLOAD;
	if (limits != NULL)
		broker_set_limits(b, limits);
	else
		broker_set_quota(b);
	TAILQ_INIT(&b->peers);
	ptrvec_init(&b->withdrawn);
	ptrvec_init(&b->durables);
	ptrvec_init(&b->dirty);
	TAILQ_INIT(&b->commits);
	b->state_fd = -1;
	deadline_heap_init(&b->deadlines);
	deadline_heap_init(&b->timers);
	deadline_heap_init(&b->delays);
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
	broker_set_quota(b);
}

static void broker_set_owner(struct broker *, struct mailbox *, uid_t, gid_t);
static void broker_check_grants(struct broker *, struct mailbox *);
static void broker_mailbox_free(struct broker *, struct mailbox *);
static int broker_create_mailbox(struct broker *, struct peer *,
    const char *, size_t, const struct broker_attr *, struct mailbox **);

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
	while ((m = TAILQ_FIRST(&mb->staged)) != NULL) {
		mailbox_drop(mb, m);
		broker_msg_free(b, m);
	}
	while ((m = TAILQ_FIRST(&mb->delayed)) != NULL) {
		deadline_heap_remove(&b->delays, &m->delay);
		mailbox_drop(mb, m);
		broker_msg_free(b, m);
	}
	deadline_heap_remove(&b->timers, &mb->timer);
	account_release(&b->accounts, &mb->charge, NULL);
	/* What is on disk stays: a destroy removed it first. */
	if (mb->durable) {
		ptrvec_remove(&b->durables, mb);
		ptrvec_remove(&b->dirty, mb);
		journal_close(mb->journal);
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
	/* What was appended and not yet committed goes to disk now. */
	broker_commit(b);
	broker_sync(b);
	while ((mb = table_next(&b->mailboxes, &pos)) != NULL)
		broker_mailbox_free(b, mb);
	table_deinit(&b->mailboxes);
	ptrvec_deinit(&b->withdrawn);
	ptrvec_deinit(&b->durables);
	ptrvec_deinit(&b->dirty);
	if (b->state_fd >= 0)
		close(b->state_fd);
	free(b->state_dir);
	deadline_heap_deinit(&b->deadlines);
	deadline_heap_deinit(&b->timers);
	deadline_heap_deinit(&b->delays);
	accounts_deinit(&b->accounts);
	free(b);
}

int
broker_set_state(struct broker *b, const char *dir, unsigned sync_ms)
{
	char *copy = dir != NULL ? strdup(dir) : NULL;

	if (dir != NULL && copy == NULL)
		return -ENOMEM;
	free(b->state_dir);
	b->state_dir = copy;
	b->sync_ms = sync_ms;
	return 0;
}

/* One message of a log back in its mailbox's queue, as it was. */
static int
broker_load_msg(struct broker *b, struct mailbox *mb,
    const struct journal_msg *jm)
{
	struct msg *m;
	int err;

	if ((err = broker_msg_restore(b, mb, &jm->rec, b->next_msg_id,
	    &m)) < 0)
		return err;
	b->next_msg_id++;
	m->log_seq = jm->rec.seq;
	m->log_seg = jm->seg;
	return 0;
}

/* The mailbox of one log of the state directory. */
static int
broker_load_one(struct broker *b, const char *dir)
{
	struct journal_load l;
	struct broker_attr a = { .capacity = -1, .mode = BROKER_DEFAULT_MODE,
	    .uid = 0, .gid = 0 };
	struct mailbox *mb = NULL;
	int err;

	if ((err = journal_load(b->state_fd, dir, &l)) < 0) {
		if (err == -ENOENT)
			log_warn("state directory %s: m/%s is no mailbox's "
			    "log: left alone", b->state_dir, dir);
		return err == -ENOENT ? 0 : err;
	}
	if (l.has_attr) {
		a.capacity = (long)l.attr.capacity;
		a.max_msg = l.attr.max_msg;
		a.mode = l.attr.mode;
		a.uid = (uid_t)l.attr.uid;
		a.gid = (gid_t)l.attr.gid;
		a.max_attempts = l.attr.max_attempts;
		a.ack_timeout_ms = l.attr.ack_timeout_ms;
		a.dead_letter = l.attr.dead_letter.ptr;
		a.dead_letter_len = l.attr.dead_letter.len;
	}
	/* Made as a daemon's own mailbox, then given its journal. */
	if ((err = broker_create_mailbox(b, NULL, l.name, l.name_len, &a,
	    &mb)) < 0) {
		log_err("mailbox %s: cannot load it: %s", l.name,
		    strerror(-err));
		journal_close(l.journal);
		journal_load_free(&l);
		return 0;
	}
	if ((err = broker_durable_add(b, mb, l.journal)) < 0) {
		journal_close(l.journal);
		journal_load_free(&l);
		return err;
	}
	if (l.journal == NULL) {
		mb->failed = true;
		log_err("mailbox %s: its log in %s/m/%s is refused (%s): the "
		    "mailbox answers EIO until the log is repaired or removed",
		    l.name, b->state_dir, dir, l.why);
		journal_load_free(&l);
		return 0;
	}
	if (l.cut[0] != '\0')
		log_warn("mailbox %s: %s", l.name, l.cut);
	for (size_t i = 0; i < l.nmsgs; i++)
		if ((err = broker_load_msg(b, mb, &l.msgs[i])) < 0) {
			journal_load_free(&l);
			return err;
		}
	log_info("mailbox %s: loaded from its log, %zu messages", l.name,
	    l.nmsgs);
	journal_load_free(&l);
	return 0;
}

int
broker_load_durable(struct broker *b)
{
	char logs[PATH_MAX];
	struct dirent *e;
	struct stat st;
	DIR *d;
	int fd, err = 0;

	if (b->state_dir == NULL)
		return 0;
	if (snprintf(logs, sizeof(logs), "%s/m", b->state_dir) >=
	    (int)sizeof(logs))
		return -ENAMETOOLONG;
	/*
	 * No directory, or no log in it: nothing durable, nothing locked.
	 * A directory this user cannot search holds no log of this user's
	 * daemon either (a private mbxd next to the system's, mbxd(8)).
	 * Anything else that hides the logs is an error: better not to
	 * start than to start without durable mailboxes that exist.
	 */
	if (stat(logs, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno == EACCES) {
			log_warn("state directory %s: %s: no durable mailbox "
			    "can be created (--state-dir chooses another)",
			    b->state_dir, strerror(errno));
			return 0;
		}
		return -errno;
	}
	if ((err = broker_state_open(b)) < 0)
		return err;
	if ((fd = openat(b->state_fd, "m", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) < 0 || (d = fdopendir(fd)) == NULL) {
		err = -errno;
		if (fd >= 0)
			close(fd);
		return err;
	}
	while (err == 0 && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			err = broker_load_one(b, e->d_name);
	closedir(d);
	return err;
}

int
broker_peer_add(struct broker *b, struct peer *p, const struct peer_ops *ops,
    void *ctx)
{
	const struct charge_amount one = { .connections = 1 };
	struct account *acct;
	char name[32];
	int len, err;

	if (b->npeers >= b->limits.max_connections)
		return -ENOBUFS;
	if ((acct = account_of(&b->accounts, p->uid)) == NULL)
		return -ENOMEM;
	if ((err = account_charge(&b->accounts, &p->charge, acct, &one,
	    broker_is_admin(b, p) ? ACCOUNT_EXEMPT : 0)) < 0)
		return err;
	p->acct = acct;
	p->id = b->next_peer_id;
	p->ops = ops;
	p->ctx = ctx;
	len = snprintf(name, sizeof(name), "@%llu", (unsigned long long)p->id);
	p->direct = mailbox_new(name, (size_t)len, -1, b->limits.max_msg);
	if (p->direct == NULL || table_put(&b->mailboxes, p->direct->name,
	    p->direct->name_len, p->direct) < 0) {
		mailbox_free(p->direct);
		p->direct = NULL;
		account_release(&b->accounts, &p->charge, NULL);
		p->acct = NULL;
		return -ENOMEM;
	}
	p->direct->owner = p;
	p->direct->id = b->next_mailbox_id++;
	p->direct->uid = p->uid;
	p->direct->gid = p->gid;
	b->next_peer_id++;
	TAILQ_INSERT_TAIL(&b->peers, p, entry);
	b->npeers++;
	return 0;
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
		broker_wait_fail_recvs(b, rcv, mb, err);
		while ((m = TAILQ_FIRST(&mb->inflight)) != NULL)
			broker_withdraw(b, m, err);
		if (mb->receiver != NULL)
			ptrvec_remove(&rcv->bound, mb);
	}
	TAILQ_FOREACH(m, &mb->queue, entry)
		if (m->sender != NULL)
			broker_wait_end(b, m->sender, err, true);
	TAILQ_FOREACH(m, &mb->pending, entry)
		if (m->sender != NULL)
			broker_wait_end(b, m->sender, err, true);
	TAILQ_FOREACH(m, &mb->staged, entry)
		if (m->sender != NULL)
			broker_wait_end(b, m->sender, err, true);
	TAILQ_FOREACH(m, &mb->delayed, entry)
		if (m->sender != NULL)
			broker_wait_end(b, m->sender, err, true);
	broker_mailbox_free(b, mb);
}

void
broker_peer_remove(struct broker *b, struct peer *p)
{
	struct wait *w;

	/* Receives first, so that no pump below hands p a message. */
	while ((w = TAILQ_FIRST(&p->recvs)) != NULL)
		broker_wait_end(b, w, 0, false);
	broker_commit_waits_end(b, p);
	while ((w = TAILQ_FIRST(&p->sends)) != NULL) {
		struct mailbox *mb = w->msg->mbox;

		/* A staged message's PUT is written: it is committed. */
		if (w->msg->state == MSG_STAGED) {
			broker_wait_end(b, w, 0, false);
			continue;
		}
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
	/* Its input is released by its connection first: any rest goes too. */
	account_release(&b->accounts, &p->input, NULL);
	account_release(&b->accounts, &p->channel, NULL);
	account_release(&b->accounts, &p->charge, NULL);
	p->acct = NULL;
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
	/* Nothing is dropped: a limit on attempts needs somewhere to go. */
	if ((a->max_attempts > 0 && a->dead_letter_len == 0) ||
	    (a->dead_letter_len > 0 &&
	    !proto_name_valid(a->dead_letter, a->dead_letter_len)))
		return -EINVAL;
	/* Like chgrp: a group the creator belongs to, unless an admin. */
	if (p != NULL && a->gid != (gid_t)-1 && !peer_in_group(p, a->gid) &&
	    !broker_is_admin(b, p))
		return -EPERM;
	return 0;
}

/* mb keeps its messages on disk: its journal is made, ATTR synced. */
static int
broker_make_durable(struct broker *b, struct mailbox *mb)
{
	struct record_attr ra;
	struct journal *j;
	int err;

	if ((err = broker_state_open(b)) < 0)
		return err;
	broker_durable_attr(mb, &ra);
	if ((err = journal_create(b->state_fd, mb->name, mb->name_len, &ra,
	    &j)) < 0) {
		log_err("mailbox %s: cannot make its log in %s: %s", mb->name,
		    b->state_dir, strerror(-err));
		return err;
	}
	if ((err = broker_durable_add(b, mb, j)) < 0)
		journal_remove(b->state_fd, j);
	return err;
}

/* A mailbox made durable is not created after all: nothing stays. */
static void
broker_undo_durable(struct broker *b, struct mailbox *mb)
{
	if (!mb->durable)
		return;
	journal_remove(b->state_fd, mb->journal);
	mb->journal = NULL;
	ptrvec_remove(&b->durables, mb);
	mb->durable = false;
}

static int
broker_create_mailbox(struct broker *b, struct peer *p, const char *name,
    size_t len, const struct broker_attr *a, struct mailbox **out)
{
	const struct charge_amount one = { .mailboxes = 1 };
	struct account *acct;
	struct mailbox *mb;
	uint64_t max_msg = a->max_msg;
	int err;

	if (!proto_name_valid(name, len))
		return -EINVAL;
	if ((err = broker_check_attr(b, p, a)) < 0)
		return err;
	if (a->dead_letter_len == len && memcmp(a->dead_letter, name, len) == 0)
		return -EINVAL;
	/* A rendezvous holds nothing to keep. */
	if (a->durable && a->capacity == 0)
		return -EINVAL;
	if (broker_lookup(b, name, len) != NULL)
		return -EEXIST;
	if (max_msg == 0)
		max_msg = BROKER_DEFAULT_MAX_MSG < b->limits.max_msg ?
		    BROKER_DEFAULT_MAX_MSG : b->limits.max_msg;
	mb = mailbox_new(name, len, a->capacity, (size_t)max_msg);
	if (mb == NULL)
		return -ENOMEM;
	if (mailbox_set_dead_letter(mb, a->dead_letter,
	    a->dead_letter_len) < 0) {
		mailbox_free(mb);
		return -ENOMEM;
	}
	mb->max_attempts = a->max_attempts;
	mb->ack_timeout_ms = a->ack_timeout_ms;
	mb->id = b->next_mailbox_id++;
	mb->uid = p != NULL ? p->uid : a->uid;
	mb->gid = a->gid != (gid_t)-1 ? a->gid : p != NULL ? p->gid : 0;
	mb->mode = a->mode != 0 ? a->mode : BROKER_DEFAULT_MODE;
	if (a->durable && (err = broker_make_durable(b, mb)) < 0) {
		mailbox_free(mb);
		return err;
	}
	/* The daemon's own mailboxes (no creator) count, unbounded. */
	if ((acct = account_of(&b->accounts, mb->uid)) == NULL ||
	    (err = account_charge(&b->accounts, &mb->charge, acct, &one,
	    broker_is_admin(b, p) ? ACCOUNT_EXEMPT : 0)) < 0) {
		broker_undo_durable(b, mb);
		mailbox_free(mb);
		return acct == NULL ? -ENOMEM : err;
	}
	if (table_put(&b->mailboxes, mb->name, mb->name_len, mb) < 0) {
		broker_undo_durable(b, mb);
		broker_mailbox_free(b, mb);
		return -ENOMEM;
	}
	b->nnamed++;
	if (out != NULL)
		*out = mb;
	return 0;
}

int
broker_create(struct broker *b, struct peer *p, const char *name, size_t len,
    const struct broker_attr *a)
{
	return broker_create_mailbox(b, p, name, len, a, NULL);
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
	if (mb->owner != NULL)
		return -EINVAL;
	if (mb->durable != a->durable) {
		log_err("mailbox %s: durable cannot change while it exists",
		    mb->name);
		return -EINVAL;
	}
	if ((err = broker_check_attr(b, NULL, a)) < 0)
		return err;
	if (a->dead_letter_len == len && memcmp(a->dead_letter, name, len) == 0)
		return -EINVAL;
	if (max_msg == 0)
		max_msg = mb->max_msg;
	if (mb->capacity == a->capacity && mb->max_msg == max_msg &&
	    mb->uid == a->uid && mb->gid == a->gid &&
	    mb->mode == (a->mode != 0 ? a->mode : BROKER_DEFAULT_MODE) &&
	    mb->max_attempts == a->max_attempts &&
	    mb->ack_timeout_ms == a->ack_timeout_ms &&
	    mb->dead_letter_len == a->dead_letter_len &&
	    (a->dead_letter_len == 0 || memcmp(mb->dead_letter,
	    a->dead_letter, a->dead_letter_len) == 0))
		return 0;
	if (mailbox_set_dead_letter(mb, a->dead_letter,
	    a->dead_letter_len) < 0)
		return -ENOMEM;
	/* A new timeout applies to deliveries from now on. */
	mb->max_attempts = a->max_attempts;
	mb->ack_timeout_ms = a->ack_timeout_ms;
	mb->capacity = a->capacity;
	mb->max_msg = (size_t)max_msg;
	mb->mode = a->mode != 0 ? a->mode : BROKER_DEFAULT_MODE;
	broker_set_owner(b, mb, a->uid, a->gid);
	broker_log_attr(b, mb);
	broker_check_grants(b, mb);
	/* More room may let waiting senders in. */
	broker_pump(b, mb);
	return BROKER_CHANGED;
}

int
broker_destroy(struct broker *b, struct peer *p, const char *name, size_t len)
{
	struct mailbox *mb;
	int err = broker_lookup_owned(b, p, name, len, &mb);

	if (err < 0)
		return err;
	if (mb->durable) {
		/* Staged sends are answered EIDRM: nothing of them stays. */
		journal_remove(b->state_fd, mb->journal);
		mb->journal = NULL;
	}
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
 * and no longer may, is told to stop using it.  One that lost the write
 * bit and has a channel has its grant withdrawn (broker_withdraw_room()):
 * its posts published before it could know are taken once its ring is
 * drained, and those after are dropped and sent again by name, which
 * fails (EACCES).  Otherwise messages it posted before it could know
 * are still taken (the grant's room is theirs): they were sent while
 * the sender had the right, as far as it could tell (a shared one then
 * goes in as a sealed copy, see broker_post()).
 */
static void
broker_check_grants(struct broker *b, struct mailbox *mb)
{
	for (size_t i = 0; i < mb->grants.len; i++) {
		struct grant *g = mb->grants.items[i];

		/* Once: its holder knows until it hears of the grant again. */
		if (g->revoked || g->withdrawn ||
		    (broker_may(b, g->peer, mb, S_IWOTH) &&
		    (!g->shared || broker_shared_ok(g->peer, mb))))
			continue;
		/* Withdrawn, nothing gets in after the change's answer. */
		if (!broker_may(b, g->peer, mb, S_IWOTH) &&
		    credit_withdraw(b, g))
			continue;
		g->revoked = true;
		g->peer->ops->revoke(g->peer, mb, PROTO_REVOKE_CREDIT);
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
	broker_log_attr(b, mb);
	broker_check_grants(b, mb);
	return 0;
}

/* Moves mb's ownership (and its charge) to uid. */
static void
broker_set_owner(struct broker *b, struct mailbox *mb, uid_t uid, gid_t gid)
{
	/* Out of memory: the old charge stays rather than be lost. */
	if (uid != mb->uid)
		(void)account_move(&b->accounts, &mb->charge, uid);
	mb->uid = uid;
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
	broker_log_attr(b, mb);
	broker_check_grants(b, mb);
	return 0;
}

int
broker_charge_input(struct broker *b, struct peer *p, int64_t delta)
{
	const struct charge_amount d = {
		.bytes = (uint64_t)(delta < 0 ? -delta : delta) };

	if (delta < 0) {
		account_release(&b->accounts, &p->input, &d);
		return 0;
	}
	return account_charge(&b->accounts, &p->input, p->acct, &d,
	    broker_is_admin(b, p) ? ACCOUNT_EXEMPT : 0);
}

int
broker_charge_channel(struct broker *b, struct peer *p, uint64_t bytes)
{
	const struct charge_amount d = { .bytes = bytes };

	if (p->channel.acct != NULL)
		return 0;
	return account_charge(&b->accounts, &p->channel, p->acct, &d,
	    broker_is_admin(b, p) ? ACCOUNT_EXEMPT : 0);
}

bool
broker_post_covered(const struct peer *p, uint64_t len)
{
	return credit_covers(p, len);
}

void
broker_shutdown(struct broker *b)
{
	struct peer *p;
	struct wait *w;

	/* Staged sends and acknowledgements waiting for a commit get it. */
	broker_commit(b);
	broker_sync(b);
	TAILQ_FOREACH(p, &b->peers, entry) {
		while ((w = TAILQ_FIRST(&p->sends)) != NULL)
			broker_withdraw(b, w->msg, -ESHUTDOWN);
		while ((w = TAILQ_FIRST(&p->recvs)) != NULL)
			broker_wait_end(b, w, -ESHUTDOWN, true);
	}
}
