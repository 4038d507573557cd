/*
 * mbx.c - libmbx, the client side of the mbx protocol (see mbx.h for the
 * API, proto.h for the wire format).
 *
 * A handle is one connection to mbxd.  Its core is non-blocking: the
 * socket has O_NONBLOCK set, bytes go out through conn_write() and come in
 * through conn_read_frame(), and every wait is an explicit poll() between
 * the two.  Each public call is one or more request/answer exchanges:
 * call() writes a request with a fresh id and waits, with no deadline of
 * its own, for the answer carrying that id.  The daemon enforces every
 * timeout and always answers, so the library needs no timer and never
 * returns EINTR.
 *
 * Invariants:
 * - At most one request is outstanding (one mbx_t, one thread at a time),
 *   so what arrives is the answer to it; any other frame is a protocol
 *   violation.  The answer's body stays in the read buffer, pointed to by
 *   struct answer, until the next read.
 * - Once the connection fails (EOF, a socket error, a malformed or
 *   unexpected frame, a descriptor nobody announced) the handle is broken:
 *   the socket is shut down, so the daemon puts back every message this
 *   handle had not acknowledged, and every later call fails with
 *   ECONNRESET.  The descriptor itself stays open until mbx_close(), so an
 *   mbx_fd() the caller registered with epoll stays valid (it polls as
 *   readable, and the next call reports ECONNRESET).
 * - Everything is validated that must be before it reaches the wire (NULL
 *   pointers, names, timeouts, sizes); every other decision is the
 *   daemon's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "credit.h"
#include "inbox.h"
#include "mbx.h"
#include "order.h"
#include "proto.h"
#include "shm.h"

/* The library is built with -fvisibility=hidden: only these are exported. */
#define MBX_EXPORT	__attribute__((visibility("default")))

/*
 * A decoded MSG body; the strings point into the answer.  (The daemon's
 * struct msg, a queued message, is another thing.)
 */
struct msg_body {
	uint64_t		id;
	struct proto_str	mailbox;
	uint64_t		sender;
	uint32_t		pid;
	uint32_t		uid;
	struct proto_str	payload;	/* inline payload */
	uint64_t		size;		/* its length, or the memfd's */
	int			fd;		/* a zero-copy payload, or -1 */
	bool			shared;
};

/*
 * Argument checks, done before anything reaches the wire.
 */

/*
 * True when name can go on the wire: a mailbox name or a direct address
 * "@ID".  Which of the two a request accepts is the daemon's call.
 */
static bool
name_ok(const char *name)
{
	size_t len;

	if (name == NULL)
		return false;
	len = strnlen(name, PROTO_NAME_MAX + 1);
	return proto_name_valid(name, len) || proto_direct_id(name, len) != 0;
}

