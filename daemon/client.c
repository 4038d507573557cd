/*
 * client.c - one connection's protocol: handshake, request dispatch and
 * the encoding of replies and messages (the wire layout itself lives in
 * proto/).
 *
 * A request that breaks the protocol (a bad body, an unknown or
 * daemon-only type, a request before the handshake) closes only this
 * connection: who sent the bad data pays for it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "admin.h"
#include "client.h"
#include "conn.h"
#include "log.h"
#include "mailbox.h"
#include "memfd.h"
#include "proto.h"

struct client {
	struct client_set *set;
	struct conn	*conn;
	struct peer	 peer;
	bool		 registered;	/* peer is known to the broker */
	int		 refused;	/* why HELLO will be refused, or 0 */
	bool		 greeted;
	struct event	*handshake;	/* deadline for HELLO */
	TAILQ_ENTRY(client) entry;
};

static int  client_frame(void *, const struct proto_header *, const uint8_t *,
    int *);
static void client_closed(void *);
static int  client_charge(void *, const struct proto_header *, int64_t);
static int  client_refused(void *, const struct proto_header *);
static size_t client_reply_begin(struct client *, int);
static void client_reply_end(struct client *, size_t, uint32_t);
static void client_reply(struct peer *, uint32_t, int);
static void client_deliver(struct peer *, uint32_t, const struct msg *, bool);
static void client_revoke(struct peer *, const struct mailbox *, unsigned);
static void client_settle(struct peer *);
static void client_output(void *, int64_t, int);
static bool client_may_read(void *);
static bool client_may_take_fds(struct peer *, unsigned);

static const struct conn_ops client_conn_ops = {
	.frame = client_frame,
	.closed = client_closed,
	.charge = client_charge,
	.refused = client_refused,
	.output = client_output,
	.may_read = client_may_read,
};

static const struct peer_ops client_peer_ops = {
	.reply = client_reply,
	.deliver = client_deliver,
	.revoke = client_revoke,
	.settle = client_settle,
	.may_take_fds = client_may_take_fds,
};

/*
 * Most inline payload bytes one RECV batch carries past its first
 * message, whatever budget the client asks for: the batch is written at
 * once, so this bounds what a receive that is never read costs.
 */
#define CLIENT_RECV_MAX_BUDGET	(1024u * 1024)
/* Descriptors one connection may hold unread, whoever its uid. */
#define CLIENT_MAX_OUT_FDS	256

void
client_set_init(struct client_set *set, struct event_base *base,
    struct broker *b, void (*after_batch)(void *), void *ctx)
{
	TAILQ_INIT(&set->list);
	set->base = base;
	set->broker = b;
	set->after_batch = after_batch;
	set->ctx = ctx;
	set->handshake_ms = CLIENT_DEFAULT_HANDSHAKE_MS;
	set->nrefused = 0;
}

/*
 * The command name of pid, for operators; "?" when it cannot be read.
 * Its process chose it: it is escaped (proto_escape()) once, here, so
 * that CLIENTS (JSON wants UTF-8) and the log get text that is safe.
 */
static void
client_read_comm(pid_t pid, char *comm, size_t size)
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
client_credentials(struct peer *p, int fd)
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
	client_read_comm(cred.pid, p->comm, sizeof(p->comm));
	return 0;
}

static void
client_handshake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	log_warn("client %llu (pid %d) said nothing valid in %u ms: closing",
	    (unsigned long long)c->peer.id, (int)c->peer.pid,
	    c->set->handshake_ms);
	conn_kill(c->conn, NULL);
}

static int
client_charge(void *ctx, const struct proto_header *h, int64_t delta)
{
	struct client *c = ctx;

	/* A refused client has no account: it may announce nothing big. */
	if (!c->registered)
		return delta > 0 ? -1 : 0;
	/*
	 * An inline POST (u64 mailbox_id, u32 length, payload) that one of
	 * the connection's grants has room for: that room is already
	 * charged, and the post takes it.  Counting the frame too would
	 * charge the message twice.
	 */
	if (h != NULL && h->type == PROTO_POST &&
	    (h->flags & PROTO_POST_FD) == 0 && h->len >= 12 &&
	    broker_post_covered(&c->peer, h->len - 12))
		return CONN_COVERED;
	return broker_charge_input(c->set->broker, &c->peer, delta) < 0 ?
	    -1 : 0;
}

