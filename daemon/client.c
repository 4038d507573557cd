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
#include "body.h"
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
static void client_reply_status(struct client *, uint32_t, int);
static void client_reply_sendv(struct client *, uint32_t, int, size_t);
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
	 * An inline POST (BODY_POST_HEAD bytes, then the payload) that one
	 * of the connection's grants has room for: that room is already
	 * charged, and the post takes it.  Counting the frame too would
	 * charge the message twice.
	 */
	if (h != NULL && h->type == PROTO_POST &&
	    (h->flags & PROTO_POST_FD) == 0 && h->len >= BODY_POST_HEAD &&
	    broker_post_covered(&c->peer, h->len - BODY_POST_HEAD))
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
	if (h->type == PROTO_SENDV)
		client_reply_sendv(c, h->id, -ENOBUFS, 0);
	else
		client_reply_status(c, h->id, -ENOBUFS);
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

/* Starts a REPLY frame; the caller writes its body and ends it. */
static size_t
client_reply_begin(struct client *c)
{
	return proto_frame_begin(conn_out(c->conn));
}

static void
client_reply_end(struct client *c, size_t start, uint32_t req, uint32_t flags)
{
	proto_frame_end(conn_out(c->conn), start, PROTO_REPLY, req, flags, 0);
	conn_flush_soon(c->conn);
}

/* The answer that is a status alone. */
static void
client_reply_status(struct client *c, uint32_t req, int err)
{
	struct body_reply b = { proto_errno_to_status(err) };
	size_t start = client_reply_begin(c);

	body_reply_put(conn_out(c->conn), &b);
	client_reply_end(c, start, req, 0);
}

static void
client_reply(struct peer *p, uint32_t req, int err)
{
	struct client *c = p->ctx;

	if (!conn_dead(c->conn))
		client_reply_status(c, req, err);
}

/* The answer to a SENDV: err, and how many of its messages were enqueued. */
static void
client_reply_sendv(struct client *c, uint32_t req, int err, size_t done)
{
	struct body_reply_sendv b = { proto_errno_to_status(err),
	    (uint32_t)done };
	size_t start = client_reply_begin(c);

	body_reply_sendv_put(conn_out(c->conn), &b);
	client_reply_end(c, start, req, 0);
}

static void
client_deliver(struct peer *p, uint32_t req, const struct msg *m, bool more)
{
	struct client *c = p->ctx;
	struct proto_writer *w = conn_out(c->conn);
	struct body_msg b = {
		.msg_id = m->id,
		.mailbox = { m->mbox->name, m->mbox->name_len },
		.sender_id = m->sender_id,
		.pid = m->pid,
		.uid = m->uid,
		.has_fd = m->fd >= 0,
		.size = m->len,
		.payload = { (const char *)m->data, m->len },
	};
	uint32_t flags = 0;
	size_t start;

	if (conn_dead(c->conn))
		return;
	start = proto_frame_begin(w);
	body_msg_put(w, &b);
	if (b.has_fd) {
		/* The message keeps its descriptor until acknowledged. */
		int fd = fcntl(m->fd, F_DUPFD_CLOEXEC, 0);

		if (fd < 0 || conn_attach_fd(c->conn, start, fd) < 0) {
			/* Unsendable: it stays in flight and comes back. */
			if (fd >= 0)
				close(fd);
			conn_kill(c->conn, "cannot pass a descriptor");
			return;
		}
		flags |= PROTO_MSG_FD | (m->shared ? PROTO_MSG_SHARED : 0);
	}
	proto_frame_end(w, start, PROTO_MSG, req, flags |
	    (m->sender != NULL ? PROTO_MSG_SYNC : 0) |
	    (more ? PROTO_MSG_MORE : 0), b.has_fd ? 1 : 0);
	conn_flush_soon(c->conn);
}