/* Fails with err; a one-liner for the argument checks. */
static int
fail(int err)
{
	errno = err;
	return -1;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Milliseconds left until deadline, at least 1: a deadline that has just
 * passed still gets one more look at the queue, and a timed receive ends
 * in ETIMEDOUT (from the daemon), never in the EAGAIN of a zero timeout.
 */
static int
ms_left(int64_t deadline)
{
	int64_t left = deadline - now_ms();

	if (left < 1)
		return 1;
	if (left > INT_MAX)
		return INT_MAX;
	return (int)left;
}

/*
 * Connection set-up.
 */

/* $MBX_SOCKET (ignored in set-uid programs), else the default. */
static const char *
default_socket(void)
{
	const char *path = secure_getenv("MBX_SOCKET");

	if (path == NULL || *path == '\0')
		return MBX_DEFAULT_SOCKET;
	return path;
}

static int
conn_connect(struct mbx *c, const char *path)
{
	struct sockaddr_un addr;
	size_t len = strlen(path);
	int flags;

	if (len == 0) {
		errno = ENOENT;
		return -1;
	}
	if (len >= sizeof(addr.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	memcpy(addr.sun_path, path, len + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd == -1)
		return -1;
	/* An AF_UNIX connect interrupted by a signal has queued nothing
	 * (Linux), so it is simply tried again. */
	while (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) == -1) {
		if (errno == EISCONN)
			break;
		if (errno != EINTR)
			return -1;
	}
	/* The core is non-blocking: every wait is an explicit poll(). */
	flags = fcntl(c->fd, F_GETFL);
	if (flags == -1 || fcntl(c->fd, F_SETFL, flags | O_NONBLOCK) == -1)
		return -1;
	return 0;
}

/*
 * The version handshake.  The daemon answers a version it does not speak
 * with an error and closes the connection: that is EPROTO for the caller.
 */
static int
hello(struct mbx *c)
{
	struct answer a;
	uint32_t id, status;
	uint64_t cid;

	req_begin(c);
	proto_put_u32(&c->out, PROTO_VERSION);
	if ((id = req_end(c, PROTO_HELLO, 0, 0)) == 0)
		return -1;
	if (call(c, id, NULL, 0, &a) == -1 ||
	    reply_status(c, &a, &status) == -1)
		return -1;
	/* A refusal other than the version (a quota) says what it is. */
	if (status != PROTO_OK) {
		errno = status == PROTO_EPROTO ? EPROTO :
		    proto_status_to_errno(status);
		return -1;
	}
	/* The server's own version: it said OK, so it speaks ours. */
	(void)proto_get_u32(&a.r);
	cid = proto_get_u64(&a.r);
	if (!proto_reader_done(&a.r) || cid == 0 || cid > LONG_MAX)
		return conn_break(c, EPROTO);
	c->id = (long)cid;
	return 0;
}

/*
 * Defaults, which the environment may change for programs that do not
 * call mbx_setopt(): MBX_PREFETCH=N asks for N messages per receive (1:
 * one at a time), MBX_CREDIT=1 lets sends go on credit, MBX_ZEROCOPY=N
 * sends payloads above N bytes zero-copy.
 */
static void
tune(struct mbx *c)
{
	const char *p = secure_getenv("MBX_PREFETCH");
	const char *cr = secure_getenv("MBX_CREDIT");
	const char *zc = secure_getenv("MBX_ZEROCOPY");

	c->prefetch = PREFETCH_COUNT;
	c->zerocopy_above = MBX_MAX_MSG_LIMIT;
	if (p != NULL)
		(void)mbx_setopt(c, MBX_OPT_PREFETCH, strtol(p, NULL, 10));
	if (zc != NULL)
		(void)mbx_setopt(c, MBX_OPT_ZEROCOPY, strtol(zc, NULL, 10));
	(void)mbx_setopt(c, MBX_OPT_CREDIT,
	    cr != NULL && strcmp(cr, "1") == 0);
}

MBX_EXPORT int
mbx_setopt(mbx_t *c, int opt, long value)
{
	if (c == NULL)
		return fail(EINVAL);
	switch (opt) {
	case MBX_OPT_PREFETCH:
		if (value < 1 || value > 256)
			return fail(EINVAL);
		c->prefetch = (unsigned)value;
		return 0;
	case MBX_OPT_CREDIT:
		if (value != 0 && value != 1)
			return fail(EINVAL);
		c->use_credit = value == 1;
		if (!c->use_credit)
			credits_init(&c->credits);
		return 0;
	case MBX_OPT_ZEROCOPY:
		if (value < 0 || value > (long)MBX_MAX_MSG_LIMIT)
			return fail(EINVAL);
		c->zerocopy_above = (size_t)value;
		return 0;
	default:
		return fail(EINVAL);
	}
}

MBX_EXPORT mbx_t *
mbx_open(const char *socket_path)
{
	struct mbx *c;
	int err;

	if (socket_path == NULL)
		socket_path = default_socket();
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->fd = -1;
	c->next_id = 1;
	proto_writer_init(&c->out);
	inbox_init(&c->inbox);
	credits_init(&c->credits);
	shm_init(&c->shm);
	tune(c);
	if (conn_connect(c, socket_path) == -1 || hello(c) == -1) {
		err = errno;
		mbx_close(c);
		errno = err;
		return NULL;
	}
	return c;
}

MBX_EXPORT void
mbx_close(mbx_t *c)
{
	int err = errno;

	if (c == NULL)
		return;
	/* Taken messages are confirmed; held ones go back to the daemon. */
	if (c->fd != -1 && !c->broken)
		(void)acks_flush(c);
	if (c->fd != -1) {
		order_forget(c->fd);
		(void)close(c->fd);
	}
	inbox_clear(&c->inbox);
	shm_deinit(&c->shm);
	conn_close_in_fds(c);
	free(c->rbuf);
	proto_writer_free(&c->out);
	free(c);
	errno = err;
}

MBX_EXPORT int
mbx_fd(const mbx_t *c)
{
	if (c == NULL)
		return fail(EINVAL);
	return c->fd;
}

MBX_EXPORT long
mbx_id(const mbx_t *c)
{
	if (c == NULL)
		return fail(EINVAL);
	return c->id;
}

/*
 * Mailbox administration.
 */

MBX_EXPORT void
mbx_attr_init(struct mbx_attr *a)
{
	if (a == NULL)
		return;
	memset(a, 0, sizeof(*a));
	a->capacity = MBX_DEFAULT_CAPACITY;
	a->max_msg = MBX_DEFAULT_MAX_MSG;
	a->gid = (gid_t)-1;
}

MBX_EXPORT int
mbx_create(mbx_t *c, const char *name, const struct mbx_attr *a)
{
	struct mbx_attr def;
	uint32_t id;

	if (c == NULL || !name_ok(name))
		return fail(EINVAL);
	if (a == NULL) {
		mbx_attr_init(&def);
		a = &def;
	}
	/* Capacity and max_msg ranges are the daemon's to judge. */
	req_begin(c);
	req_put_name(c, name);
	proto_put_i64(&c->out, a->capacity);
	proto_put_u64(&c->out, a->max_msg);
	proto_put_u32(&c->out, a->mode);
	proto_put_u32(&c->out, a->gid == (gid_t)-1 ? PROTO_ID_NONE :
	    (uint32_t)a->gid);
	if ((id = req_end(c, PROTO_CREATE, 0, 0)) == 0)
		return -1;
	return call_status(c, id, NULL, 0);
}

MBX_EXPORT int
mbx_destroy(mbx_t *c, const char *name)
{
	if (c == NULL || !name_ok(name))
		return fail(EINVAL);
	return name_request(c, PROTO_DESTROY, 0, name);
}

MBX_EXPORT int
mbx_bind(mbx_t *c, const char *name, int how)
{
	uint32_t id, mode;

	if (c == NULL || !name_ok(name))
		return fail(EINVAL);
	switch (how) {
	case MBX_BIND_EXCLUSIVE:
		mode = PROTO_BIND_EXCLUSIVE;
		break;
	case MBX_BIND_REPLACE:
		mode = PROTO_BIND_REPLACE;
		break;
	case MBX_BIND_QUEUE:
		mode = PROTO_BIND_QUEUE;
		break;
	default:
		return fail(EINVAL);
	}
	req_begin(c);
	req_put_name(c, name);
	proto_put_u32(&c->out, mode);
	if ((id = req_end(c, PROTO_BIND, 0, 0)) == 0)
		return -1;
	return call_status(c, id, NULL, 0);
}

MBX_EXPORT int
mbx_unbind(mbx_t *c, const char *name)
{
	if (c == NULL || !name_ok(name))
		return fail(EINVAL);
	return name_request(c, PROTO_UNBIND, 0, name);
}

MBX_EXPORT int
mbx_evict(mbx_t *c, const char *name)
{
	if (c == NULL || !name_ok(name))
		return fail(EINVAL);
	return name_request(c, PROTO_UNBIND, PROTO_UNBIND_EVICT, name);
}

MBX_EXPORT int
mbx_chmod(mbx_t *c, const char *name, unsigned mode)
{
	uint32_t id;

	if (c == NULL || !name_ok(name) || mode > 0777)
		return fail(EINVAL);
	req_begin(c);
	req_put_name(c, name);
	proto_put_u32(&c->out, mode);
	if ((id = req_end(c, PROTO_CHMOD, 0, 0)) == 0)
		return -1;
	return call_status(c, id, NULL, 0);
}

MBX_EXPORT int
mbx_chown(mbx_t *c, const char *name, uid_t uid, gid_t gid)
{
	uint32_t id;

	if (c == NULL || !name_ok(name))
		return fail(EINVAL);
	req_begin(c);
	req_put_name(c, name);
	proto_put_u32(&c->out, uid == (uid_t)-1 ? PROTO_ID_NONE : (uint32_t)uid);
	proto_put_u32(&c->out, gid == (gid_t)-1 ? PROTO_ID_NONE : (uint32_t)gid);
	if ((id = req_end(c, PROTO_CHOWN, 0, 0)) == 0)
		return -1;
	return call_status(c, id, NULL, 0);
}

MBX_EXPORT int
mbx_purge(mbx_t *c, const char *name)
{
	if (c == NULL || !name_ok(name))
		return fail(EINVAL);
	return name_request(c, PROTO_PURGE, 0, name);
}

MBX_EXPORT int
mbx_rebind(mbx_t *c, const char *name, long client_id)
{
	uint32_t id;

	/* Client ids are positive; anything else cannot name a client. */
	if (c == NULL || !name_ok(name) || client_id <= 0)
		return fail(EINVAL);
	req_begin(c);
	req_put_name(c, name);
	proto_put_u64(&c->out, (uint64_t)client_id);
	if ((id = req_end(c, PROTO_REBIND, 0, 0)) == 0)
		return -1;
	return call_status(c, id, NULL, 0);
}

/*
 * LIST and CLIENTS: the daemon answers a page at a time (a REPLY with
 * PROTO_REPLY_MORE ends with the cursor of the next); the pages together
 * are one JSON text, returned NUL-terminated.
 */
static int
json_request(struct mbx *c, uint16_t type, char **json)
{
	char cursor[PROTO_NAME_MAX + 1];
	size_t cursor_len = 0, len = 0, cap = 0;
	struct answer a;
	struct proto_str blob, next;
	uint32_t id, status;
	char *s = NULL, *grown;
	bool more;

	if (c == NULL || json == NULL)
		return fail(EINVAL);
	do {
		req_begin(c);
		if (cursor_len > 0)
			proto_put_str(&c->out, cursor, cursor_len);
		if ((id = req_end(c, type, 0, 0)) == 0 ||
		    call(c, id, NULL, 0, &a) == -1 ||
		    reply_status(c, &a, &status) == -1)
			goto fail;
		if (status != PROTO_OK) {
			free(s);
			return status_fail(c, status);
		}
		more = (a.h.flags & PROTO_REPLY_MORE) != 0;
		blob = proto_get_blob(&a.r);
		next = more ? proto_get_str(&a.r) : (struct proto_str){ "", 0 };
		/* The caller gets a C string: a NUL inside would cut it short. */
		if (!proto_reader_done(&a.r) ||
		    memchr(blob.ptr, 0, blob.len) != NULL ||
		    (more && (next.len == 0 || next.len > PROTO_NAME_MAX))) {
			free(s);
			return conn_break(c, EPROTO);
		}
		/* Doubling: a view of many pages is copied a few times only. */
		if (len + blob.len + 1 > cap) {
			size_t want = cap > 0 ? cap : 4096;

			while (want < len + blob.len + 1)
				want *= 2;
			if ((grown = realloc(s, want)) == NULL)
				goto fail;
			s = grown;
			cap = want;
		}
		memcpy(s + len, blob.ptr, blob.len);
		len += blob.len;
		s[len] = '\0';
		memcpy(cursor, next.ptr, next.len);
		cursor_len = next.len;
	} while (more);
	*json = s;
	return 0;
fail:
	free(s);
	return -1;
}

MBX_EXPORT int
mbx_list(mbx_t *c, char **json)
{
	return json_request(c, PROTO_LIST, json);
}

MBX_EXPORT int
mbx_clients(mbx_t *c, char **json)
{
	return json_request(c, PROTO_CLIENTS, json);
}

/*
 * Messages.
 */


/*
 * Confirms a message whose payload the caller now has, the second phase
 * of a receive.  An ordinary one joins the pending acknowledgements,
 * written with the next request or as soon as nothing more is held.  A
 * sync sender waits on this very message, so its ACK goes at once and
 * asks for an answer: PROTO_STALE (ESTALE here) means the sender gave up
 * and withdrew it meanwhile, and the receive does not count.
 */
static int
msg_ack(struct mbx *c, uint64_t msg_id, bool sync)
{
	struct answer a;
	uint32_t id, status;

	if (!sync) {
		c->acks[c->nacks++] = msg_id;
		return c->nacks == ACK_MAX ? acks_flush(c) : 0;
	}
	req_begin(c);
	proto_put_u64(&c->out, msg_id);
	if ((id = req_end(c, PROTO_ACK, PROTO_ACK_REPLY, 0)) == 0)
		return conn_break(c, ENOMEM);
	if (call(c, id, NULL, 0, &a) == -1 ||
	    reply_status(c, &a, &status) == -1)
		return -1;
	if (status == PROTO_STALE)
		return fail(ESTALE);
	if (status != PROTO_OK)
		return status_fail(c, status);
	if (!proto_reader_done(&a.r))
		return conn_break(c, EPROTO);
	return 0;
}

/* acks_flush() on a failure path: the caller's errno is the one to keep. */
static void
acks_flush_keep_errno(struct mbx *c)
{
	int err = errno;

	(void)acks_flush(c);
	errno = err;
}

/*
 * Decodes a MSG body; a message larger than promised breaks the handle
 * (and the daemon then puts it back).  m->fd takes a's descriptor.
 */
static int
msg_decode(struct mbx *c, struct answer *a, uint64_t cap, struct msg_body *m)
{
	bool fd_msg = (a->h.flags & PROTO_MSG_FD) != 0;

	m->fd = a->fd;
	a->fd = -1;
	m->shared = (a->h.flags & PROTO_MSG_SHARED) != 0;
	m->id = proto_get_u64(&a->r);
	m->mailbox = proto_get_str(&a->r);
	m->sender = proto_get_u64(&a->r);
	m->pid = proto_get_u32(&a->r);
	m->uid = proto_get_u32(&a->r);
	m->payload.ptr = "";
	m->payload.len = 0;
	if (fd_msg)
		m->size = proto_get_u64(&a->r);
	else
		m->payload = proto_get_blob(&a->r);
	if (!fd_msg)
		m->size = m->payload.len;
	if (!proto_reader_done(&a->r) || m->mailbox.len > MBX_NAME_MAX ||
	    m->size > cap || m->size > SIZE_MAX || m->sender > LONG_MAX) {
		if (m->fd >= 0)
			(void)close(m->fd);
		return conn_break(c, EPROTO);
	}
	return 0;
}

/*
 * Where one received message goes: the caller's buffer (copied) or a
 * message object (obj != NULL), and its meta.
 */
struct slot {
	void		*buf;
	size_t		 cap;
	struct mbx_meta	*meta;
	size_t		 len;
	struct mbx_msg	**obj;
	struct mbx_msg	*release;	/* copied out: free after the ACK */
};

static void
slot_meta(struct slot *s, const char *mailbox, size_t mailbox_len,
    long sender, pid_t pid, uid_t uid, size_t len)
{
	s->len = len;
	if (s->meta == NULL)
		return;
	memcpy(s->meta->mailbox, mailbox, mailbox_len);
	s->meta->mailbox[mailbox_len] = '\0';
	s->meta->sender_id = sender;
	s->meta->pid = pid;
	s->meta->uid = uid;
	s->meta->len = len;
}

/*
 * Puts a payload into s: inline bytes, or the memfd fd (taken) of len
 * bytes, mapped for a message object or copied out of its mapping.
 */
static int
slot_fill(struct mbx *c, struct slot *s, const void *data, int fd,
    bool shared, size_t len)
{
	struct mbx_msg *m;

	if (s->obj == NULL && fd < 0) {
		if (len > 0)
			memcpy(s->buf, data, len);
		return 0;
	}
	m = fd >= 0 ? shm_receive(&c->shm, fd, len, shared) :
	    shm_receive_copy(data, len);
	if (m == NULL)
		return -1;
	if (s->obj != NULL) {
		*s->obj = m;
		return 0;
	}
	memcpy(s->buf, m->data, len);
	/*
	 * A shared buffer goes back to its sender only once the daemon knows
	 * the message was received: were it given out again after a crash,
	 * the sender might have written the buffer anew meanwhile.
	 */
	s->release = m;
	return 0;
}

/*
 * What s holds was not received after all: its ACK came back STALE (the
 * sync sender gave up and took its buffer back, and may be reusing it) or
 * was never written (the message goes back to its queue, still the
 * daemon's).  Neither is the caller's, and a shared buffer is not handed
 * back (shm_discard()); a retry then fills s anew.  Keeps errno.
 */
static void
slot_drop(struct slot *s)
{
	int err = errno;

	if (s->obj != NULL) {
		shm_discard(*s->obj);
		*s->obj = NULL;
	}
	shm_discard(s->release);
	s->release = NULL;
	errno = err;
}

/* Hands a held message to the caller. */
static int
take_held(struct mbx *c, struct held *h, struct slot *s)
{
	uint64_t id = h->id;
	int fd = h->fd;
	bool sync = h->sync;

	inbox_take(&c->inbox, h);
	h->fd = -1;
	slot_meta(s, h->mailbox, strlen(h->mailbox), h->sender, h->pid,
	    h->uid, h->len);
	if (slot_fill(c, s, h->data, fd, h->shared, h->len) == -1) {
		/* Unacknowledged, the daemon gives it out again later. */
		inbox_release(&c->inbox, h);
		return conn_break(c, errno);
	}
	inbox_release(&c->inbox, h);
	/* A sync one comes from recv_probe(): its sender waits for this. */
	if (msg_ack(c, id, sync) == -1) {
		slot_drop(s);
		return -1;
	}
	return 0;
}

/*
 * Reads the MSG frames answering one RECV (a receive-any when any): the
 * first goes to s, the rest are held.  Returns 0, or -1 (ESTALE: the
 * first was withdrawn).
 */
static int
recv_answer(struct mbx *c, struct answer *a, struct slot *s, bool any)
{
	struct msg_body m;
	bool sync, more;
	uint32_t id = a->h.id;
	uint64_t last;

	if (msg_decode(c, a, s->obj != NULL ? UINT64_MAX : s->cap, &m) == -1)
		return -1;
	slot_meta(s, m.mailbox.ptr, m.mailbox.len, (long)m.sender,
	    (pid_t)m.pid, (uid_t)m.uid, (size_t)m.size);
	if (slot_fill(c, s, m.payload.ptr, m.fd, m.shared, (size_t)m.size) == -1)
		return conn_break(c, errno);
	sync = (a->h.flags & PROTO_MSG_SYNC) != 0;
	more = (a->h.flags & PROTO_MSG_MORE) != 0;
	last = m.id;
	while (more) {
		struct msg_body h;

		if (answer_wait(c, id, a) == -1)
			goto drop;
		if (a->h.type != PROTO_MSG ||
		    msg_decode(c, a, UINT64_MAX, &h) == -1) {
			(void)conn_break(c, EPROTO);
			goto drop;
		}
		more = (a->h.flags & PROTO_MSG_MORE) != 0;
		/* Held messages are never sync ones: those come alone. */
		if (!inbox_push(&c->inbox, h.id, h.mailbox.ptr, h.mailbox.len,
		    (long)h.sender, (pid_t)h.pid, (uid_t)h.uid, h.fd, h.shared,
		    h.payload.ptr, (size_t)h.size, false, !any)) {
			(void)conn_break(c, ENOMEM);
			goto drop;
		}
		last = h.id;
	}
	/* The daemon took the oldest it had, one after the other. */
	if (any)
		inbox_settle(&c->inbox, last);
	if (msg_ack(c, m.id, sync) == -1)
		goto drop;
	return 0;
drop:
	slot_drop(s);
	return -1;
}

/*
 * One RECV exchange for up to max messages: the first into s, the rest
 * held.  0, or -1 with errno (ESTALE: try again).
 */
static int
recv_once(struct mbx *c, const char *name, struct slot *s, unsigned max,
    int timeout_ms)
{
	struct answer a;
	uint32_t id, status;

	req_begin(c);
	req_put_name(c, name != NULL ? name : "");
	proto_put_i32(&c->out, timeout_ms);
	proto_put_u64(&c->out, s->obj != NULL ? UINT64_MAX : s->cap);
	proto_put_u32(&c->out, max);
	proto_put_u64(&c->out, PREFETCH_BYTES);
	if ((id = req_end(c, PROTO_RECV, 0, 0)) == 0)
		return -1;
	if (call(c, id, NULL, 0, &a) == -1)
		return -1;
	if (a.h.type == PROTO_REPLY) {
		if (reply_status(c, &a, &status) == -1)
			return -1;
		/* A successful RECV is answered by a MSG, never by OK. */
		if (status == PROTO_OK)
			return conn_break(c, EPROTO);
		return status_fail(c, status);
	}
	return recv_answer(c, &a, s, name == NULL);
}

/*
 * A receive-any whose oldest held message came with a named receive: the
 * daemon may hold an older one.  Asks for its oldest without waiting and
 * holds what comes (a sync one too: it is acknowledged when taken); the
 * oldest held message is then the oldest of all.
 */
static int
recv_probe(struct mbx *c)
{
	struct answer a;
	uint32_t id, status;
	uint64_t last = 0;
	bool more = true;

	req_begin(c);
	req_put_name(c, "");
	proto_put_i32(&c->out, 0);
	proto_put_u64(&c->out, UINT64_MAX);
	proto_put_u32(&c->out, c->prefetch);
	proto_put_u64(&c->out, PREFETCH_BYTES);
	if ((id = req_end(c, PROTO_RECV, 0, 0)) == 0)
		return -1;
	if (call(c, id, NULL, 0, &a) == -1)
		return -1;
	if (a.h.type == PROTO_REPLY) {
		if (reply_status(c, &a, &status) == -1)
			return -1;
		if (status == PROTO_OK)
			return conn_break(c, EPROTO);
		if (status != PROTO_EAGAIN)
			return status_fail(c, status);
		/* Nothing there: what comes later is younger. */
		inbox_settle(&c->inbox, UINT64_MAX);
		return 0;
	}
	while (more) {
		struct msg_body m;

		if (a.h.type != PROTO_MSG ||
		    msg_decode(c, &a, UINT64_MAX, &m) == -1)
			return conn_break(c, EPROTO);
		more = (a.h.flags & PROTO_MSG_MORE) != 0;
		if (!inbox_push(&c->inbox, m.id, m.mailbox.ptr, m.mailbox.len,
		    (long)m.sender, (pid_t)m.pid, (uid_t)m.uid, m.fd, m.shared,
		    m.payload.ptr, (size_t)m.size,
		    (a.h.flags & PROTO_MSG_SYNC) != 0, false))
			return conn_break(c, ENOMEM);
		last = m.id;
		if (more && answer_wait(c, id, &a) == -1)
			return -1;
	}
	inbox_settle(&c->inbox, last);
	return 0;
}

/*
 * Receives into s: a held message of name if there is one, else from
 * the daemon, asking for up to max at once.  Waits as timeout_ms says.
 */
static int
recv_slot(struct mbx *c, const char *name, struct slot *s, unsigned max,
    int timeout_ms, bool drained)
{
	int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
	int left = timeout_ms;
	struct held *h;

	for (;;) {
		/* A binding lost since the last call takes its messages. */
		if (!drained && c->inbox.count > 0 && conn_drain(c) == -1)
			return -1;
		drained = false;
		h = inbox_find(&c->inbox, name);
		if (h != NULL && name == NULL && h->unsettled) {
			if (recv_probe(c) == -1)
				return -1;
			h = inbox_find(&c->inbox, NULL);
		}
		if (h != NULL) {
			if (s->obj == NULL && h->len > s->cap)
				return fail(EMSGSIZE);
			if (take_held(c, h, s) == 0)
				return 0;
		} else if (recv_once(c, name, s, max, left) == 0) {
			return 0;
		}
		if (errno != ESTALE)
			return -1;
		/* A sync sender withdrew the message between hand-out and
		 * ACK: receive again, within what is left of the time. */
		if (timeout_ms > 0)
			left = ms_left(deadline);
	}
}

/* One receive into s, then its acknowledgement written out. */
static int
recv_one(struct mbx *c, const char *name, struct slot *s, int timeout_ms)
{
	int ret = 0;

	if (recv_slot(c, name, s, c->prefetch, timeout_ms, false) == -1) {
		/* recv_slot() left nothing in s: see slot_drop(). */
		acks_flush_keep_errno(c);
		ret = -1;
	} else if (acks_flush(c) == -1) {
		/*
		 * The acknowledgement is written before the call returns:
		 * whatever the caller does next (an operator's rebind, say)
		 * the daemon then knows this message was received, and a
		 * shared buffer may go back to its sender.  Unwritten, the
		 * message goes back to its queue: not ours.
		 */
		slot_drop(s);
		ret = -1;
	}
	mbx_msg_free(s->release);
	return ret;
}

MBX_EXPORT ssize_t
mbx_recv(mbx_t *c, const char *name, void *buf, size_t cap,
    struct mbx_meta *meta, int timeout_ms)
{
	struct slot s = { buf, cap, meta, 0, NULL, NULL };

	if (c == NULL || (name != NULL && !name_ok(name)) ||
	    (buf == NULL && cap > 0) || timeout_ms < -1)
		return fail(EINVAL);
	if (recv_one(c, name, &s, timeout_ms) == -1)
		return -1;
	return (ssize_t)s.len;
}

MBX_EXPORT int
mbx_recvmsg(mbx_t *c, const char *name, mbx_msg_t **m,
    struct mbx_meta *meta, int timeout_ms)
{
	struct slot s = { NULL, 0, meta, 0, m, NULL };

	if (c == NULL || (name != NULL && !name_ok(name)) || m == NULL ||
	    timeout_ms < -1)
		return fail(EINVAL);
	*m = NULL;
	return recv_one(c, name, &s, timeout_ms);
}

MBX_EXPORT ssize_t
mbx_recvv(mbx_t *c, const char *name, struct mbx_rmsg *v, size_t n,
    int timeout_ms)
{
	size_t i;

	if (c == NULL || (name != NULL && !name_ok(name)) || v == NULL ||
	    n == 0 || timeout_ms < -1)
		return fail(EINVAL);
	for (i = 0; i < n; i++)
		if (v[i].buf == NULL && v[i].cap > 0)
			return fail(EINVAL);
	for (i = 0; i < n; i++) {
		struct slot s = { v[i].buf, v[i].cap, &v[i].meta, 0, NULL,
		    NULL };
		unsigned max = n - i > c->prefetch ? (unsigned)(n - i) :
		    c->prefetch;

		/* Only the first message may wait; then only held ones. */
		if (i > 0 && inbox_find(&c->inbox, name) == NULL)
			break;
		/* One look for notices per call: the batch is one receive. */
		if (recv_slot(c, name, &s, max, i == 0 ? timeout_ms : 0,
		    i > 0) == -1) {
			if (i == 0) {
				acks_flush_keep_errno(c);
				return -1;
			}
			break;
		}
		v[i].len = s.len;
		/* A shared buffer copied out goes back after its ACK. */
		if (s.release != NULL) {
			if (acks_flush(c) == -1) {
				/*
				 * Unacknowledged, the message goes back to
				 * its queue with its buffer, which is then
				 * not handed back (shm_discard()).  The
				 * caller has its copy: the handle is broken
				 * and the next call says so.
				 */
				shm_discard(s.release);
				return (ssize_t)(i + 1);
			}
			mbx_msg_free(s.release);
		}
	}
	/*
	 * One ACK frame for the batch, written before the call returns.  If
	 * it cannot be, the connection is broken (the daemon gives the
	 * messages out again): the caller still has what it consumed, and
	 * its next call fails.
	 */
	(void)acks_flush(c);
	return (ssize_t)i;
}

/*
 * Zero-copy messages.
 */

/*
 * The rest of an OK answering a SEND: the grant the handle now holds in
 * name, if any (none: what it knew of one there is forgotten).
 */
static int
grant_read(struct mbx *c, const char *name, struct answer *a)
{
	uint64_t mailbox_id = 0, bytes = 0, max_msg = 0;
	uint32_t count = 0;

	if (a->r.left > 0) {
		mailbox_id = proto_get_u64(&a->r);
		count = proto_get_u32(&a->r);
		bytes = proto_get_u64(&a->r);
		max_msg = proto_get_u64(&a->r);
		if (!proto_reader_done(&a->r) || count == 0)
			return conn_break(c, EPROTO);
	}
	if (c->use_credit)
		credits_set(&c->credits, name, mailbox_id, count, bytes,
		    max_msg, a->h.flags);
	return 0;
}

/*
 * Posts a prepared memfd on credit: one write, no answer (see
 * send_post()).  The descriptor fd is the message's; the kernel dups it.
 */
static int
post_fd(struct mbx *c, struct credit *cr, struct mbx_msg *m, int fd,
    bool shared)
{
	struct iovec iov;

	req_begin(c);
	proto_put_u64(&c->out, cr->mailbox_id);
	proto_put_u64(&c->out, m->len);
	if (req_end_nfds(c, PROTO_POST, PROTO_POST_FD |
	    (shared ? PROTO_POST_SHARED : 0), 0, 1) == 0)
		return -1;
	iov.iov_base = c->out.buf;
	iov.iov_len = c->out.len;
	if (conn_write_fd(c, &iov, 1, fd) == -1)
		return -1;
	cr->count--;
	cr->bytes -= m->len;
	return 0;
}

/* Whether grant cr covers a memfd post, shared or sealed. */
static bool
grant_covers_fd(const struct credit *cr, int flags)
{
	return cr != NULL && cr->zerocopy &&
	    (cr->shared || !(flags & MBX_SHARED));
}

/*
 * A grant that covers a memfd post of len bytes to name, or NULL.  A
 * shared one needs a grant that says the daemon would take it: elsewhere
 * the SEND it goes as instead is refused (EPERM), as it must be.
 */
static struct credit *
grant_for_fd(struct mbx *c, const char *name, size_t len, int flags)
{
	struct credit *cr;

	if ((flags & MBX_SYNC) || !c->use_credit ||
	    !grant_covers_fd(credits_cover(&c->credits, name, len), flags))
		return NULL;
	/* As for an inline post: a mailbox gone takes its grant along. */
	if (conn_drain_if_due(c) == -1)
		return NULL;
	cr = credits_cover(&c->credits, name, len);
	return grant_covers_fd(cr, flags) ? cr : NULL;
}

MBX_EXPORT mbx_msg_t *
mbx_msg_alloc(mbx_t *c, size_t len)
{
	if (c == NULL) {
		errno = EINVAL;
		return NULL;
	}
	return shm_alloc(&c->shm, len);
}

MBX_EXPORT void *
mbx_msg_data(mbx_msg_t *m)
{
	return m != NULL ? m->data : NULL;
}

MBX_EXPORT size_t
mbx_msg_len(const mbx_msg_t *m)
{
	return m != NULL ? m->len : 0;
}

MBX_EXPORT void
mbx_msg_free(mbx_msg_t *m)
{
	int err = errno;

	shm_free(m);
	errno = err;
}

/* A SEND whose payload is the memfd of m. */
static int
send_fd(struct mbx *c, const char *name, struct mbx_msg *m, int flags,
    int timeout_ms)
{
	bool shared = (flags & MBX_SHARED) != 0;
	struct credit *cr = grant_for_fd(c, name, m->len, flags);
	struct iovec iov;
	struct answer a;
	uint32_t id, status;
	int fd;

	if (c->broken)
		return fail(ECONNRESET);
	if ((fd = shm_ready(&c->shm, m, shared)) < 0)
		return -1;
	if (cr != NULL) {
		if (post_fd(c, cr, m, fd, shared) == -1)
			goto fail;
		shm_sent(&c->shm, m);
		return 0;
	}
	req_begin(c);
	req_put_name(c, name);
	proto_put_i32(&c->out, timeout_ms);
	proto_put_u64(&c->out, m->len);
	id = req_end_nfds(c, PROTO_SEND, PROTO_SEND_FD |
	    (shared ? PROTO_SEND_SHARED : 0) |
	    ((flags & MBX_SYNC) ? PROTO_SEND_SYNC :
	    c->use_credit ? PROTO_SEND_CREDIT : 0), 0, 1);
	if (id == 0)
		goto fail;
	iov.iov_base = c->out.buf;
	iov.iov_len = c->out.len;
	if (conn_write_fd(c, &iov, 1, fd) == -1 ||
	    answer_wait(c, id, &a) == -1 || reply_status(c, &a, &status) == -1)
		goto fail;
	if (status != PROTO_OK) {
		(void)status_fail(c, status);
		goto fail;
	}
	if (grant_read(c, name, &a) == -1)
		goto fail;
	shm_sent(&c->shm, m);
	return 0;
fail:
	{
		int err = errno;

		shm_unsent(m, shared);
		errno = err;
	}
	return -1;
}

MBX_EXPORT int
mbx_sendmsg(mbx_t *c, const char *name, mbx_msg_t *m, int flags,
    int timeout_ms)
{
	if (c == NULL || !name_ok(name) || m == NULL || m->received ||
	    (flags & ~(MBX_SYNC | MBX_SHARED)) != 0 || timeout_ms < -1)
		return fail(EINVAL);
	if (c->broken)
		return fail(ECONNRESET);
	return send_fd(c, name, m, flags, timeout_ms);
}

/* mbx_send() of a payload too large to travel inline: a sealed copy. */
static int
send_large(struct mbx *c, const char *name, const void *data, size_t len,
    int flags, int timeout_ms)
{
	struct mbx_msg *m = shm_alloc(&c->shm, len);
	int ret;

	if (m == NULL)
		return -1;
	memcpy(m->data, data, len);
	ret = send_fd(c, name, m, flags & MBX_SYNC, timeout_ms);
	if (ret == -1)
		mbx_msg_free(m);
	return ret;
}

/*
 * Posts a message on credit: the daemon reserved room for it, so it
 * cannot fail there and nothing is answered.  One write, no wait.
 */
static int
send_post(struct mbx *c, struct credit *cr, const void *data, size_t len)
{
	uint32_t id;

	req_begin(c);
	proto_put_u64(&c->out, cr->mailbox_id);
	proto_put_u32(&c->out, (uint32_t)len);
	if ((id = req_end(c, PROTO_POST, 0, len)) == 0)
		return -1;
	if (req_send(c, data, len) == -1)
		return -1;
	cr->count--;
	cr->bytes -= len;
	return 0;
}

/* Bytes of posts gathered for one write. */
#define POST_BATCH_BYTES	(256u * 1024)

/*
 * Posts the prefix of v[0..n) that credit covers, copied into one write
 * of at most about POST_BATCH_BYTES: how many (0 when credit does not
 * cover v[0]), or -1 when the handle broke (out of memory for the frames,
 * which carry the pending acknowledgements too, or a failed write).
 */
static ssize_t
post_batch(struct mbx *c, const struct mbx_smsg *v, size_t n)
{
	size_t i;

	for (i = 0; i < n && (i == 0 || c->out.len < POST_BATCH_BYTES); i++) {
		struct credit *cr = credits_cover(&c->credits, v[i].name,
		    v[i].len);
		uint8_t *p;

		if (cr == NULL)
			break;
		if (i == 0) {
			req_begin(c);
		} else {
			c->req_off = c->out.len;
			(void)proto_frame_begin(&c->out);
		}
		proto_put_u64(&c->out, cr->mailbox_id);
		proto_put_u32(&c->out, (uint32_t)v[i].len);
		if ((p = proto_put_raw(&c->out, v[i].len)) != NULL &&
		    v[i].len > 0)
			memcpy(p, v[i].data, v[i].len);
		if (req_end(c, PROTO_POST, 0, 0) == 0)
			return conn_break(c, ENOMEM);
		cr->count--;
		cr->bytes -= v[i].len;
	}
	if (i > 0 && req_send(c, NULL, 0) == -1)
		return -1;
	return (ssize_t)i;
}

/* A SEND round trip; a success may bring credit for the next ones. */
static int
send_call(struct mbx *c, const char *name, const void *data, size_t len,
    int flags, int timeout_ms)
{
	struct answer a;
	uint32_t id, status;

	req_begin(c);
	req_put_name(c, name);
	proto_put_i32(&c->out, timeout_ms);
	/* The blob's length; its bytes follow straight from data, so a
	 * large payload is not copied into the request first. */
	proto_put_u32(&c->out, (uint32_t)len);
	id = req_end(c, PROTO_SEND, (flags & MBX_SYNC) ? PROTO_SEND_SYNC :
	    c->use_credit ? PROTO_SEND_CREDIT : 0, len);
	if (id == 0 || call(c, id, data, len, &a) == -1 ||
	    reply_status(c, &a, &status) == -1)
		return -1;
	if (status != PROTO_OK)
		return status_fail(c, status);
	return grant_read(c, name, &a);
}

MBX_EXPORT int
mbx_send(mbx_t *c, const char *name, const void *data, size_t len,
    int flags, int timeout_ms)
{
	struct credit *cr;

	if (c == NULL || !name_ok(name) || (data == NULL && len > 0) ||
	    (flags & ~MBX_SYNC) != 0 || timeout_ms < -1)
		return fail(EINVAL);
	if (c->broken)
		return fail(ECONNRESET);
	if (len > c->zerocopy_above)
		return send_large(c, name, data, len, flags, timeout_ms);
	/* A mailbox gone (as far as this process can know) takes its
	 * credit with it. */
	if (!(flags & MBX_SYNC) && c->use_credit &&
	    (cr = credits_cover(&c->credits, name, len)) != NULL) {
		if (conn_drain_if_due(c) == -1)
			return -1;
		if ((cr = credits_cover(&c->credits, name, len)) != NULL)
			return send_post(c, cr, data, len);
	}
	return send_call(c, name, data, len, flags, timeout_ms);
}

/* How many of v[0..n) one SENDV frame can carry (at least one). */
static size_t
sendv_fit(const struct mbx_smsg *v, size_t n)
{
	size_t body = 4, i;

	for (i = 0; i < n; i++) {
		body += 2 + strlen(v[i].name) + 4 + v[i].len;
		if (body > PROTO_MAX_BODY)
			break;
	}
	return i > 0 ? i : 1;
}

/*
 * The SENDV round trip for a prefix of v[0..n) (*tried messages, as many
 * as one frame carries): how many the daemon enqueued.
 */
static ssize_t
sendv_call(struct mbx *c, const struct mbx_smsg *v, size_t n, size_t *tried)
{
	struct iovec iov[1 + 2 * 64];
	struct answer a;
	uint32_t id, status, done;
	size_t start;

	if (n > 64)
		n = 64;
	n = sendv_fit(v, n);
	*tried = n;
	req_begin(c);
	proto_put_u32(&c->out, (uint32_t)n);
	/* Names and lengths into c->out; payloads straight from the caller. */
	start = c->out.len;
	for (size_t i = 0; i < n; i++) {
		req_put_name(c, v[i].name);
		proto_put_u32(&c->out, (uint32_t)v[i].len);
	}
	{
		size_t extra = 0, off = start, k = 0;

		for (size_t i = 0; i < n; i++)
			extra += v[i].len;
		if ((id = req_end(c, PROTO_SENDV, 0, extra)) == 0)
			return -1;
		/* Interleave: [prefix+name0+len0][data0][name1+len1][data1]... */
		iov[k].iov_base = c->out.buf;
		iov[k++].iov_len = off;
		for (size_t i = 0; i < n; i++) {
			size_t field = 2 + strlen(v[i].name) + 4;

			iov[k].iov_base = c->out.buf + off;
			iov[k++].iov_len = field;
			off += field;
			iov[k].iov_base = (void *)(uintptr_t)v[i].data;
			iov[k++].iov_len = v[i].len;
		}
		if (conn_write(c, iov, k) == -1)
			return -1;
	}
	if (answer_wait(c, id, &a) == -1 || reply_status(c, &a, &status) == -1)
		return -1;
	done = proto_get_u32(&a.r);
	if (!proto_reader_done(&a.r) || done > n)
		return conn_break(c, EPROTO);
	if (done == 0)
		return status_fail(c, status == PROTO_OK ? PROTO_EPROTO : status);
	return (ssize_t)done;
}

MBX_EXPORT ssize_t
mbx_sendv(mbx_t *c, const struct mbx_smsg *v, size_t n, int timeout_ms)
{
	size_t i = 0;
	ssize_t done = 0;

	if (c == NULL || v == NULL || n == 0 || timeout_ms < -1)
		return fail(EINVAL);
	for (size_t k = 0; k < n; k++)
		if (!name_ok(v[k].name) || (v[k].data == NULL && v[k].len > 0))
			return fail(EINVAL);
	/* Zero-copy ones go alone, as mbx_send() sends them. */
	if (v[0].len > c->zerocopy_above)
		return mbx_send(c, v[0].name, v[0].data, v[0].len, 0,
		    timeout_ms) == -1 ? -1 : 1;
	for (size_t k = 1; k < n; k++)
		if (v[k].len > c->zerocopy_above)
			n = k;
	/* Whatever credit covers goes without a round trip. */
	if (c->use_credit && conn_drain_if_due(c) == -1)
		return -1;
	while (i < n && c->use_credit) {
		ssize_t posted = post_batch(c, v + i, n - i);

		/* A write cut short: which posts went is unknown. */
		if (posted < 0)
			return -1;
		if (posted == 0)
			break;
		i += (size_t)posted;
	}
	if (i == n || (i > 0 && c->broken))
		return (ssize_t)i;
	/* Frame after frame while every message of the last one went. */
	while (i < n) {
		size_t tried;

		done = sendv_call(c, v + i, n - i, &tried);
		if (done <= 0)
			break;
		i += (size_t)done;
		if ((size_t)done < tried)
			return (ssize_t)i;
	}
	if (i > 0)
		return (ssize_t)i;
	/* Nothing could go without waiting: wait for the first alone. */
	if (errno != EAGAIN || timeout_ms == 0)
		return -1;
	if (mbx_send(c, v[0].name, v[0].data, v[0].len, 0, timeout_ms) == -1)
		return -1;
	return 1;
}

