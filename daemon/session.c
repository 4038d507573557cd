/*
 * session.c - one connection's protocol, from mbxd's side: handshake,
 * request dispatch and the answers and messages it writes.  The bodies
 * are decoded and encoded by proto/body.h; the bytes, descriptors and
 * frames move through conn.c; the requests are the broker's.
 *
 * A request that breaks the protocol (a bad body, an unknown or
 * daemon-only type, a request before the handshake) closes only this
 * connection: who sent the bad data pays for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "admin.h"
#include "body.h"
#include "conn.h"
#include "log.h"
#include "mailbox.h"
#include "memfd.h"
#include "proto.h"
#include "rings.h"
#include "session.h"

struct session {
	struct session_set *set;
	struct conn	*conn;
	struct peer	 peer;
	bool		 registered;	/* peer is known to the broker */
	int		 refused;	/* why HELLO will be refused, or 0 */
	bool		 greeted;
	struct event	*handshake;	/* deadline for HELLO */
	struct rings	 rings;		/* its channel, once asked for */
	struct pass_source src;		/* the channel's tx ring */
	bool		 has_channel;
	/*
	 * Ring posts dropped, their grant gone (a destroy): the positions
	 * of the last BODY_DROPPED_MAX, rising, which a GRANT_CHECK asks
	 * about; and the revocation sequence the daemon set shows.
	 */
	uint64_t	 dropped[BODY_DROPPED_MAX];
	uint64_t	 ndropped;	/* ever; the newest at (n - 1) % MAX */
	uint64_t	 revoke_seq;
	uint64_t	 takeback_seq;	/* CHANNEL_DAEMON_TAKEBACK */
	uint64_t	 notice_seq;	/* REVOKEs queued: CHANNEL_DAEMON_NOTICE */
	bool		 withdrawing;	/* a grant told it ends: drain first */
	/*
	 * Holds PROTO_MSG_STORE messages: on the set's consumers, whose
	 * consumption words every pass reads.
	 */
	bool		 consuming;
	bool		 closing;	/* being freed: joins no list */
	/*
	 * Settled for good by a planned restart (CHANNEL_DAEMON_FINAL):
	 * neither its ring nor its store is read again, even at the close.
	 */
	bool		 quiesced;
	TAILQ_ENTRY(session) consumer_entry;
	TAILQ_ENTRY(session) entry;
};

static int  session_frame(void *, const struct proto_header *, const uint8_t *,
    int *);
static void session_closed(void *);
static int  session_charge(void *, const struct proto_header *, int64_t);
static int  session_refused(void *, const struct proto_header *);
static void session_reply_status(struct session *, uint32_t, int);
static void session_reply_sendv(struct session *, uint32_t, int, size_t);
static void session_reply(struct peer *, uint32_t, int);
static void session_deliver(struct peer *, uint32_t, const struct msg *, bool);
static void session_revoke(struct peer *, const struct mailbox *, unsigned);
static void session_settle(struct peer *);
static void session_takeback(struct peer *, const struct mailbox *,
	    uint64_t);
static void session_output(void *, int64_t, int);
static bool session_may_read(void *);
static bool session_may_take_fds(struct peer *, unsigned);
static bool session_withdraw(struct peer *, const struct mailbox *);

static const struct conn_ops session_conn_ops = {
	.frame = session_frame,
	.closed = session_closed,
	.charge = session_charge,
	.refused = session_refused,
	.output = session_output,
	.may_read = session_may_read,
};

static const struct peer_ops session_peer_ops = {
	.reply = session_reply,
	.deliver = session_deliver,
	.revoke = session_revoke,
	.settle = session_settle,
	.takeback = session_takeback,
	.may_take_fds = session_may_take_fds,
	.withdraw = session_withdraw,
};

static uint64_t session_clock_ns(void);
static int  session_take(void *, const struct pass_item *, void *);
static void session_wake(void *, void *);
static void session_poll(struct pass *, void *);
static void session_broken(void *, void *);
static void session_consume(struct session *);
static void session_set_consume(struct session_set *);

static const struct pass_ops session_pass_ops = {
	.take = session_take,
	.wake = session_wake,
	.poll = session_poll,
	.broken = session_broken,
};

/*
 * Most inline payload bytes one RECV batch carries past its first
 * message, whatever budget the client asks for: the batch is written at
 * once, so this bounds what a receive that is never read costs.
 */
#define SESSION_RECV_MAX_BUDGET	(1024u * 1024)
/* Descriptors one connection may hold unread, whoever its uid. */
#define SESSION_MAX_OUT_FDS	256

void
session_set_init(struct session_set *set, struct event_base *base,
    struct broker *b, void (*after_batch)(void *), void *ctx)
{
	TAILQ_INIT(&set->list);
	TAILQ_INIT(&set->consumers);
	set->base = base;
	set->broker = b;
	set->after_batch = after_batch;
	set->ctx = ctx;
	set->handshake_ms = SESSION_DEFAULT_HANDSHAKE_MS;
	set->nrefused = 0;
	pass_init(&set->pass, session_clock_ns, &session_pass_ops, set);
	set->nchannels = 0;
	set->doorbells = -1;
	set->doorbell_ev = NULL;
	set->idle_since = 0;
	set->rang = false;
	set->scratch = NULL;
	set->quiescing = false;
	set->watch_gen = 0;
}

/*
 * The command name of pid, for operators; "?" when it cannot be read.
 * Its process chose it: it is escaped (proto_escape()) once, here, so
 * that CLIENTS (JSON wants UTF-8) and the log get text that is safe.
 */
static void
session_read_comm(pid_t pid, char *comm, size_t size)
{
	char path[64], raw[PEER_COMM_RAW + 1];
	ssize_t n;
	int fd;

	snprintf(comm, size, "?");
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	n = read(fd, raw, sizeof(raw));
	close(fd);
	if (n <= 0)
		return;
	/* The kernel ends the name with a newline: not part of it. */
	if (raw[n - 1] == '\n')
		n--;
	if (n > PEER_COMM_RAW)
		n = PEER_COMM_RAW;
	proto_escape(comm, size, raw, (size_t)n);
}

/*
 * The peer's identity, from the kernel alone: SO_PEERCRED for the uid,
 * gid and pid at connect time, SO_PEERGROUPS for the supplementary groups.
 * Nothing the client says about itself is believed.
 */
static int
session_credentials(struct peer *p, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	gid_t groups[64];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	p->pid = cred.pid;
	p->uid = cred.uid;
	p->gid = cred.gid;
	len = sizeof(groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0 &&
	    len > 0) {
		p->groups = malloc(len);
		if (p->groups == NULL)
			return -ENOMEM;
		memcpy(p->groups, groups, len);
		p->ngroups = len / sizeof(gid_t);
	}
	/* More than 64 groups (ERANGE): the primary group still counts. */
	session_read_comm(cred.pid, p->comm, sizeof(p->comm));
	return 0;
}