static void
client_revoke(struct peer *p, const struct mailbox *mb, unsigned what)
{
	struct client *c = p->ctx;
	struct proto_writer *w = conn_out(c->conn);
	struct body_revoke b = { what, { mb->name, mb->name_len }, mb->id };
	size_t start;

	if (conn_dead(c->conn))
		return;
	start = proto_frame_begin(w);
	body_revoke_put(w, &b);
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
 * Requests.  Each handler decodes its body (proto/body.h) and returns -1
 * when it is malformed.  fds holds the frame's h->nfds descriptors
 * (SEND and POST only): the handler's when it returns 0; when it returns
 * -1, client_frame() closes those whose slot it did not set to -1.
 */

static int
client_hello(struct client *c, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_hello b;
	struct body_reply_hello rb;
	int err;
	size_t start;

	(void)fds;
	if (!body_hello_get(body, h->len, h->flags, &b))
		return -1;
	err = b.version != PROTO_VERSION ? -EPROTO : c->refused;
	rb.status = proto_errno_to_status(err);
	rb.version = PROTO_VERSION;
	rb.client_id = c->registered ? c->peer.id : 0;
	start = client_reply_begin(c);
	body_reply_hello_put(conn_out(c->conn), &rb);
	client_reply_end(c, start, h->id, 0);
	if (b.version != PROTO_VERSION)
		log_warn("client %llu speaks protocol %u, not %u: closing",
		    (unsigned long long)c->peer.id, b.version, PROTO_VERSION);
	if (err != 0)
		conn_close_after_flush(c->conn);
	event_free(c->handshake);
	c->handshake = NULL;
	c->greeted = true;
	return 0;
}

static int
client_create(struct client *c, const struct proto_header *h,
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
	a.uid = c->peer.uid;
	a.gid = b.gid == PROTO_ID_NONE ? (gid_t)-1 : (gid_t)b.gid;
	/* 0 means "the default" inside the daemon only: a client says. */
	if (b.capacity < -1 || a.max_msg == 0)
		ret = -EINVAL;
	else
		ret = broker_create(c->set->broker, &c->peer, b.name.ptr,
		    b.name.len, &a);
	if (ret == 0)
		log_info("mailbox %.*s created by client %llu",
		    (int)b.name.len, b.name.ptr,
		    (unsigned long long)c->peer.id);
	client_answer(c, h->id, ret);
	return 0;
}

static int
client_destroy(struct client *c, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_name b;
	int ret;

	(void)fds;
	if (!body_name_get(body, h->len, h->flags, &b))
		return -1;
	ret = broker_destroy(c->set->broker, &c->peer, b.name.ptr, b.name.len);
	if (ret == 0)
		log_info("mailbox %.*s destroyed by client %llu",
		    (int)b.name.len, b.name.ptr,
		    (unsigned long long)c->peer.id);
	client_answer(c, h->id, ret);
	return 0;
}

static int
client_bind(struct client *c, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_bind b;

	(void)fds;
	if (!body_bind_get(body, h->len, h->flags, &b))
		return -1;
	client_answer(c, h->id, broker_bind(c->set->broker, &c->peer,
	    b.name.ptr, b.name.len, b.how > 2 ? -1 : (int)b.how));
	return 0;
}

static int
client_unbind(struct client *c, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_name b;

	(void)fds;
	if (!body_name_get(body, h->len, h->flags, &b))
		return -1;
	client_answer(c, h->id, broker_unbind(c->set->broker, &c->peer,
	    b.name.ptr, b.name.len, (h->flags & PROTO_UNBIND_EVICT) != 0));
	return 0;
}

static int
client_rebind(struct client *c, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_rebind b;
	int ret;

	(void)fds;
	if (!body_rebind_get(body, h->len, h->flags, &b))
		return -1;
	ret = broker_rebind(c->set->broker, &c->peer, b.name.ptr, b.name.len,
	    b.client_id);
	if (ret == 0)
		log_info("mailbox %.*s rebound to client %llu by client %llu",
		    (int)b.name.len, b.name.ptr,
		    (unsigned long long)b.client_id,
		    (unsigned long long)c->peer.id);
	client_answer(c, h->id, ret);
	return 0;
}

static int
client_chmod(struct client *c, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_chmod b;

	(void)fds;
	if (!body_chmod_get(body, h->len, h->flags, &b))
		return -1;
	client_answer(c, h->id, broker_chmod(c->set->broker, &c->peer,
	    b.name.ptr, b.name.len, b.mode));
	return 0;
}

static int
client_chown(struct client *c, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_chown b;

	(void)fds;
	if (!body_chown_get(body, h->len, h->flags, &b))
		return -1;
	client_answer(c, h->id, broker_chown(c->set->broker, &c->peer,
	    b.name.ptr, b.name.len, b.uid == PROTO_ID_NONE ? (uid_t)-1 : b.uid,
	    b.gid == PROTO_ID_NONE ? (gid_t)-1 : b.gid));
	return 0;
}

static int
client_purge(struct client *c, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_name b;
	int ret;

	(void)fds;
	if (!body_name_get(body, h->len, h->flags, &b))
		return -1;
	ret = broker_purge(c->set->broker, &c->peer, b.name.ptr, b.name.len);
	if (ret == 0)
		log_info("mailbox %.*s purged by client %llu", (int)b.name.len,
		    b.name.ptr, (unsigned long long)c->peer.id);
	client_answer(c, h->id, ret);
	return 0;
}

/* A SEND, inline or (PROTO_SEND_FD) with its memfd in fds[0]. */
static int
client_send(struct client *c, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct broker_send s;
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
	s.timeout_ms = b.timeout_ms;
	s.name = b.name.ptr;
	s.name_len = b.name.len;
	s.data = b.payload.ptr;
	s.len = (size_t)b.size;
	s.fd = b.has_fd ? fds[0] : -1;
	s.shared = (h->flags & PROTO_SEND_SHARED) != 0;
	s.sync = (h->flags & PROTO_SEND_SYNC) != 0;
	/* Room held for a sender that will not use it is room lost. */
	s.want_credit = (h->flags & PROTO_SEND_CREDIT) != 0;
	if (b.has_fd && (ret = memfd_check(s.fd, b.size, s.shared)) < 0) {
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
	rb.status = PROTO_OK;
	rb.has_grant = true;
	rb.mailbox_id = s.mailbox_id;
	rb.count = s.credit_count;
	rb.bytes = s.credit_bytes;
	rb.max_msg = s.max_msg;
	start = client_reply_begin(c);
	body_reply_send_put(conn_out(c->conn), &rb);
	client_reply_end(c, start, h->id,
	    (s.credit_zerocopy ? PROTO_REPLY_ZEROCOPY : 0) |
	    (s.credit_shared ? PROTO_REPLY_SHARED : 0));
	return 0;
}

/* The largest batch a SENDV may carry. */
#define CLIENT_SENDV_MAX	1024

static int
client_sendv(struct client *c, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	struct body_sendv v;
	struct body_sendv_item it;
	struct broker_send *s;
	uint32_t n = 0;
	size_t done;
	int err;

	(void)fds;
	if (!body_sendv_get(body, h->len, h->flags, &v) || v.count == 0 ||
	    v.count > CLIENT_SENDV_MAX || h->flags != 0)
		return -1;
	if ((s = calloc(v.count, sizeof(*s))) == NULL) {
		client_reply_sendv(c, h->id, -ENOMEM, 0);
		return 0;
	}
	while (n < v.count && body_sendv_next(&v, &it)) {
		s[n].name = it.name.ptr;
		s[n].name_len = it.name.len;
		s[n].data = it.payload.ptr;
		s[n].len = it.payload.len;
		s[n].fd = -1;
		n++;
	}
	done = broker_sendv(c->set->broker, &c->peer, s, n, &err);
	free(s);
	client_reply_sendv(c, h->id, err, done);
	return 0;
}

/*
 * A POST, inline or (PROTO_POST_FD) with its memfd in fds[0].  A memfd
 * that fails the checks of a memfd SEND, like a post past its mailbox's
 * max_msg, is something no library sends: the connection is closed.
 */
static int
client_post(struct client *c, const struct proto_header *h,
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
		return broker_post(c->set->broker, &c->peer, b.mailbox_id,
		    b.payload.ptr, b.payload.len, -1, false) < 0 ? -1 : 0;
	if (memfd_check(fds[0], b.size, shared) < 0)
		return -1;
	fd = fds[0];
	/* The descriptor is the broker's from here, whatever happens. */
	fds[0] = -1;
	return broker_post(c->set->broker, &c->peer, b.mailbox_id, NULL,
	    (size_t)b.size, fd, shared) < 0 ? -1 : 0;
}

static int
client_recv(struct client *c, const struct proto_header *h,
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
	if (rq.budget > CLIENT_RECV_MAX_BUDGET)
		rq.budget = CLIENT_RECV_MAX_BUDGET;
	rq.name = b.name.len > 0 ? b.name.ptr : NULL;
	rq.name_len = b.name.len;
	ret = rq.timeout_ms < -1 ? -EINVAL :
	    broker_recv(c->set->broker, &c->peer, h->id, &rq);
	/* 0: the message itself was the answer. */
	if (ret != 0)
		client_answer(c, h->id, ret);
	return 0;
}

static int
client_ack(struct client *c, const struct proto_header *h,
    const uint8_t *body, int *fds)
{
	bool reply = (h->flags & PROTO_ACK_REPLY) != 0;
	struct body_ack b;
	int ret = 0;

	(void)fds;
	/* One or more ids; an answer only for exactly one. */
	if (!body_ack_get(body, h->len, h->flags, &b) ||
	    (reply && b.count != 1))
		return -1;
	for (size_t i = 0; i < b.count; i++)
		ret = broker_ack(c->set->broker, &c->peer, body_ack_id(&b, i));
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
	    admin_list_page(c->set->broker, b.cursor.ptr, b.cursor.len, &pg) :
	    admin_clients_page(c->set->broker, b.cursor.ptr, b.cursor.len,
	    &pg);
	if (err < 0) {
		client_reply(&c->peer, h->id, err);
		return 0;
	}
	rb.status = PROTO_OK;
	rb.json = (struct proto_str){ pg.text, pg.len };
	rb.more = pg.more;
	rb.cursor = (struct proto_str){ pg.cursor, pg.cursor_len };
	start = client_reply_begin(c);
	body_reply_page_put(conn_out(c->conn), &rb);
	client_reply_end(c, start, h->id, pg.more ? PROTO_REPLY_MORE : 0);
	admin_page_free(&pg);
	return 0;
}

typedef int (*client_handler)(struct client *, const struct proto_header *,
    const uint8_t *, int *);

static const client_handler client_handlers[] = {
	[PROTO_HELLO] = client_hello,
	[PROTO_CREATE] = client_create,
	[PROTO_DESTROY] = client_destroy,
	[PROTO_BIND] = client_bind,
	[PROTO_UNBIND] = client_unbind,
	[PROTO_SEND] = client_send,
	[PROTO_RECV] = client_recv,
	[PROTO_ACK] = client_ack,
	[PROTO_REBIND] = client_rebind,
	[PROTO_LIST] = client_list,
	[PROTO_CLIENTS] = client_list,
	[PROTO_CHMOD] = client_chmod,
	[PROTO_CHOWN] = client_chown,
	[PROTO_PURGE] = client_purge,
	[PROTO_SENDV] = client_sendv,
	[PROTO_POST] = client_post,
};

static int
client_frame(void *ctx, const struct proto_header *h, const uint8_t *body,
    int *fds)
{
	struct client *c = ctx;
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
	ret = fn(c, h, body, fds);
	if (ret < 0) {
		/* Refused: the descriptors no handler took go with it. */
		for (unsigned i = 0; i < h->nfds; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		log_warn("client %llu: malformed frame type %u: closing",
		    (unsigned long long)c->peer.id, h->type);
	}
	if (c->set->after_batch != NULL)
		c->set->after_batch(c->set->ctx);
	return ret;
}