/*
 * A request too large for its sender's memory share, dropped unread: a
 * limit reached, answered ENOBUFS as the same request would be once read.
 * A POST has no answer, and no grant of the connection covered it (see
 * client_charge()): it would be dropped anyway.  No library sends
 * anything else that large.
 */
static int
client_refused(void *ctx, const struct proto_header *h)
{
	struct client *c = ctx;
	size_t start;

	if (!c->greeted || c->refused != 0 || h->id == 0 ||
	    (h->type != PROTO_SEND && h->type != PROTO_SENDV &&
	    h->type != PROTO_POST)) {
		log_warn("client %llu: a frame of type %u larger than its "
		    "memory share: closing", (unsigned long long)c->peer.id,
		    h->type);
		return -1;
	}
	if (h->type == PROTO_POST) {
		log_warn("client %llu: a post no grant covers, over its memory "
		    "share: dropped", (unsigned long long)c->peer.id);
		return 0;
	}
	start = client_reply_begin(c, -ENOBUFS);
	if (h->type == PROTO_SENDV)
		proto_put_u32(conn_out(c->conn), 0);
	client_reply_end(c, start, h->id);
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
client_output(void *ctx, int64_t bytes, int fds)
{
	struct client *c = ctx;
	struct account *acct = c->peer.acct;
	uint64_t share = c->set->broker->limits.max_bytes_per_uid;
	struct client *o;

	if (!c->registered || acct == NULL)
		return;
	c->peer.out_bytes = (uint64_t)((int64_t)c->peer.out_bytes + bytes);
	c->peer.out_fds = (unsigned)((int)c->peer.out_fds + fds);
	acct->out_bytes = (uint64_t)((int64_t)acct->out_bytes + bytes);
	acct->out_fds = (unsigned)((int)acct->out_fds + fds);
	if (!acct->out_over && acct->out_bytes > share &&
	    !broker_is_admin(c->set->broker, &c->peer))
		acct->out_over = true;
	if (!acct->out_over || acct->out_bytes >= share / 2)
		return;
	acct->out_over = false;
	TAILQ_FOREACH(o, &c->set->list, entry)
		if (o->registered && o->peer.acct == acct)
			conn_resume(o->conn);
}

static bool
client_may_read(void *ctx)
{
	struct client *c = ctx;

	return !c->registered || !c->peer.acct->out_over;
}

/*
 * The descriptors p's uid holds unread, refreshed from the kernel once
 * they reach the quota (a peer may have read them since they were last
 * looked at).  That walks every connection, so it is done at most every
 * CLIENT_FDS_LOOK_MS for a uid: a uid at its quota that keeps asking
 * cannot make each of its requests cost the daemon a walk.
 */
#define CLIENT_FDS_LOOK_MS	10

static unsigned
client_uid_out_fds(struct client *c)
{
	struct account *acct = c->peer.acct;
	uint64_t now = broker_now(c->set->broker);
	struct client *o;

	if (acct->out_fds < c->set->broker->limits.max_fds_per_uid ||
	    now - acct->out_fds_looked < CLIENT_FDS_LOOK_MS)
		return acct->out_fds;
	acct->out_fds_looked = now;
	TAILQ_FOREACH(o, &c->set->list, entry)
		if (o->registered && o->peer.acct == acct && o->conn != NULL)
			(void)conn_out_fds(o->conn);
	return acct->out_fds;
}

static bool
client_may_take_fds(struct peer *p, unsigned n)
{
	struct client *c = p->ctx;
	unsigned max = c->set->broker->limits.max_fds_per_uid;

	/* A closing connection takes nothing out of the daemon's table. */
	if (conn_dead(c->conn))
		return true;
	if (conn_out_fds(c->conn) + n > CLIENT_MAX_OUT_FDS)
		return false;
	return broker_is_admin(c->set->broker, p) ||
	    client_uid_out_fds(c) + n <= max;
}

static void
client_free(struct client *c)
{
	if (c->handshake != NULL)
		event_free(c->handshake);
	if (c->conn != NULL)
		conn_uncharge(c->conn);
	if (c->registered)
		broker_peer_remove(c->set->broker, &c->peer);
	else {
		peer_deinit(&c->peer);
		c->set->nrefused--;
	}
	conn_free(c->conn);
	TAILQ_REMOVE(&c->set->list, c, entry);
	free(c);
}

static void
client_closed(void *ctx)
{
	struct client *c = ctx;

	log_info("client %llu disconnected", (unsigned long long)c->peer.id);
	client_free(c);
}

/* Names the connection for the log and says who came. */
static void
client_announce(struct client *c)
{
	char label[32];

	snprintf(label, sizeof(label), "client %llu",
	    (unsigned long long)c->peer.id);
	conn_set_label(c->conn, label);
	if (c->registered)
		log_info("client %llu connected (pid %d, uid %u, %s)",
		    (unsigned long long)c->peer.id, (int)c->peer.pid,
		    c->peer.uid, c->peer.comm);
	else
		log_warn("pid %d (uid %u, %s) refused: %s", (int)c->peer.pid,
		    c->peer.uid, c->peer.comm, c->refused == -EDQUOT ?
		    "over its uid's connection quota" :
		    "over the daemon's connection cap");
}

int
client_new(struct client_set *set, int fd)
{
	struct client *c = calloc(1, sizeof(*c));
	struct timeval tv = { set->handshake_ms / 1000,
	    (set->handshake_ms % 1000) * 1000 };
	int err;

	if (c == NULL) {
		close(fd);
		return -ENOMEM;
	}
	c->set = set;
	peer_init(&c->peer);
	if ((err = client_credentials(&c->peer, fd)) < 0)
		goto fail;
	/*
	 * Over a quota: the HELLO will be answered with why, then closed.
	 * Those waiting to be told are capped, or they would be a way round
	 * the very quota that refused them.
	 */
	err = broker_peer_add(set->broker, &c->peer, &client_peer_ops, c);
	if (err == -ENOMEM || (err < 0 && set->nrefused >= CLIENT_MAX_REFUSED))
		goto fail;
	if (err < 0)
		set->nrefused++;
	c->registered = err == 0;
	c->refused = err;
	c->conn = conn_new(set->base, fd, PROTO_MAX_BODY, &client_conn_ops, c);
	fd = -1;
	c->handshake = evtimer_new(set->base, client_handshake_cb, c);
	if (c->conn == NULL || c->handshake == NULL ||
	    evtimer_add(c->handshake, &tv) < 0) {
		err = -ENOMEM;
		goto fail;
	}
	TAILQ_INSERT_TAIL(&set->list, c, entry);
	client_announce(c);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	if (c->handshake != NULL)
		event_free(c->handshake);
	if (c->registered)
		broker_peer_remove(set->broker, &c->peer);
	else
		peer_deinit(&c->peer);
	if (c->refused != 0)
		set->nrefused--;
	conn_free(c->conn);
	free(c);
	return err;
}

void
client_set_flush(struct client_set *set)
{
	struct client *c;

	TAILQ_FOREACH(c, &set->list, entry)
		conn_flush_now(c->conn);
}

void
client_set_free_all(struct client_set *set)
{
	struct client *c;

	while ((c = TAILQ_FIRST(&set->list)) != NULL)
		client_free(c);
}

/*
 * Replies.
 */

/* Starts a REPLY frame with status err; the caller ends it. */
static size_t
client_reply_begin(struct client *c, int err)
{
	struct proto_writer *w = conn_out(c->conn);
	size_t start = proto_frame_begin(w);

	proto_put_u32(w, proto_errno_to_status(err));
	return start;
}

static void
client_reply_end_flags(struct client *c, size_t start, uint32_t req,
    uint32_t flags)
{
	proto_frame_end(conn_out(c->conn), start, PROTO_REPLY, req, flags, 0);
	conn_flush_soon(c->conn);
}

static void
client_reply_end(struct client *c, size_t start, uint32_t req)
{
	client_reply_end_flags(c, start, req, 0);
}

static void
client_reply(struct peer *p, uint32_t req, int err)
{
	struct client *c = p->ctx;

	if (conn_dead(c->conn))
		return;
	client_reply_end(c, client_reply_begin(c, err), req);
}

static void
client_deliver(struct peer *p, uint32_t req, const struct msg *m, bool more)
{
	struct client *c = p->ctx;
	struct proto_writer *w = conn_out(c->conn);
	uint32_t flags = 0;
	size_t start;

	if (conn_dead(c->conn))
		return;
	start = proto_frame_begin(w);
	proto_put_u64(w, m->id);
	proto_put_str(w, m->mbox->name, m->mbox->name_len);
	proto_put_u64(w, m->sender_id);
	proto_put_u32(w, m->pid);
	proto_put_u32(w, m->uid);
	if (m->fd >= 0) {
		/* The message keeps its descriptor until acknowledged. */
		int fd = fcntl(m->fd, F_DUPFD_CLOEXEC, 0);

		proto_put_u64(w, m->len);
		if (fd < 0 || conn_attach_fd(c->conn, start, fd) < 0) {
			/* Unsendable: it stays in flight and comes back. */
			if (fd >= 0)
				close(fd);
			conn_kill(c->conn, "cannot pass a descriptor");
			return;
		}
		flags |= PROTO_MSG_FD | (m->shared ? PROTO_MSG_SHARED : 0);
	} else {
		proto_put_blob(w, m->data, m->len);
	}
	proto_frame_end(w, start, PROTO_MSG, req, flags |
	    (m->sender != NULL ? PROTO_MSG_SYNC : 0) |
	    (more ? PROTO_MSG_MORE : 0), m->fd >= 0 ? 1 : 0);
	conn_flush_soon(c->conn);
}

static void
client_revoke(struct peer *p, const struct mailbox *mb, unsigned what)
{
	struct client *c = p->ctx;
	struct proto_writer *w = conn_out(c->conn);
	size_t start;

	if (conn_dead(c->conn))
		return;
	start = proto_frame_begin(w);
	proto_put_u32(w, what);
	proto_put_str(w, mb->name, mb->name_len);
	proto_put_u64(w, mb->id);
	proto_frame_end(w, start, PROTO_REVOKE, 0, 0, 0);
	conn_flush_soon(c->conn);
}

/*
 * The ACKs p wrote before now: libmbx writes a receive's ACK before the
 * call returns, possibly ahead of its next request.
 */
static void
client_settle(struct peer *p)
{
	struct client *c = p->ctx;

	conn_take_leading(c->conn, PROTO_ACK);
}

/* Answers req with err unless the call was parked. */
static void
client_answer(struct client *c, uint32_t req, int ret)
{
	if (ret != BROKER_PARKED)
		client_reply(&c->peer, req, ret);
}

/*
 * Requests.  Each handler returns -1 when the body is malformed.
 */

static int
client_hello(struct client *c, const struct proto_header *h,
    struct proto_reader *r)
{
	uint32_t version = proto_get_u32(r);
	int err = version != PROTO_VERSION ? -EPROTO : c->refused;
	size_t start;

	if (!proto_reader_done(r))
		return -1;
	start = client_reply_begin(c, err);
	proto_put_u32(conn_out(c->conn), PROTO_VERSION);
	proto_put_u64(conn_out(c->conn), c->registered ? c->peer.id : 0);
	client_reply_end(c, start, h->id);
	if (version != PROTO_VERSION)
		log_warn("client %llu speaks protocol %u, not %u: closing",
		    (unsigned long long)c->peer.id, version, PROTO_VERSION);
	if (err != 0)
		conn_close_after_flush(c->conn);
	event_free(c->handshake);
	c->handshake = NULL;
	c->greeted = true;
	return 0;
}

static int
client_create(struct client *c, const struct proto_header *h,
    struct proto_reader *r)
{
	struct proto_str name = proto_get_str(r);
	int64_t capacity = proto_get_i64(r);
	struct broker_attr a;
	uint32_t gid;
	int ret;

	a.max_msg = proto_get_u64(r);
	a.mode = proto_get_u32(r);
	gid = proto_get_u32(r);
	if (!proto_reader_done(r))
		return -1;
	a.capacity = (long)capacity;
	a.uid = c->peer.uid;
	a.gid = gid == PROTO_ID_NONE ? (gid_t)-1 : (gid_t)gid;
	/* 0 means "the default" inside the daemon only: a client says. */
	if (capacity < -1 || a.max_msg == 0)
		ret = -EINVAL;
	else
		ret = broker_create(c->set->broker, &c->peer, name.ptr,
		    name.len, &a);
	if (ret == 0)
		log_info("mailbox %.*s created by client %llu", (int)name.len,
		    name.ptr, (unsigned long long)c->peer.id);
	client_answer(c, h->id, ret);
	return 0;
}

static int
client_destroy(struct client *c, const struct proto_header *h,
    struct proto_reader *r)
{
	struct proto_str name = proto_get_str(r);
	int ret;

	if (!proto_reader_done(r))
		return -1;
	ret = broker_destroy(c->set->broker, &c->peer, name.ptr, name.len);
	if (ret == 0)
		log_info("mailbox %.*s destroyed by client %llu", (int)name.len,
		    name.ptr, (unsigned long long)c->peer.id);
	client_answer(c, h->id, ret);
	return 0;
}

static int
client_bind(struct client *c, const struct proto_header *h,
    struct proto_reader *r)
{
	struct proto_str name = proto_get_str(r);
	uint32_t how = proto_get_u32(r);

	if (!proto_reader_done(r))
		return -1;
	client_answer(c, h->id, broker_bind(c->set->broker, &c->peer,
	    name.ptr, name.len, how > 2 ? -1 : (int)how));
	return 0;
}

static int
client_unbind(struct client *c, const struct proto_header *h,
    struct proto_reader *r)
{
	struct proto_str name = proto_get_str(r);

	if (!proto_reader_done(r))
		return -1;
	client_answer(c, h->id, broker_unbind(c->set->broker, &c->peer,
	    name.ptr, name.len, (h->flags & PROTO_UNBIND_EVICT) != 0));
	return 0;
}

static int
client_rebind(struct client *c, const struct proto_header *h,
    struct proto_reader *r)
{
	struct proto_str name = proto_get_str(r);
	uint64_t target = proto_get_u64(r);
	int ret;

	if (!proto_reader_done(r))
		return -1;
	ret = broker_rebind(c->set->broker, &c->peer, name.ptr, name.len,
	    target);
	if (ret == 0)
		log_info("mailbox %.*s rebound to client %llu by client %llu",
		    (int)name.len, name.ptr, (unsigned long long)target,
		    (unsigned long long)c->peer.id);
	client_answer(c, h->id, ret);
	return 0;
}

static int
client_chmod(struct client *c, const struct proto_header *h,
    struct proto_reader *r)
{
	struct proto_str name = proto_get_str(r);
	uint32_t mode = proto_get_u32(r);

	if (!proto_reader_done(r))
		return -1;
	client_answer(c, h->id, broker_chmod(c->set->broker, &c->peer,
	    name.ptr, name.len, mode));
	return 0;
}

static int
client_chown(struct client *c, const struct proto_header *h,
    struct proto_reader *r)
{
	struct proto_str name = proto_get_str(r);
	uint32_t uid = proto_get_u32(r);
	uint32_t gid = proto_get_u32(r);

	if (!proto_reader_done(r))
		return -1;
	client_answer(c, h->id, broker_chown(c->set->broker, &c->peer,
	    name.ptr, name.len, uid == PROTO_ID_NONE ? (uid_t)-1 : uid,
	    gid == PROTO_ID_NONE ? (gid_t)-1 : gid));
	return 0;
}

static int
client_purge(struct client *c, const struct proto_header *h,
    struct proto_reader *r)
{
	struct proto_str name = proto_get_str(r);
	int ret;

	if (!proto_reader_done(r))
		return -1;
	ret = broker_purge(c->set->broker, &c->peer, name.ptr, name.len);
	if (ret == 0)
		log_info("mailbox %.*s purged by client %llu", (int)name.len,
		    name.ptr, (unsigned long long)c->peer.id);
	client_answer(c, h->id, ret);
	return 0;
}

static int
client_send(struct client *c, const struct proto_header *h,
    struct proto_reader *r, int *fds)
{
	struct broker_send s;
	struct proto_str name = proto_get_str(r);
	struct proto_str data = { "", 0 };
	bool has_fd = (h->flags & PROTO_SEND_FD) != 0;
	uint64_t size = 0;
	size_t start;
	int ret;

	s.timeout_ms = proto_get_i32(r);
	if (has_fd)
		size = proto_get_u64(r);
	else
		data = proto_get_blob(r);
	if (!proto_reader_done(r) || h->nfds != (has_fd ? 1 : 0) ||
	    (h->flags & ~(PROTO_SEND_SYNC | PROTO_SEND_FD |
	    PROTO_SEND_SHARED | PROTO_SEND_CREDIT)) != 0 ||
	    ((h->flags & PROTO_SEND_SHARED) && !has_fd) || size > SIZE_MAX)
		return -1;
	s.name = name.ptr;
	s.name_len = name.len;
	s.data = data.ptr;
	s.len = has_fd ? (size_t)size : data.len;
	s.fd = has_fd ? fds[0] : -1;
	s.shared = (h->flags & PROTO_SEND_SHARED) != 0;
	s.sync = (h->flags & PROTO_SEND_SYNC) != 0;
	/* Room held for a sender that will not use it is room lost. */
	s.want_credit = (h->flags & PROTO_SEND_CREDIT) != 0;
	if (has_fd && (ret = memfd_check(s.fd, size, s.shared)) < 0) {
		close(s.fd);
		client_answer(c, h->id, ret);
		return 0;
	}
	s.credit_count = 0;
	s.credit_zerocopy = false;
	s.credit_shared = false;
	ret = s.timeout_ms < -1 ? -EINVAL :
	    broker_send(c->set->broker, &c->peer, h->id, &s);
	/* Not taken: the send failed and the descriptor goes. */
	if (s.fd >= 0)
		close(s.fd);
	if (ret != 0 || s.credit_count == 0) {
		client_answer(c, h->id, ret);
		return 0;
	}
	start = client_reply_begin(c, 0);
	proto_put_u64(conn_out(c->conn), s.mailbox_id);
	proto_put_u32(conn_out(c->conn), s.credit_count);
	proto_put_u64(conn_out(c->conn), s.credit_bytes);
	proto_put_u64(conn_out(c->conn), s.max_msg);
	client_reply_end_flags(c, start, h->id,
	    (s.credit_zerocopy ? PROTO_REPLY_ZEROCOPY : 0) |
	    (s.credit_shared ? PROTO_REPLY_SHARED : 0));
	return 0;
}

/* The largest batch a SENDV may carry. */
#define CLIENT_SENDV_MAX	1024

static int
client_sendv(struct client *c, const struct proto_header *h,
    struct proto_reader *r)
{
	uint32_t n = proto_get_u32(r);
	struct broker_send *s;
	size_t done, start;
	int err;

	if (r->bad || n == 0 || n > CLIENT_SENDV_MAX || h->flags != 0)
		return -1;
	if ((s = calloc(n, sizeof(*s))) == NULL) {
		start = client_reply_begin(c, -ENOMEM);
		proto_put_u32(conn_out(c->conn), 0);
		client_reply_end(c, start, h->id);
		return 0;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct proto_str name = proto_get_str(r);
		struct proto_str data = proto_get_blob(r);

		s[i].name = name.ptr;
		s[i].name_len = name.len;
		s[i].data = data.ptr;
		s[i].len = data.len;
		s[i].fd = -1;
	}
	if (!proto_reader_done(r)) {
		free(s);
		return -1;
	}
	done = broker_sendv(c->set->broker, &c->peer, s, n, &err);
	free(s);
	start = client_reply_begin(c, err);
	proto_put_u32(conn_out(c->conn), (uint32_t)done);
	client_reply_end(c, start, h->id);
	return 0;
}

/*
 * A POST, inline or (PROTO_POST_FD) with its memfd in fds[0].  A memfd
 * that fails the checks of a memfd SEND, like a post past its mailbox's
 * max_msg, is something no library sends: the connection is closed.
 */
static int
client_post(struct client *c, const struct proto_header *h,
    struct proto_reader *r, int *fds)
{
	bool has_fd = (h->flags & PROTO_POST_FD) != 0;
	bool shared = (h->flags & PROTO_POST_SHARED) != 0;
	uint64_t mailbox_id = proto_get_u64(r);
	struct proto_str data = { "", 0 };
	uint64_t size = 0;
	int fd;

	if (has_fd)
		size = proto_get_u64(r);
	else
		data = proto_get_blob(r);
	if (!proto_reader_done(r) || h->nfds != (has_fd ? 1 : 0) ||
	    (h->flags & ~(PROTO_POST_FD | PROTO_POST_SHARED)) != 0 ||
	    (shared && !has_fd) || size > SIZE_MAX)
		return -1;
	if (!has_fd)
		return broker_post(c->set->broker, &c->peer, mailbox_id,
		    data.ptr, data.len, -1, false) < 0 ? -1 : 0;
	if (memfd_check(fds[0], size, shared) < 0)
		return -1;
	fd = fds[0];
	/* The descriptor is the broker's from here, whatever happens. */
	fds[0] = -1;
	return broker_post(c->set->broker, &c->peer, mailbox_id, NULL,
	    (size_t)size, fd, shared) < 0 ? -1 : 0;
}

static int
client_post_plain(struct client *c, const struct proto_header *h,
    struct proto_reader *r)
{
	return client_post(c, h, r, NULL);
}

static int
client_recv(struct client *c, const struct proto_header *h,
    struct proto_reader *r)
{
	struct broker_recv rq;
	struct proto_str name = proto_get_str(r);
	int ret;

	rq.timeout_ms = proto_get_i32(r);
	rq.cap = proto_get_u64(r);
	rq.max = proto_get_u32(r);
	rq.budget = proto_get_u64(r);
	if (!proto_reader_done(r))
		return -1;
	if (rq.budget > CLIENT_RECV_MAX_BUDGET)
		rq.budget = CLIENT_RECV_MAX_BUDGET;
	rq.name = name.len > 0 ? name.ptr : NULL;
	rq.name_len = name.len;
	ret = rq.timeout_ms < -1 ? -EINVAL :
	    broker_recv(c->set->broker, &c->peer, h->id, &rq);
	/* 0: the message itself was the answer. */
	if (ret != 0)
		client_answer(c, h->id, ret);
	return 0;
}

static int
client_ack(struct client *c, const struct proto_header *h,
    struct proto_reader *r)
{
	bool reply = (h->flags & PROTO_ACK_REPLY) != 0;
	int ret = 0;

	/* One or more ids; an answer only for exactly one. */
	if (h->len == 0 || h->len % 8 != 0 || (reply && h->len != 8))
		return -1;
	while (r->left > 0)
		ret = broker_ack(c->set->broker, &c->peer, proto_get_u64(r));
	if (reply)
		client_reply(&c->peer, h->id, ret);
	return 0;
}

/*
 * LIST and CLIENTS: one page of the view, from the cursor the body may
 * carry (none: the first page).  A page that another follows says so
 * with PROTO_REPLY_MORE and ends with the cursor of the next.
 */
static int
client_list(struct client *c, const struct proto_header *h,
    struct proto_reader *r)
{
	struct proto_str cursor = { "", 0 };
	struct admin_page pg;
	size_t start;
	int err;

	if (h->len > 0)
		cursor = proto_get_str(r);
	if (!proto_reader_done(r) || h->flags != 0)
		return -1;
	err = h->type == PROTO_LIST ?
	    admin_list_page(c->set->broker, cursor.ptr, cursor.len, &pg) :
	    admin_clients_page(c->set->broker, cursor.ptr, cursor.len, &pg);
	if (err < 0) {
		client_reply(&c->peer, h->id, err);
		return 0;
	}
	start = client_reply_begin(c, 0);
	proto_put_blob(conn_out(c->conn), pg.text, pg.len);
	if (pg.more)
		proto_put_str(conn_out(c->conn), pg.cursor, pg.cursor_len);
	client_reply_end_flags(c, start, h->id, pg.more ? PROTO_REPLY_MORE : 0);
	admin_page_free(&pg);
	return 0;
}

typedef int (*client_handler)(struct client *, const struct proto_header *,
    struct proto_reader *);

/* SEND is the one request that may carry a descriptor. */
static int
client_send_plain(struct client *c, const struct proto_header *h,
    struct proto_reader *r)
{
	return client_send(c, h, r, NULL);
}

static const client_handler client_handlers[] = {
	[PROTO_HELLO] = client_hello,
	[PROTO_CREATE] = client_create,
	[PROTO_DESTROY] = client_destroy,
	[PROTO_BIND] = client_bind,
	[PROTO_UNBIND] = client_unbind,
	[PROTO_SEND] = client_send_plain,
	[PROTO_RECV] = client_recv,
	[PROTO_ACK] = client_ack,
	[PROTO_REBIND] = client_rebind,
	[PROTO_LIST] = client_list,
	[PROTO_CLIENTS] = client_list,
	[PROTO_CHMOD] = client_chmod,
	[PROTO_CHOWN] = client_chown,
	[PROTO_PURGE] = client_purge,
	[PROTO_SENDV] = client_sendv,
	[PROTO_POST] = client_post_plain,
};

static int
client_frame(void *ctx, const struct proto_header *h, const uint8_t *body,
    int *fds)
{
	struct client *c = ctx;
	struct proto_reader r;
	client_handler fn = NULL;
	int ret;

	if (h->type < sizeof(client_handlers) / sizeof(client_handlers[0]))
		fn = client_handlers[h->type];
	/*
	 * The handshake comes first and once, and is all a refused client
	 * may say (to hear why); only SEND and POST carry a descriptor.
	 */
	if (fn == NULL || h->id == 0 || (h->nfds != 0 &&
	    h->type != PROTO_SEND && h->type != PROTO_POST) ||
	    (h->type == PROTO_HELLO) == c->greeted ||
	    (c->refused != 0 && h->type != PROTO_HELLO)) {
		for (unsigned i = 0; i < h->nfds; i++)
			close(fds[i]);
		log_warn("client %llu: unexpected frame type %u (%u "
		    "descriptors): closing", (unsigned long long)c->peer.id,
		    h->type, h->nfds);
		return -1;
	}
	proto_reader_init(&r, body, h->len);
	if (h->type == PROTO_SEND || h->type == PROTO_POST) {
		ret = h->type == PROTO_SEND ? client_send(c, h, &r, fds) :
		    client_post(c, h, &r, fds);
		if (ret < 0)
			for (unsigned i = 0; i < h->nfds; i++)
				if (fds[i] >= 0)
					close(fds[i]);
	} else {
		ret = fn(c, h, &r);
	}
	if (ret < 0)
		log_warn("client %llu: malformed frame type %u: closing",
		    (unsigned long long)c->peer.id, h->type);
	if (c->set->after_batch != NULL)
		c->set->after_batch(c->set->ctx);
	return ret;
}