static void
session_handshake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	log_warn("client %llu (pid %d) said nothing valid in %u ms: closing",
	    (unsigned long long)s->peer.id, (int)s->peer.pid,
	    s->set->handshake_ms);
	conn_kill(s->conn, NULL);
}

static int
session_charge(void *ctx, const struct proto_header *h, int64_t delta)
{
	struct session *s = ctx;

	/* A refused client has no account: it may announce nothing big. */
	if (!s->registered)
		return delta > 0 ? -1 : 0;
	/*
	 * An inline POST (BODY_POST_HEAD bytes, then the payload) that one
	 * of the connection's grants has room for: that room is already
	 * charged, and the post takes it.  Counting the frame too would
	 * charge the message twice.
	 */
	if (h != NULL && h->type == PROTO_POST &&
	    (h->flags & PROTO_POST_FD) == 0 && h->len >= BODY_POST_HEAD &&
	    broker_post_covered(&s->peer, h->len - BODY_POST_HEAD))
		return CONN_COVERED;
	return broker_charge_input(s->set->broker, &s->peer, delta) < 0 ?
	    -1 : 0;
}

/*
 * A request too large for its sender's memory share, dropped unread: a
 * limit reached, answered ENOBUFS as the same request would be once read.
 * A POST has no answer, and no grant of the connection covered it (see
 * session_charge()): it would be dropped anyway.  No library sends
 * anything else that large.
 */
static int
session_refused(void *ctx, const struct proto_header *h)
{
	struct session *s = ctx;

	if (!s->greeted || s->refused != 0 || h->id == 0 ||
	    (h->type != PROTO_SEND && h->type != PROTO_SENDV &&
	    h->type != PROTO_POST)) {
		log_warn("client %llu: a frame of type %u larger than its "
		    "memory share: closing", (unsigned long long)s->peer.id,
		    h->type);
		return -1;
	}
	if (h->type == PROTO_POST) {
		log_warn("client %llu: a post no grant covers, over its memory "
		    "share: dropped", (unsigned long long)s->peer.id);
		return 0;
	}
	if (h->type == PROTO_SENDV)
		session_reply_sendv(s, h->id, -ENOBUFS, 0);
	else
		session_reply_status(s, h->id, -ENOBUFS);
	return 0;
}

/*
 * Output accounting (see account.h): what a connection holds unwritten,
 * and the descriptors it was passed and has not read, count against its
 * uid.  Past the uid's share of memory, its connections that have output
 * waiting are no longer read (as one connection past CONN_OUT_HIGH is);
 * they are read again once the uid's output is under half its share.
 */
static void
session_output(void *ctx, int64_t bytes, int fds)
{
	struct session *s = ctx;
	struct account *acct = s->peer.acct;
	uint64_t share = s->set->broker->limits.max_bytes_per_uid;
	struct session *o;

	if (!s->registered || acct == NULL)
		return;
	peer_output(&s->peer, bytes, fds);
	if (!account_output(acct, bytes, fds, share,
	    broker_is_admin(s->set->broker, &s->peer)))
		return;
	TAILQ_FOREACH(o, &s->set->list, entry)
		if (o->registered && o->peer.acct == acct)
			conn_resume(o->conn);
}

static bool
session_may_read(void *ctx)
{
	struct session *s = ctx;

	return !s->registered || !s->peer.acct->out_over;
}

/*
 * The descriptors p's uid holds unread, refreshed from the kernel once
 * they reach the quota (a peer may have read them since they were last
 * looked at).  That walks every connection, so it is done at most every
 * SESSION_FDS_LOOK_MS for a uid: a uid at its quota that keeps asking
 * cannot make each of its requests cost the daemon a walk.
 */
#define SESSION_FDS_LOOK_MS	10

static unsigned
session_uid_out_fds(struct session *s)
{
	struct account *acct = s->peer.acct;
	uint64_t now = broker_now(s->set->broker);
	struct session *o;

	if (!account_output_look(acct, s->set->broker->limits.max_fds_per_uid,
	    now, SESSION_FDS_LOOK_MS))
		return acct->out_fds;
	TAILQ_FOREACH(o, &s->set->list, entry)
		if (o->registered && o->peer.acct == acct && o->conn != NULL)
			(void)conn_out_fds(o->conn);
	return acct->out_fds;
}

static bool
session_may_take_fds(struct peer *p, unsigned n)
{
	struct session *s = p->ctx;
	unsigned max = s->set->broker->limits.max_fds_per_uid;

	/* A closing connection takes nothing out of the daemon's table. */
	if (conn_dead(s->conn))
		return true;
	if (conn_out_fds(s->conn) + n > SESSION_MAX_OUT_FDS)
		return false;
	return broker_is_admin(s->set->broker, p) ||
	    session_uid_out_fds(s) + n <= max;
}

/*
 * Everything its client published before it went is taken: a post
 * whose send returned 0 reaches its mailbox even if the process died
 * right after.  A pass may leave records for the next (its batch limit,
 * a stamp it holds one pass), so it runs until the ring is empty.
 */
static void
session_channel_drain(struct session *s)
{
	for (int i = 0; i < 100000 && !s->src.broken &&
	    channel_load(s->rings.client, CHANNEL_CLIENT_TX_TAIL) !=
	    s->src.rx.head; i++) {
		pass_heat(&s->set->pass, &s->src);
		if (pass_run(&s->set->pass) < 0)
			break;
	}
}

/* Undoes session_set_channels(). */
static void
session_set_channels_release(struct session_set *set)
{
	if (set->doorbell_ev != NULL)
		event_free(set->doorbell_ev);
	if (set->doorbells >= 0)
		close(set->doorbells);
	free(set->scratch);
	set->doorbell_ev = NULL;
	set->doorbells = -1;
	set->scratch = NULL;
}

static void
session_channel_free(struct session *s)
{
	struct session_set *set = s->set;

	if (!s->has_channel)
		return;
	if (!s->quiesced)
		session_channel_drain(s);
	pass_source_deinit(&set->pass, &s->src);
	if (set->doorbells >= 0)
		epoll_ctl(set->doorbells, EPOLL_CTL_DEL, s->rings.doorbell,
		    NULL);
	rings_free(&s->rings);
	s->has_channel = false;
	/*
	 * The last channel gone, what the set kept for channels goes too: a
	 * daemon whose clients left holds what it held before they came.
	 */
	if (--set->nchannels == 0)
		session_set_channels_release(set);
}

static void
session_free(struct session *s)
{
	/*
	 * A receive that returned before the process died stored its
	 * consumption: it counts before the peer's messages go back.  (The
	 * ring's last posts, drained next, may deliver to it: it joins no
	 * list from here.)
	 */
	s->closing = true;
	if (!s->quiesced)
		session_consume(s);
	session_channel_free(s);
	if (s->consuming)
		TAILQ_REMOVE(&s->set->consumers, s, consumer_entry);
	if (s->handshake != NULL)
		event_free(s->handshake);
	if (s->conn != NULL)
		conn_uncharge(s->conn);
	if (s->registered)
		broker_peer_remove(s->set->broker, &s->peer);
	else {
		peer_deinit(&s->peer);
		s->set->nrefused--;
	}
	conn_free(s->conn);
	TAILQ_REMOVE(&s->set->list, s, entry);
	free(s);
}

static void
session_closed(void *ctx)
{
	struct session *s = ctx;

	log_info("client %llu disconnected", (unsigned long long)s->peer.id);
	session_free(s);
}

/* Names the connection for the log and says who came. */
static void
session_announce(struct session *s)
{
	char label[32];

	snprintf(label, sizeof(label), "client %llu",
	    (unsigned long long)s->peer.id);
	conn_set_label(s->conn, label);
	if (s->registered)
		log_info("client %llu connected (pid %d, uid %u, %s)",
		    (unsigned long long)s->peer.id, (int)s->peer.pid,
		    s->peer.uid, s->peer.comm);
	else
		log_warn("pid %d (uid %u, %s) refused: %s", (int)s->peer.pid,
		    s->peer.uid, s->peer.comm, s->refused == -EDQUOT ?
		    "over its uid's connection quota" :
		    "over the daemon's connection cap");
}

int
session_new(struct session_set *set, int fd)
{
	struct session *s = calloc(1, sizeof(*s));
	struct timeval tv = { set->handshake_ms / 1000,
	    (set->handshake_ms % 1000) * 1000 };
	int err;

	if (s == NULL) {
		close(fd);
		return -ENOMEM;
	}
	s->set = set;
	rings_init(&s->rings);
	peer_init(&s->peer);
	if ((err = session_credentials(&s->peer, fd)) < 0)
		goto fail;
	/*
	 * Over a quota: the HELLO will be answered with why, then closed.
	 * Those waiting to be told are capped, or they would be a way round
	 * the very quota that refused them.
	 */
	err = broker_peer_add(set->broker, &s->peer, &session_peer_ops, s);
	if (err == -ENOMEM || (err < 0 && set->nrefused >= SESSION_MAX_REFUSED))
		goto fail;
	if (err < 0)
		set->nrefused++;
	s->registered = err == 0;
	s->refused = err;
	s->conn = conn_new(set->base, fd, PROTO_MAX_BODY, &session_conn_ops, s);
	fd = -1;
	s->handshake = evtimer_new(set->base, session_handshake_cb, s);
	if (s->conn == NULL || s->handshake == NULL ||
	    evtimer_add(s->handshake, &tv) < 0) {
		err = -ENOMEM;
		goto fail;
	}
	TAILQ_INSERT_TAIL(&set->list, s, entry);
	session_announce(s);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	if (s->handshake != NULL)
		event_free(s->handshake);
	if (s->registered)
		broker_peer_remove(set->broker, &s->peer);
	else
		peer_deinit(&s->peer);
	if (s->refused != 0)
		set->nrefused--;
	conn_free(s->conn);
	free(s);
	return err;
}

void
session_set_quiesce(struct session_set *set)
{
	struct session *s;

	/*
	 * Sockets: what was written before each shutdown is read and done;
	 * a receive among it is refused (session_recv()), so that nothing
	 * is handed out after this.
	 */
	set->quiescing = true;
	TAILQ_FOREACH(s, &set->list, entry)
		conn_read_to_end(s->conn);
	/*
	 * Channels, the fence pairs of "Withdrawn grants" and "Taken back"
	 * once more, for good: both words move, a fence, then each ring is
	 * drained and each store read.  A post published or a store made
	 * after its writer saw a word move is checked by its writer, whose
	 * question cannot be answered any more: it reads the final word.
	 */
	TAILQ_FOREACH(s, &set->list, entry)
		if (s->has_channel) {
			channel_store(s->rings.daemon, CHANNEL_DAEMON_REVOKE,
			    ++s->revoke_seq);
			channel_store(s->rings.daemon, CHANNEL_DAEMON_TAKEBACK,
			    ++s->takeback_seq);
		}
	channel_fence();
	/*
	 * Every ring, then every store, and only then the final words: a
	 * pass runs over every hot ring and reads every consumer's store,
	 * so a final word written before another connection's drain would
	 * not be final.
	 */
	TAILQ_FOREACH(s, &set->list, entry)
		if (s->has_channel)
			session_channel_drain(s);
	TAILQ_FOREACH(s, &set->list, entry)
		if (s->has_channel)
			session_consume(s);
	TAILQ_FOREACH(s, &set->list, entry) {
		if (!s->has_channel)
			continue;
		pass_source_deinit(&set->pass, &s->src);
		if (s->consuming) {
			TAILQ_REMOVE(&set->consumers, s, consumer_entry);
			s->consuming = false;
		}
		s->quiesced = true;
		channel_store(s->rings.daemon, CHANNEL_DAEMON_FINAL,
		    s->peer.consumed + 1);
	}
}

size_t
session_set_flush_wait(struct session_set *set, int wait_ms)
{
	struct session *s;
	size_t left = 0;

	for (int waited = 0;; waited += 5) {
		left = 0;
		TAILQ_FOREACH(s, &set->list, entry) {
			conn_flush_now(s->conn);
			left += conn_unwritten(s->conn);
		}
		if (left == 0 || waited >= wait_ms)
			return left;
		poll(NULL, 0, 5);
	}
}

void
session_set_free_all(struct session_set *set)
{
	struct session *s;

	while ((s = TAILQ_FIRST(&set->list)) != NULL)
		session_free(s);
	pass_deinit(&set->pass);
	session_set_channels_release(set);
}

/*
 * Channels
 */

static uint64_t
session_clock_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A ring post: a POST body (proto.h) in a CHANNEL_POST record. */
static int
session_take(void *owner, const struct pass_item *it, void *arg)
{
	struct session *s = owner;
	struct session_set *set = arg;
	struct body_post b;

	/*
	 * Copied out of the client's memory once, then decoded: the client
	 * may rewrite its ring meanwhile, and only this copy counts.
	 */
	if (it->rec.kind != CHANNEL_POST || it->rec.flags != 0 ||
	    !pass_item_copy(it, 0, set->scratch, it->rec.len) ||
	    !body_post_get(set->scratch, it->rec.len, 0, &b))
		return -EPROTO;
	switch (broker_post(set->broker, &s->peer, b.mailbox_id,
	    b.payload.ptr, b.payload.len, -1, false)) {
	case 0:
		return 0;
	case BROKER_POST_DROPPED:
		s->dropped[s->ndropped++ % BODY_DROPPED_MAX] = it->pos;
		return 0;
	default:
		return -EPROTO;
	}
}

/* The client waits for room in its tx ring: a WAKE on the socket. */
static void
session_wake(void *owner, void *arg)
{
	struct session *s = owner;
	struct proto_writer *w = conn_out(s->conn);
	size_t start;

	(void)arg;
	if (conn_dead(s->conn))
		return;
	start = proto_frame_begin(w);
	proto_frame_end(w, start, PROTO_WAKE, 0, 0, 0);
	conn_flush_soon(s->conn);
}

/*
 * Every doorbell that rang since the last look heats its ring.  All of
 * them, ready at once: a post published to a cold ring before this
 * pass's t0 rang its doorbell before t0, so it is among these.
 */
static void
session_poll(struct pass *p, void *arg)
{
	struct session_set *set = arg;
	struct epoll_event ev[64];
	int n;

	/* After t0 and its fence: the order rule covers freed room. */
	session_set_consume(set);
	if (set->doorbells < 0)
		return;
	do {
		n = epoll_wait(set->doorbells, ev, 64, 0);
		for (int i = 0; i < n; i++) {
			struct session *s = ev[i].data.ptr;

			rings_doorbell_drain(&s->rings);
			pass_heat(p, &s->src);
		}
	} while (n == 64);
}

static void
session_broken(void *owner, void *arg)
{
	struct session *s = owner;

	(void)arg;
	conn_kill(s->conn, "malformed channel record");
}

/*
 * Consumption by a store (PROTOCOL.md): the client's word, taken as
 * the broker clamps it.
 */
static void
session_consume(struct session *s)
{
	if (s->has_channel && broker_has_stored(&s->peer))
		broker_consumed(s->set->broker, &s->peer,
		    channel_load(s->rings.client, CHANNEL_CLIENT_CONSUMED));
}

/*
 * Reads every consumer's word; one that holds nothing more leaves the
 * list.  Acknowledging may deliver more: newcomers join at the tail.
 */
static void
session_set_consume(struct session_set *set)
{
	struct session *s, *next;

	for (s = TAILQ_FIRST(&set->consumers); s != NULL; s = next) {
		session_consume(s);
		next = TAILQ_NEXT(s, consumer_entry);
		if (!broker_has_stored(&s->peer)) {
			TAILQ_REMOVE(&set->consumers, s, consumer_entry);
			s->consuming = false;
		}
	}
}

/*
 * mbxd is about to sleep while a send is parked, which a receive's store
 * may let in: every consumer's watch word gets a new value, then a fence,
 * then their words are read.  Either this read sees a store or its writer
 * sees the new value after it and rings, once per value: one wake-up per
 * sleep, however many receives.  While mbxd runs passes it reads the
 * words itself and moves nothing.
 */
static void
session_set_arm(struct session_set *set)
{
	struct session *s;

	if (TAILQ_EMPTY(&set->consumers) || !broker_sends_wait(set->broker))
		return;
	set->watch_gen++;
	TAILQ_FOREACH(s, &set->consumers, consumer_entry)
		channel_store(s->rings.daemon, CHANNEL_DAEMON_WATCH,
		    set->watch_gen);
	channel_fence();
	session_set_consume(set);
}

/* The loop woke on a doorbell: the pass after this turn takes it. */
static void
session_doorbell_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session_set *set = arg;

	(void)fd;
	(void)what;
	set->rang = true;
}

/* What the first channel needs of the set: the epoll set, the scratch. */
static int
session_set_channels(struct session_set *set)
{
	if (set->doorbells >= 0)
		return 0;
	if ((set->scratch = malloc(CHANNEL_REC_MAX)) == NULL)
		return -ENOMEM;
	if ((set->doorbells = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		int err = -errno;

		session_set_channels_release(set);
		return err;
	}
	set->doorbell_ev = event_new(set->base, set->doorbells,
	    EV_READ | EV_PERSIST, session_doorbell_cb, set);
	if (set->doorbell_ev == NULL || event_add(set->doorbell_ev, NULL) < 0) {
		session_set_channels_release(set);
		return -ENOMEM;
	}
	return 0;
}

static void
session_set_turn_passes(struct session_set *set)
{
	uint64_t now;

	/*
	 * Nothing hot and no doorbell: no pass (its clock reads and its
	 * epoll_wait) after a turn that only served sockets.
	 */
	if (set->nchannels == 0 || (pass_idle(&set->pass) && !set->rang))
		return;
	set->rang = false;
	if (pass_run(&set->pass) != 0 || pass_idle(&set->pass)) {
		set->idle_since = 0;
		if (set->after_batch != NULL)
			set->after_batch(set->ctx);
		return;
	}
	now = session_clock_ns();
	if (set->idle_since == 0)
		set->idle_since = now;
	if (now - set->idle_since < SESSION_SPIN_NS)
		return;
	pass_cool_all(&set->pass);
	set->idle_since = 0;
}

void
session_set_turn(struct session_set *set)
{
	session_set_turn_passes(set);
	/* No hot ring: the loop sleeps next (server.c). */
	if (set->nchannels > 0 && pass_idle(&set->pass))
		session_set_arm(set);
}

bool
session_set_busy(const struct session_set *set)
{
	return !pass_idle(&set->pass);
}

/*
 * CHANNEL: makes the channel and answers with its three descriptors
 * (client set, daemon set, doorbell).  One per connection.
 */
static int
session_channel(struct session *s, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct session_set *set = s->set;
	struct proto_writer *w;
	struct body_reply_channel b = { PROTO_OK, CHANNEL_RING_SIZE };
	struct epoll_event ev = { .events = EPOLLIN };
	int err, give[3] = { -1, -1, -1 };
	size_t start;

	(void)body;
	(void)fds;
	if (h->len != 0 || h->flags != 0)
		return -1;
	if (s->has_channel) {
		session_reply_status(s, h->id, -EEXIST);
		return 0;
	}
	if (!session_may_take_fds(&s->peer, 3)) {
		session_reply_status(s, h->id, -EMFILE);
		return 0;
	}
	if ((err = session_set_channels(set)) < 0 ||
	    (err = broker_charge_channel(set->broker, &s->peer,
	    RINGS_CHARGE)) < 0 || (err = rings_new(&s->rings)) < 0)
		goto fail;
	/*
	 * The conn closes what it sends: the memfds go (mbxd keeps its
	 * mappings), the doorbell is sent as a copy, the original watched.
	 */
	give[0] = s->rings.client_fd;
	give[1] = s->rings.daemon_fd;
	give[2] = fcntl(s->rings.doorbell, F_DUPFD_CLOEXEC, 0);
	if (give[2] < 0) {
		err = -errno;
		goto fail;
	}
	ev.data.ptr = s;
	if (epoll_ctl(set->doorbells, EPOLL_CTL_ADD, s->rings.doorbell,
	    &ev) < 0) {
		err = -errno;
		close(give[2]);
		goto fail;
	}
	w = conn_out(s->conn);
	start = proto_frame_begin(w);
	body_reply_channel_put(w, &b);
	proto_frame_end(w, start, PROTO_REPLY, h->id, 0, 3);
	for (int i = 0; i < 3; i++)
		if (conn_attach_fd(s->conn, start, give[i]) < 0) {
			/*
			 * Those attached are the conn's; the rest ours.  The
			 * doorbell leaves the epoll set by hand: a copy of it
			 * may live on in the conn.
			 */
			for (int j = i; j < 3; j++)
				close(give[j]);
			s->rings.client_fd = s->rings.daemon_fd = -1;
			epoll_ctl(set->doorbells, EPOLL_CTL_DEL,
			    s->rings.doorbell, NULL);
			conn_kill(s->conn, "out of memory for descriptors");
			rings_free(&s->rings);
			if (set->nchannels == 0)
				session_set_channels_release(set);
			return 0;
		}
	/* The memfds are mapped: mbxd needs no descriptor of them. */
	s->rings.client_fd = s->rings.daemon_fd = -1;
	pass_source_init(&s->src, s->rings.client, s->rings.daemon, 0, s);
	s->has_channel = true;
	/*
	 * The MSG frames written from now on follow this answer: those may
	 * be acknowledged by a store, and the notices counted so far were
	 * queued ahead of it.
	 */
	s->peer.consumes_by_store = true;
	channel_store(s->rings.daemon, CHANNEL_DAEMON_NOTICE, s->notice_seq);
	set->nchannels++;
	conn_flush_soon(s->conn);
	return 0;
fail:
	rings_free(&s->rings);
	if (set->nchannels == 0)
		session_set_channels_release(set);
	session_reply_status(s, h->id, err);
	return 0;
}

/*
 * Replies.
 */

/* Starts a REPLY frame; the caller writes its body and ends it. */
static size_t
session_reply_begin(struct session *s)
{
	return proto_frame_begin(conn_out(s->conn));
}

static void
session_reply_end(struct session *s, size_t start, uint32_t req, uint32_t flags)
{
	proto_frame_end(conn_out(s->conn), start, PROTO_REPLY, req, flags, 0);
	conn_flush_soon(s->conn);
}

/* The answer that is a status alone. */
static void
session_reply_status(struct session *s, uint32_t req, int err)
{
	struct body_reply b = { proto_errno_to_status(err) };
	size_t start = session_reply_begin(s);

	body_reply_put(conn_out(s->conn), &b);
	session_reply_end(s, start, req, 0);
}

static void
session_reply(struct peer *p, uint32_t req, int err)
{
	struct session *s = p->ctx;

	if (!conn_dead(s->conn))
		session_reply_status(s, req, err);
}

/* The answer to a SENDV: err, and how many of its messages were enqueued. */
static void
session_reply_sendv(struct session *s, uint32_t req, int err, size_t done)
{
	struct body_reply_sendv b = { proto_errno_to_status(err),
	    (uint32_t)done };
	size_t start = session_reply_begin(s);

	body_reply_sendv_put(conn_out(s->conn), &b);
	session_reply_end(s, start, req, 0);
}

static void
session_deliver(struct peer *p, uint32_t req, const struct msg *m, bool more)
{
	struct session *s = p->ctx;
	struct proto_writer *w = conn_out(s->conn);
	struct body_msg b = {
		.msg_id = m->id,
		.mailbox = { m->mbox->name, m->mbox->name_len },
		.sender_id = m->sender_id,
		.pid = m->pid,
		.uid = m->uid,
		.attempt = m->attempts,
		.origin = { m->origin, m->origin != NULL ? strlen(m->origin) :
		    0 },
		.origin_attempts = m->origin_attempts,
		.has_fd = m->fd >= 0,
		.size = m->len,
		.payload = { (const char *)m->data, m->len },
	};
	uint32_t flags = 0;
	size_t start;

	if (conn_dead(s->conn))
		return;
	start = proto_frame_begin(w);
	body_msg_put(w, &b);
	if (b.has_fd) {
		/* The message keeps its descriptor until acknowledged. */
		int fd = fcntl(m->fd, F_DUPFD_CLOEXEC, 0);

		if (fd < 0 || conn_attach_fd(s->conn, start, fd) < 0) {
			/* Unsendable: it stays in flight and comes back. */
			if (fd >= 0)
				close(fd);
			conn_kill(s->conn, "cannot pass a descriptor");
			return;
		}
		flags |= PROTO_MSG_FD | (m->shared ? PROTO_MSG_SHARED : 0);
	}
	if (m->stored) {
		flags |= PROTO_MSG_STORE;
		if (!s->consuming && !s->closing && !s->quiesced) {
			s->consuming = true;
			TAILQ_INSERT_TAIL(&s->set->consumers, s, consumer_entry);
		}
	}
	proto_frame_end(w, start, PROTO_MSG, req, flags |
	    (m->sender != NULL || m->log_seq != 0 ? PROTO_MSG_SYNC : 0) |
	    (m->log_seq != 0 ? PROTO_MSG_DURABLE : 0) |
	    (more ? PROTO_MSG_MORE : 0), b.has_fd ? 1 : 0);
	conn_flush_soon(s->conn);
}

/*
 * Queues a REVOKE of what (and for PROTO_REVOKE_MSG, of message msg_id)
 * about mb; false when the connection is going anyway.
 */
static bool
session_put_revoke(struct session *s, const struct mailbox *mb,
    unsigned what, uint64_t msg_id)
{
	struct proto_writer *w = conn_out(s->conn);
	struct body_revoke b = { what, { mb->name, mb->name_len }, mb->id,
	    msg_id };
	size_t start;

	if (conn_dead(s->conn))
		return false;
	start = proto_frame_begin(w);
	body_revoke_put(w, &b);
	proto_frame_end(w, start, PROTO_REVOKE, 0, 0, 0);
	/* Moved after the frame is queued: a client that sees it reads it. */
	s->notice_seq++;
	if (s->has_channel)
		channel_store(s->rings.daemon, CHANNEL_DAEMON_NOTICE,
		    s->notice_seq);
	return true;
}

static void
session_revoke(struct peer *p, const struct mailbox *mb, unsigned what)
{
	struct session *s = p->ctx;

	if (!session_put_revoke(s, mb, what, 0))
		return;
	/*
	 * A grant ended with its mailbox: the sequence moves, after the
	 * REVOKE is queued, so that a client whose post follows it in its
	 * ring asks (GRANT_CHECK) and hears the REVOKE before the answer.
	 */
	if (what == PROTO_REVOKE_GONE && s->has_channel)
		channel_store(s->rings.daemon, CHANNEL_DAEMON_REVOKE,
		    ++s->revoke_seq);
	conn_flush_soon(s->conn);
}

/*
 * The first half of a withdrawal (credit.h): the REVOKE is queued and
 * the revocation word moves, as for a mailbox gone, and the ring is
 * drained before the grant ends (session_set_withdraw_end()).  Only with a
 * channel: socket posts are not checked against the word.
 */
static bool
session_withdraw(struct peer *p, const struct mailbox *mb)
{
	struct session *s = p->ctx;

	if (!s->has_channel ||
	    !session_put_revoke(s, mb, PROTO_REVOKE_CREDIT, 0))
		return false;
	channel_store(s->rings.daemon, CHANNEL_DAEMON_REVOKE, ++s->revoke_seq);
	s->withdrawing = true;
	conn_flush_soon(s->conn);
	return true;
}

/*
 * The second half: the fence pair of PROTOCOL.md ("Withdrawn grants").
 * The word moved before the fence; each holder's ring is drained after
 * it, so a post published before its sender read the old word is taken
 * on the grant, and one published after is dropped (its sender sees the
 * new word and asks, GRANT_CHECK).  Then the grants end.
 */
void
session_set_withdraw_end(struct session_set *set)
{
	struct session *s;

	if (!broker_withdrawing(set->broker))
		return;
	channel_fence();
	TAILQ_FOREACH(s, &set->list, entry)
		if (s->withdrawing) {
			s->withdrawing = false;
			session_channel_drain(s);
		}
	broker_withdraw_end(set->broker);
}

/*
 * The ACKs and NACKs p wrote before now: libmbx writes a receive's ACK
 * before the call returns, possibly ahead of its next request, and an
 * mbx_ack() writes its ACK and returns.  The takeback word moves first,
 * then a full fence, then the socket is read: the pair of PROTOCOL.md
 * ("Taken back"), so an ACK written before its writer saw the word move
 * is applied here, and one written after is checked by its writer.
 */
static void
session_settle(struct peer *p)
{
	struct session *s = p->ctx;

	if (s->has_channel) {
		channel_store(s->rings.daemon, CHANNEL_DAEMON_TAKEBACK,
		    ++s->takeback_seq);
		channel_fence();
		session_consume(s);
	}
	conn_take_leading(s->conn, (1u << PROTO_ACK) | (1u << PROTO_NACK));
}

/* One message went back from p: its ACK or NACK is stale from now. */
static void
session_takeback(struct peer *p, const struct mailbox *mb, uint64_t msg_id)
{
	struct session *s = p->ctx;

	if (session_put_revoke(s, mb, PROTO_REVOKE_MSG, msg_id))
		conn_flush_soon(s->conn);
}

/* Answers req with err unless the call was parked. */
static void
session_answer(struct session *s, uint32_t req, int ret)
{
	if (ret != BROKER_PARKED)
		session_reply(&s->peer, req, ret);
}

/*
 * Requests.  Each handler decodes its body (proto/body.h) and returns -1
 * when it is malformed.  fds holds the frame's h->nfds descriptors
 * (SEND and POST only): the handler's when it returns 0; when it returns
 * -1, session_frame() closes those whose slot it did not set to -1.
 */

static int
session_hello(struct session *s, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_hello b;
	struct body_reply_hello rb;
	int err;
	size_t start;

	(void)fds;
	if (!body_hello_get(body, h->len, h->flags, &b))
		return -1;
	err = b.version != PROTO_VERSION ? -EPROTO : s->refused;
	rb.status = proto_errno_to_status(err);
	rb.version = PROTO_VERSION;
	rb.client_id = s->registered ? s->peer.id : 0;
	start = session_reply_begin(s);
	body_reply_hello_put(conn_out(s->conn), &rb);
	session_reply_end(s, start, h->id, 0);
	if (b.version != PROTO_VERSION)
		log_warn("client %llu speaks protocol %u, not %u: closing",
		    (unsigned long long)s->peer.id, b.version, PROTO_VERSION);
	if (err != 0)
		conn_close_after_flush(s->conn);
	event_free(s->handshake);
	s->handshake = NULL;
	s->greeted = true;
	return 0;
}

static int
session_create(struct session *s, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_create b;
	struct broker_attr a;
	int ret;

	(void)fds;
	if (!body_create_get(body, h->len, h->flags, &b))
		return -1;
	a.capacity = (long)b.capacity;
	a.max_msg = b.max_msg;
	a.mode = b.mode;
	a.uid = s->peer.uid;
	a.gid = b.gid == PROTO_ID_NONE ? (gid_t)-1 : (gid_t)b.gid;
	a.max_attempts = b.max_attempts;
	a.ack_timeout_ms = b.ack_timeout_ms;
	a.dead_letter = b.dead_letter.ptr;
	a.dead_letter_len = b.dead_letter.len;
	a.durable = b.durable;
	/* 0 means "the default" inside the daemon only: a client says. */
	if (b.capacity < -1 || a.max_msg == 0)
		ret = -EINVAL;
	else
		ret = broker_create(s->set->broker, &s->peer, b.name.ptr,
		    b.name.len, &a);
	if (ret == 0)
		log_info("mailbox %.*s created by client %llu",
		    (int)b.name.len, b.name.ptr,
		    (unsigned long long)s->peer.id);
	session_answer(s, h->id, ret);
	return 0;
}

static int
session_destroy(struct session *s, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_name b;
	int ret;

	(void)fds;
	if (!body_name_get(body, h->len, h->flags, &b))
		return -1;
	ret = broker_destroy(s->set->broker, &s->peer, b.name.ptr, b.name.len);
	if (ret == 0)
		log_info("mailbox %.*s destroyed by client %llu",
		    (int)b.name.len, b.name.ptr,
		    (unsigned long long)s->peer.id);
	session_answer(s, h->id, ret);
	return 0;
}

static int
session_bind(struct session *s, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_bind b;

	(void)fds;
	if (!body_bind_get(body, h->len, h->flags, &b))
		return -1;
	session_answer(s, h->id, broker_bind(s->set->broker, &s->peer,
	    b.name.ptr, b.name.len, b.how > 2 ? -1 : (int)b.how));
	return 0;
}

static int
session_unbind(struct session *s, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_name b;

	(void)fds;
	if (!body_name_get(body, h->len, h->flags, &b))
		return -1;
	session_answer(s, h->id, broker_unbind(s->set->broker, &s->peer,
	    b.name.ptr, b.name.len, (h->flags & PROTO_UNBIND_EVICT) != 0));
	return 0;
}

static int
session_rebind(struct session *s, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_rebind b;
	int ret;

	(void)fds;
	if (!body_rebind_get(body, h->len, h->flags, &b))
		return -1;
	ret = broker_rebind(s->set->broker, &s->peer, b.name.ptr, b.name.len,
	    b.client_id);
	if (ret == 0)
		log_info("mailbox %.*s rebound to client %llu by client %llu",
		    (int)b.name.len, b.name.ptr,
		    (unsigned long long)b.client_id,
		    (unsigned long long)s->peer.id);
	session_answer(s, h->id, ret);
	return 0;
}

static int
session_chmod(struct session *s, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_chmod b;
	int ret;

	(void)fds;
	if (!body_chmod_get(body, h->len, h->flags, &b))
		return -1;
	ret = broker_chmod(s->set->broker, &s->peer, b.name.ptr, b.name.len,
	    b.mode);
	/* Before the answer: nothing gets in after it that may not. */
	session_set_withdraw_end(s->set);
	session_answer(s, h->id, ret);
	return 0;
}

static int
session_chown(struct session *s, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_chown b;
	int ret;

	(void)fds;
	if (!body_chown_get(body, h->len, h->flags, &b))
		return -1;
	ret = broker_chown(s->set->broker, &s->peer, b.name.ptr, b.name.len,
	    b.uid == PROTO_ID_NONE ? (uid_t)-1 : b.uid,
	    b.gid == PROTO_ID_NONE ? (gid_t)-1 : b.gid);
	session_set_withdraw_end(s->set);
	session_answer(s, h->id, ret);
	return 0;
}

static int
session_purge(struct session *s, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_name b;
	int ret;

	(void)fds;
	if (!body_name_get(body, h->len, h->flags, &b))
		return -1;
	ret = broker_purge(s->set->broker, &s->peer, b.name.ptr, b.name.len);
	if (ret == 0)
		log_info("mailbox %.*s purged by client %llu", (int)b.name.len,
		    b.name.ptr, (unsigned long long)s->peer.id);
	session_answer(s, h->id, ret);
	return 0;
}

/* A SEND, inline or (PROTO_SEND_FD) with its memfd in fds[0]. */
static int
session_send(struct session *s, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct broker_send bs;
	struct body_send b;
	struct body_reply_send rb;
	size_t start;
	int ret;

	if (!body_send_get(body, h->len, h->flags, &b) ||
	    h->nfds != (b.has_fd ? 1 : 0) ||
	    (h->flags & ~(PROTO_SEND_SYNC | PROTO_SEND_FD |
	    PROTO_SEND_SHARED | PROTO_SEND_CREDIT)) != 0 ||
	    ((h->flags & PROTO_SEND_SHARED) && !b.has_fd) || b.size > SIZE_MAX)
		return -1;
	bs.timeout_ms = b.timeout_ms;
	bs.name = b.name.ptr;
	bs.name_len = b.name.len;
	bs.data = b.payload.ptr;
	bs.len = (size_t)b.size;
	bs.fd = b.has_fd ? fds[0] : -1;
	bs.shared = (h->flags & PROTO_SEND_SHARED) != 0;
	bs.sync = (h->flags & PROTO_SEND_SYNC) != 0;
	/* Room held for a sender that will not use it is room lost. */
	bs.want_credit = (h->flags & PROTO_SEND_CREDIT) != 0;
	if (b.has_fd && (ret = memfd_check(bs.fd, b.size, bs.shared)) < 0) {
		close(bs.fd);
		session_answer(s, h->id, ret);
		return 0;
	}
	bs.credit_count = 0;
	bs.credit_zerocopy = false;
	bs.credit_shared = false;
	/* Full, with room others hold and do not use: theirs comes back. */
	if (broker_withdraw_room(s->set->broker, &s->peer, bs.name,
	    bs.name_len) > 0)
		session_set_withdraw_end(s->set);
	ret = bs.timeout_ms < -1 ? -EINVAL :
	    broker_send(s->set->broker, &s->peer, h->id, &bs);
	/* Not taken: the send failed and the descriptor goes. */
	if (bs.fd >= 0)
		close(bs.fd);
	if (ret != 0 || bs.credit_count == 0) {
		session_answer(s, h->id, ret);
		return 0;
	}
	rb.status = PROTO_OK;
	rb.has_grant = true;
	rb.mailbox_id = bs.mailbox_id;
	rb.count = bs.credit_count;
	rb.bytes = bs.credit_bytes;
	rb.max_msg = bs.max_msg;
	start = session_reply_begin(s);
	body_reply_send_put(conn_out(s->conn), &rb);
	session_reply_end(s, start, h->id,
	    (bs.credit_zerocopy ? PROTO_REPLY_ZEROCOPY : 0) |
	    (bs.credit_shared ? PROTO_REPLY_SHARED : 0));
	return 0;
}

/* The largest batch a SENDV may carry. */
#define SESSION_SENDV_MAX	1024

static int
session_sendv(struct session *s, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_sendv v;
	struct body_sendv_item it;
	struct broker_send *bs;
	uint32_t n = 0;
	size_t done;
	int err;

	(void)fds;
	if (!body_sendv_get(body, h->len, h->flags, &v) || v.count == 0 ||
	    v.count > SESSION_SENDV_MAX || h->flags != 0)
		return -1;
	if ((bs = calloc(v.count, sizeof(*bs))) == NULL) {
		session_reply_sendv(s, h->id, -ENOMEM, 0);
		return 0;
	}
	while (n < v.count && body_sendv_next(&v, &it)) {
		bs[n].name = it.name.ptr;
		bs[n].name_len = it.name.len;
		bs[n].data = it.payload.ptr;
		bs[n].len = it.payload.len;
		bs[n].fd = -1;
		n++;
	}
	done = broker_sendv(s->set->broker, &s->peer, bs, n, &err);
	/* As for a SEND: a full mailbox gets back the room others hold. */
	while (err == -EAGAIN && done < n && broker_withdraw_room(
	    s->set->broker, &s->peer, bs[done].name, bs[done].name_len) > 0) {
		session_set_withdraw_end(s->set);
		done += broker_sendv(s->set->broker, &s->peer, bs + done,
		    n - done, &err);
	}
	free(bs);
	session_reply_sendv(s, h->id, err, done);
	return 0;
}

/*
 * A POST, inline or (PROTO_POST_FD) with its memfd in fds[0].  A memfd
 * that fails the checks of a memfd SEND, like a post past its mailbox's
 * max_msg, is something no library sends: the connection is closed.
 */
static int
session_post(struct session *s, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_post b;
	bool shared = (h->flags & PROTO_POST_SHARED) != 0;
	int fd;

	if (!body_post_get(body, h->len, h->flags, &b) ||
	    h->nfds != (b.has_fd ? 1 : 0) ||
	    (h->flags & ~(PROTO_POST_FD | PROTO_POST_SHARED)) != 0 ||
	    (shared && !b.has_fd) || b.size > SIZE_MAX)
		return -1;
	if (!b.has_fd)
		return broker_post(s->set->broker, &s->peer, b.mailbox_id,
		    b.payload.ptr, b.payload.len, -1, false) < 0 ? -1 : 0;
	if (memfd_check(fds[0], b.size, shared) < 0)
		return -1;
	fd = fds[0];
	/* The descriptor is the broker's from here, whatever happens. */
	fds[0] = -1;
	return broker_post(s->set->broker, &s->peer, b.mailbox_id, NULL,
	    (size_t)b.size, fd, shared) < 0 ? -1 : 0;
}

static int
session_recv(struct session *s, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_recv b;
	struct broker_recv rq;
	int ret;

	(void)fds;
	if (!body_recv_get(body, h->len, h->flags, &b))
		return -1;
	rq.timeout_ms = b.timeout_ms;
	rq.cap = b.cap;
	rq.max = b.max_count;
	rq.budget = b.budget;
	if (rq.budget > SESSION_RECV_MAX_BUDGET)
		rq.budget = SESSION_RECV_MAX_BUDGET;
	rq.name = b.name.len > 0 ? b.name.ptr : NULL;
	rq.name_len = b.name.len;
	rq.explicit_ack = b.explicit_ack;
	/* A planned restart hands nothing out after the final settle. */
	ret = rq.timeout_ms < -1 ? -EINVAL : s->set->quiescing ? -ESHUTDOWN :
	    broker_recv(s->set->broker, &s->peer, h->id, &rq);
	/* 0: the message itself was the answer. */
	if (ret != 0)
		session_answer(s, h->id, ret);
	return 0;
}

static int
session_ack(struct session *s, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	bool reply = (h->flags & PROTO_ACK_REPLY) != 0;
	struct body_ack b;
	int ret;

	(void)fds;
	/* One or more ids; an answer only for exactly one. */
	if (!body_ack_get(body, h->len, h->flags, &b) ||
	    (reply && b.count != 1))
		return -1;
	if (reply) {
		/* A durable mailbox's is answered once its DEL is synced. */
		ret = broker_ack_reply(s->set->broker, &s->peer,
		    body_ack_id(&b, 0), h->id);
		if (ret != BROKER_PARKED)
			session_reply(&s->peer, h->id, ret);
		return 0;
	}
	for (size_t i = 0; i < b.count; i++)
		(void)broker_ack(s->set->broker, &s->peer, body_ack_id(&b, i));
	return 0;
}

static int
session_nack(struct session *s, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_nack b;
	int ret;

	(void)fds;
	if (!body_nack_get(body, h->len, h->flags, &b))
		return -1;
	ret = broker_nack(s->set->broker, &s->peer, b.msg_id, b.delay_ms);
	if (b.reply)
		session_reply(&s->peer, h->id, ret);
	return 0;
}

/*
 * LIST and CLIENTS: one page of the view, from the cursor the body may
 * carry (none: the first page).  A page that another follows says so
 * with PROTO_REPLY_MORE and ends with the cursor of the next.
 */
static int
session_list(struct session *s, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_list b;
	struct body_reply_page rb;
	struct admin_page pg;
	size_t start;
	int err;

	(void)fds;
	if (!body_list_get(body, h->len, h->flags, &b) || h->flags != 0)
		return -1;
	err = h->type == PROTO_LIST ?
	    admin_list_page(s->set->broker, b.cursor.ptr, b.cursor.len, &pg) :
	    admin_clients_page(s->set->broker, b.cursor.ptr, b.cursor.len,
	    &pg);
	if (err < 0) {
		session_reply(&s->peer, h->id, err);
		return 0;
	}
	rb.status = PROTO_OK;
	rb.json = (struct proto_str){ pg.text, pg.len };
	rb.more = pg.more;
	rb.cursor = (struct proto_str){ pg.cursor, pg.cursor_len };
	start = session_reply_begin(s);
	body_reply_page_put(conn_out(s->conn), &rb);
	session_reply_end(s, start, h->id, pg.more ? PROTO_REPLY_MORE : 0);
	admin_page_free(&pg);
	return 0;
}

/*
 * GRANT_CHECK: which of this connection's ring posts at or after a
 * position were dropped.  Its ring is taken up to its tail first, so
 * that every post published before the request is judged.
 */
static int
session_grant_check(struct session *s, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_grant_check b;
	struct body_reply_grant_check r = { PROTO_OK, 0, { 0 } };
	uint64_t first;
	size_t start;

	(void)fds;
	if (h->flags != 0 || !body_grant_check_get(body, h->len, 0, &b))
		return -1;
	if (!s->has_channel) {
		session_reply_status(s, h->id, -EINVAL);
		return 0;
	}
	session_channel_drain(s);
	if (s->src.broken)
		return 0;	/* closed already: its ring broke the rules */
	first = s->ndropped > BODY_DROPPED_MAX ?
	    s->ndropped - BODY_DROPPED_MAX : 0;
	for (uint64_t i = first; i < s->ndropped; i++) {
		uint64_t pos = s->dropped[i % BODY_DROPPED_MAX];

		if (pos >= b.from)
			r.pos[r.n++] = pos;
	}
	start = session_reply_begin(s);
	body_reply_grant_check_put(conn_out(s->conn), &r);
	session_reply_end(s, start, h->id, 0);
	return 0;
}

typedef int (*session_handler)(struct session *, const struct proto_header *,
    const uint8_t *, int *);

static const session_handler session_handlers[] = {
	[PROTO_HELLO] = session_hello,
	[PROTO_CREATE] = session_create,
	[PROTO_DESTROY] = session_destroy,
	[PROTO_BIND] = session_bind,
	[PROTO_UNBIND] = session_unbind,
	[PROTO_SEND] = session_send,
	[PROTO_RECV] = session_recv,
	[PROTO_ACK] = session_ack,
	[PROTO_REBIND] = session_rebind,
	[PROTO_LIST] = session_list,
	[PROTO_CLIENTS] = session_list,
	[PROTO_CHMOD] = session_chmod,
	[PROTO_CHOWN] = session_chown,
	[PROTO_PURGE] = session_purge,
	[PROTO_SENDV] = session_sendv,
	[PROTO_POST] = session_post,
	[PROTO_CHANNEL] = session_channel,
	[PROTO_GRANT_CHECK] = session_grant_check,
	[PROTO_NACK] = session_nack,
};

static int
session_frame(void *ctx, const struct proto_header *h, const uint8_t *body,
    int *fds)
{
	struct session *s = ctx;
	session_handler fn = NULL;
	int ret;

	if (h->type < sizeof(session_handlers) / sizeof(session_handlers[0]))
		fn = session_handlers[h->type];
	/*
	 * The handshake comes first and once, and is all a refused client
	 * may say (to hear why); only SEND and POST carry a descriptor.
	 */
	if (fn == NULL || h->id == 0 || (h->nfds != 0 &&
	    h->type != PROTO_SEND && h->type != PROTO_POST) ||
	    (h->type == PROTO_HELLO) == s->greeted ||
	    (s->refused != 0 && h->type != PROTO_HELLO)) {
		for (unsigned i = 0; i < h->nfds; i++)
			close(fds[i]);
		log_warn("client %llu: unexpected frame type %u (%u "
		    "descriptors): closing", (unsigned long long)s->peer.id,
		    h->type, h->nfds);
		return -1;
	}
	/*
	 * Posts published before this request was written are queued
	 * first: they were published before it was read, so the passes,
	 * which start now, see them (PROTOCOL.md, "The order rule"); as many
	 * passes as it takes to get past a ring's batch limit.
	 */
	if (s->set->nchannels > 0)
		pass_run_before(&s->set->pass, session_clock_ns());
	ret = fn(s, h, body, fds);
	if (ret < 0) {
		/* Refused: the descriptors no handler took go with it. */
		for (unsigned i = 0; i < h->nfds; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		log_warn("client %llu: malformed frame type %u: closing",
		    (unsigned long long)s->peer.id, h->type);
	}
	if (s->set->after_batch != NULL)
		s->set->after_batch(s->set->ctx);
	return ret;
}
