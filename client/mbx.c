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

#include "credit.h"
#include "inbox.h"
#include "mbx.h"
#include "proto.h"
#include "shm.h"

/* The library is built with -fvisibility=hidden: only these are exported. */
#define MBX_EXPORT	__attribute__((visibility("default")))

/*
 * Read buffer sizes: what a handle starts with, and the size above which
 * the buffer is given back once the frame that needed it is consumed (a
 * single 16 MiB message must not pin 16 MiB for the handle's lifetime,
 * while the default 1 MiB messages should not realloc every time).
 */
#define RBUF_MIN	(64u * 1024)
#define RBUF_KEEP	(2u * 1024 * 1024)

/*
 * Receives ask for up to PREFETCH_COUNT messages (PREFETCH_BYTES of
 * payload) at once and hold the rest; acknowledgements of held messages
 * go out in one ACK frame of up to ACK_MAX ids.
 */
#define PREFETCH_COUNT	64
#define PREFETCH_BYTES	(256u * 1024)
#define ACK_MAX		64

struct mbx {
	int		 fd;
	long		 id;		/* client id (HELLO answer) */
	uint32_t	 next_id;	/* next request id; never 0 */
	bool		 broken;	/* see "Invariants" above */

	/* Bytes received and not yet consumed; the first rdone of them are
	 * the answer handed out last, dropped at the next read. */
	uint8_t		*rbuf;
	size_t		 rlen;
	size_t		 rcap;
	size_t		 rdone;

	struct proto_writer out;	/* the request being built */
	size_t		 req_off;	/* where it starts in out */

	struct inbox	 inbox;		/* received ahead of the caller */
	uint64_t	 acks[ACK_MAX];	/* taken, not yet acknowledged */
	size_t		 nacks;
	unsigned	 prefetch;	/* messages asked for at once */
	struct credits	 credits;
	bool		 use_credit;

	struct shm	 shm;		/* zero-copy buffers and mappings */
	int		 in_fds[PROTO_MAX_FDS];	/* received, not yet claimed */
	size_t		 nin_fds;
};

/* An answer frame; its body points into the read buffer until the next
 * read. */
struct answer {
	struct proto_header	h;
	struct proto_reader	r;
	int			fd;	/* the descriptor it came with, or -1:
					 * the reader of the answer owns it */
};

/* A decoded MSG body; the strings point into the answer. */
struct msg {
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
 * Transport: bytes and frames, no protocol knowledge.
 */

/* Marks the handle broken (see "Invariants") and fails with err. */
static int
conn_break(struct mbx *c, int err)
{
	c->broken = true;
	/* Shut down, not close: the descriptor number stays the caller's. */
	(void)shutdown(c->fd, SHUT_RDWR);
	errno = err;
	return -1;
}

/* Waits, without deadline, until the socket is ready for events. */
static int
conn_wait(struct mbx *c, short events)
{
	struct pollfd pfd = { .fd = c->fd, .events = events };

	while (poll(&pfd, 1, -1) == -1) {
		/* A signal interrupts nothing: the daemon answers anyway. */
		if (errno != EINTR)
			return conn_break(c, errno);
	}
	return 0;
}

/* Drops n bytes already written from the front of msg's iovec array. */
static void
iov_advance(struct msghdr *msg, size_t n)
{
	struct iovec *iov;

	while (msg->msg_iovlen > 0 && n >= msg->msg_iov->iov_len) {
		n -= msg->msg_iov->iov_len;
		msg->msg_iov++;
		msg->msg_iovlen--;
	}
	if (msg->msg_iovlen > 0) {
		iov = msg->msg_iov;
		iov->iov_base = (uint8_t *)iov->iov_base + n;
		iov->iov_len -= n;
	}
}

/*
 * Writes every byte of iov.  A partial write is continued, not reported:
 * a frame cut in two would desynchronise the stream for good.
 */
static int
conn_write_fd(struct mbx *c, struct iovec *iov, size_t iovcnt, int fd)
{
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = iovcnt };
	union {
		struct cmsghdr	align;
		char buf[CMSG_SPACE(sizeof(int))];
	} cbuf;
	ssize_t n;

	/* The descriptor rides with the first byte of the frame. */
	if (fd >= 0) {
		struct cmsghdr *cm;

		memset(&cbuf, 0, sizeof(cbuf));
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = sizeof(cbuf.buf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(fd));
	}

	if (c->broken) {
		errno = ECONNRESET;
		return -1;
	}
	iov_advance(&msg, 0);
	while (msg.msg_iovlen > 0) {
		/* MSG_NOSIGNAL: a vanished daemon is ECONNRESET, not
		 * SIGPIPE. */
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
		if (n >= 0) {
			iov_advance(&msg, (size_t)n);
			if (n > 0) {
				msg.msg_control = NULL;
				msg.msg_controllen = 0;
			}
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return conn_break(c, ECONNRESET);
		if (conn_wait(c, POLLOUT) == -1)
			return -1;
	}
	return 0;
}

static int
conn_write(struct mbx *c, struct iovec *iov, size_t iovcnt)
{
	return conn_write_fd(c, iov, iovcnt, -1);
}

static void
conn_close_in_fds(struct mbx *c)
{
	for (size_t i = 0; i < c->nin_fds; i++)
		(void)close(c->in_fds[i]);
	c->nin_fds = 0;
}

/*
 * Queues the descriptors that came with msg, for the frames that declare
 * them (a zero-copy MSG).  More than any frame may claim is a protocol
 * violation; none of them may leak into the caller's process.
 */
static int
conn_take_fds(struct mbx *c, struct msghdr *msg)
{
	struct cmsghdr *cm;
	int ret = 0;
	size_t n;
	int fd;

	for (cm = CMSG_FIRSTHDR(msg); cm != NULL; cm = CMSG_NXTHDR(msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int),
			    sizeof(fd));
			if (c->nin_fds == PROTO_MAX_FDS) {
				(void)close(fd);
				ret = -1;
			} else {
				c->in_fds[c->nin_fds++] = fd;
			}
		}
	}
	return ret;
}

/* Reads once into the free part of the read buffer, waiting if need be. */
static int
conn_fill(struct mbx *c)
{
	union {
		struct cmsghdr	align;
		char buf[CMSG_SPACE(PROTO_MAX_FDS * sizeof(int))];
	} cbuf;
	struct iovec iov = { c->rbuf + c->rlen, c->rcap - c->rlen };
	struct msghdr msg;
	ssize_t n;

	for (;;) {
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = sizeof(cbuf.buf);
		/* MSG_CMSG_CLOEXEC: no window in which a fork could inherit
		 * a descriptor before conn_close_fds() closes it. */
		n = recvmsg(c->fd, &msg, MSG_CMSG_CLOEXEC);
		if (n > 0)
			break;
		if (n == 0)
			return conn_break(c, ECONNRESET);
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return conn_break(c, ECONNRESET);
		if (conn_wait(c, POLLIN) == -1)
			return -1;
	}
	/* MSG_CTRUNC: descriptors were lost in the kernel. */
	if (conn_take_fds(c, &msg) == -1 || (msg.msg_flags & MSG_CTRUNC)) {
		conn_close_in_fds(c);
		return conn_break(c, EPROTO);
	}
	c->rlen += (size_t)n;
	return 0;
}

/* Makes the read buffer hold at least need bytes. */
static int
conn_reserve(struct mbx *c, size_t need)
{
	uint8_t *p;

	if (need < RBUF_MIN)
		need = RBUF_MIN;
	if (c->rcap >= need)
		return 0;
	p = realloc(c->rbuf, need);
	if (p == NULL)
		return -1;
	c->rbuf = p;
	c->rcap = need;
	return 0;
}

/* Forgets the answer handed out last, and a big buffer it needed. */
static void
conn_drop(struct mbx *c)
{
	uint8_t *p;

	if (c->rdone == 0)
		return;
	c->rlen -= c->rdone;
	if (c->rlen > 0)
		memmove(c->rbuf, c->rbuf + c->rdone, c->rlen);
	c->rdone = 0;
	if (c->rcap > RBUF_KEEP && c->rlen <= RBUF_MIN) {
		p = realloc(c->rbuf, RBUF_MIN);
		if (p != NULL) {
			c->rbuf = p;
			c->rcap = RBUF_MIN;
		}
	}
}

/*
 * Reads the next whole frame from the daemon.  The header's length is
 * checked (by proto_header_decode) before the buffer grows for the body.
 */
static int
conn_read_frame(struct mbx *c, struct answer *a)
{
	enum proto_decode d;
	size_t need;

	if (c->broken) {
		errno = ECONNRESET;
		return -1;
	}
	conn_drop(c);
	for (;;) {
		d = proto_header_decode(c->rbuf, c->rlen, PROTO_MAX_BODY,
		    &a->h);
		if (d == PROTO_DECODE_MALFORMED)
			return conn_break(c, EPROTO);
		need = PROTO_HEADER_SIZE;
		if (d == PROTO_DECODE_OK) {
			need += a->h.len;
			if (c->rlen >= need)
				break;
		}
		/* Without room for the answer, the stream cannot be kept in
		 * step: give the connection up. */
		if (conn_reserve(c, need) == -1)
			return conn_break(c, ENOMEM);
		if (conn_fill(c) == -1)
			return -1;
	}
	/* Only REPLY, MSG and REVOKE travel to a client; only a zero-copy
	 * MSG declares a descriptor, sent with its first byte. */
	if ((a->h.type != PROTO_REPLY && a->h.type != PROTO_MSG &&
	    a->h.type != PROTO_REVOKE) ||
	    a->h.nfds != ((a->h.type == PROTO_MSG &&
	    (a->h.flags & PROTO_MSG_FD)) ? 1 : 0) ||
	    a->h.nfds > c->nin_fds) {
		conn_close_in_fds(c);
		return conn_break(c, EPROTO);
	}
	a->fd = -1;
	if (a->h.nfds == 1) {
		a->fd = c->in_fds[0];
		memmove(c->in_fds, c->in_fds + 1,
		    --c->nin_fds * sizeof(c->in_fds[0]));
	}
	proto_reader_init(&a->r, c->rbuf + PROTO_HEADER_SIZE, a->h.len);
	c->rdone = need;
	return 0;
}

/*
 * Requests: building, sending, waiting for the answer.
 */

/* Appends an ACK frame for the pending acknowledgements to c->out. */
static void
acks_put(struct mbx *c)
{
	size_t start;

	if (c->nacks == 0)
		return;
	start = proto_frame_begin(&c->out);
	for (size_t i = 0; i < c->nacks; i++)
		proto_put_u64(&c->out, c->acks[i]);
	proto_frame_end(&c->out, start, PROTO_ACK, c->next_id++, 0, 0);
	if (c->next_id == 0)
		c->next_id = 1;
	c->nacks = 0;
}

/*
 * Starts a new request in c->out, forgetting the previous one.  Pending
 * acknowledgements ride in front of it: one write for both.
 */
static void
req_begin(struct mbx *c)
{
	/* Keep the allocation between requests, unless it failed. */
	if (proto_writer_failed(&c->out))
		proto_writer_free(&c->out);
	else
		proto_writer_consume(&c->out, c->out.len);
	acks_put(c);
	c->req_off = c->out.len;
	(void)proto_frame_begin(&c->out);
}

static void
req_put_name(struct mbx *c, const char *name)
{
	proto_put_str(&c->out, name, strlen(name));
}

/*
 * Fills in the header of the request in c->out, whose body goes on for
 * extra bytes that are not in c->out (a payload sent straight from the
 * caller's buffer).  Returns the request id, or 0 with errno ENOMEM.
 */
static uint32_t
req_end_nfds(struct mbx *c, uint16_t type, uint32_t flags, size_t extra,
    uint16_t nfds)
{
	struct proto_header h;

	if (proto_writer_failed(&c->out)) {
		errno = ENOMEM;
		return 0;
	}
	h.len = (uint32_t)(c->out.len - c->req_off - PROTO_HEADER_SIZE + extra);
	h.type = type;
	h.nfds = nfds;
	h.flags = flags;
	h.id = c->next_id++;
	if (c->next_id == 0)
		c->next_id = 1;
	proto_header_encode(c->out.buf + c->req_off, &h);
	return h.id;
}

static uint32_t
req_end(struct mbx *c, uint16_t type, uint32_t flags, size_t extra)
{
	return req_end_nfds(c, type, flags, extra, 0);
}

/* Writes the request in c->out, then the extra bytes. */
static int
req_send(struct mbx *c, const void *extra, size_t extralen)
{
	struct iovec iov[2];

	iov[0].iov_base = c->out.buf;
	iov[0].iov_len = c->out.len;
	/* The payload is only read; iovec just has no const member. */
	iov[1].iov_base = (void *)(uintptr_t)extra;
	iov[1].iov_len = extralen;
	return conn_write(c, iov, 2);
}

/*
 * A REVOKE: the daemon took back the messages we held from a mailbox
 * (its binding moved, or it is gone, and with it any credit there).
 */
static int
revoke_apply(struct mbx *c, struct answer *a)
{
	uint32_t what = proto_get_u32(&a->r);
	struct proto_str name = proto_get_str(&a->r);
	uint64_t mailbox_id = proto_get_u64(&a->r);

	if (!proto_reader_done(&a->r) || a->h.id != 0)
		return conn_break(c, EPROTO);
	inbox_drop_mailbox(&c->inbox, name.ptr, name.len);
	if (what == PROTO_REVOKE_GONE)
		credits_drop(&c->credits, mailbox_id);
	return 0;
}

/* Reads frames until the answer to id, applying REVOKEs on the way. */
static int
answer_wait(struct mbx *c, uint32_t id, struct answer *a)
{
	for (;;) {
		if (conn_read_frame(c, a) == -1)
			return -1;
		if (a->h.type == PROTO_REVOKE) {
			if (revoke_apply(c, a) == -1)
				return -1;
			continue;
		}
		/* One request at a time: another id means we lost track. */
		if (a->h.id != id)
			return conn_break(c, EPROTO);
		return 0;
	}
}

/*
 * Applies the REVOKEs that arrived since the last call, without waiting:
 * between calls nothing else can come.
 */
static int
conn_drain(struct mbx *c)
{
	struct answer a;
	ssize_t n;

	for (;;) {
		struct proto_header h;

		conn_drop(c);
		if (proto_header_decode(c->rbuf, c->rlen, PROTO_MAX_BODY, &h) ==
		    PROTO_DECODE_OK && c->rlen >= PROTO_HEADER_SIZE + h.len) {
			if (conn_read_frame(c, &a) == -1)
				return -1;
			if (a.h.type != PROTO_REVOKE)
				return conn_break(c, EPROTO);
			if (revoke_apply(c, &a) == -1)
				return -1;
			continue;
		}
		if (conn_reserve(c, c->rlen + 256) == -1)
			return conn_break(c, ENOMEM);
		n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen,
		    MSG_DONTWAIT);
		if (n > 0) {
			c->rlen += (size_t)n;
			continue;
		}
		if (n == 0)
			return conn_break(c, ECONNRESET);
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno != EINTR)
			return conn_break(c, ECONNRESET);
	}
}

/* Sends the request built in c->out (plus extra) and waits for its
 * answer. */
static int
call(struct mbx *c, uint32_t id, const void *extra, size_t extralen,
    struct answer *a)
{
	if (req_send(c, extra, extralen) == -1)
		return -1;
	return answer_wait(c, id, a);
}

/* Reads the status that starts a REPLY; -1 (handle broken) when a is
 * no REPLY. */
static int
reply_status(struct mbx *c, struct answer *a, uint32_t *status)
{
	if (a->h.type != PROTO_REPLY)
		return conn_break(c, EPROTO);
	*status = proto_get_u32(&a->r);
	if (a->r.bad)
		return conn_break(c, EPROTO);
	return 0;
}

/* Fails with the errno of a status other than PROTO_OK. */
static int
status_fail(struct mbx *c, uint32_t status)
{
	int err = proto_status_to_errno(status);

	/* PROTO_STALE answers a sync ACK only (handled there). */
	if (err == ESTALE)
		return conn_break(c, EPROTO);
	/* PROTO_ESHUTDOWN: the daemon is stopping and closes every
	 * connection; the handle is as good as gone. */
	if (err == ECONNRESET)
		return conn_break(c, ECONNRESET);
	errno = err;
	return -1;
}

/*
 * Waits for the answer to a request whose success is a bare status.
 * What follows an error status is not checked: the error is the answer
 * whatever detail comes with it.
 */
static int
call_status(struct mbx *c, uint32_t id, const void *extra, size_t extralen)
{
	struct answer a;
	uint32_t status;

	if (call(c, id, extra, extralen, &a) == -1 ||
	    reply_status(c, &a, &status) == -1)
		return -1;
	if (status != PROTO_OK)
		return status_fail(c, status);
	if (!proto_reader_done(&a.r))
		return conn_break(c, EPROTO);
	return 0;
}

/* A request whose body is just a name. */
static int
name_request(struct mbx *c, uint16_t type, uint32_t flags, const char *name)
{
	uint32_t id;

	req_begin(c);
	req_put_name(c, name);
	if ((id = req_end(c, type, flags, 0)) == 0)
		return -1;
	return call_status(c, id, NULL, 0);
}

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

static int acks_flush(struct mbx *);

/*
 * Defaults, which the environment may change for programs that do not
 * call mbx_setopt(): MBX_PREFETCH=N asks for N messages per receive (1:
 * one at a time), MBX_CREDIT=1 lets sends go on credit.
 */
static void
tune(struct mbx *c)
{
	const char *p = secure_getenv("MBX_PREFETCH");
	const char *cr = secure_getenv("MBX_CREDIT");

	(void)mbx_setopt(c, MBX_OPT_PREFETCH,
	    p != NULL ? strtol(p, NULL, 10) : PREFETCH_COUNT);
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
	if (c->fd != -1)
		(void)close(c->fd);
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

/* LIST and CLIENTS: a JSON blob, copied out NUL-terminated. */
static int
json_request(struct mbx *c, uint16_t type, char **json)
{
	struct answer a;
	struct proto_str blob;
	uint32_t id, status;
	char *s;

	if (c == NULL || json == NULL)
		return fail(EINVAL);
	req_begin(c);
	if ((id = req_end(c, type, 0, 0)) == 0)
		return -1;
	if (call(c, id, NULL, 0, &a) == -1 ||
	    reply_status(c, &a, &status) == -1)
		return -1;
	if (status != PROTO_OK)
		return status_fail(c, status);
	blob = proto_get_blob(&a.r);
	/* The caller gets a C string: a NUL inside would cut it short. */
	if (!proto_reader_done(&a.r) || memchr(blob.ptr, 0, blob.len) != NULL)
		return conn_break(c, EPROTO);
	s = malloc(blob.len + 1);
	if (s == NULL)
		return -1;
	memcpy(s, blob.ptr, blob.len);
	s[blob.len] = '\0';
	*json = s;
	return 0;
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

/* Writes the pending acknowledgements now, alone. */
static int
acks_flush(struct mbx *c)
{
	if (c->nacks == 0)
		return 0;
	if (proto_writer_failed(&c->out))
		proto_writer_free(&c->out);
	else
		proto_writer_consume(&c->out, c->out.len);
	acks_put(c);
	/* An ACK we cannot send leaves messages handed out for good: drop
	 * the connection so that the daemon puts them back. */
	if (proto_writer_failed(&c->out))
		return conn_break(c, ENOMEM);
	return req_send(c, NULL, 0);
}

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
msg_decode(struct mbx *c, struct answer *a, uint64_t cap, struct msg *m)
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
	shm_free(m);
	return 0;
}

/* Hands a held message to the caller. */
static int
take_held(struct mbx *c, struct held *h, struct slot *s)
{
	uint64_t id = h->id;
	int fd = h->fd;

	inbox_take(&c->inbox, h);
	h->fd = -1;
	slot_meta(s, h->mailbox, strlen(h->mailbox), h->sender, h->pid,
	    h->uid, h->len);
	if (slot_fill(c, s, h->data, fd, h->shared, h->len) == -1) {
		/* Unacknowledged, the daemon gives it out again later. */
		held_free(h);
		return conn_break(c, errno);
	}
	held_free(h);
	/* Held messages are never sync ones: the daemon sends those alone. */
	return msg_ack(c, id, false);
}

/*
 * Reads the MSG frames answering one RECV: the first goes to s, the rest
 * are held.  Returns 0, or -1 (ESTALE: the first was withdrawn).
 */
static int
recv_answer(struct mbx *c, struct answer *a, struct slot *s)
{
	struct msg m;
	bool sync, more;
	uint32_t id = a->h.id;

	if (msg_decode(c, a, s->obj != NULL ? UINT64_MAX : s->cap, &m) == -1)
		return -1;
	slot_meta(s, m.mailbox.ptr, m.mailbox.len, (long)m.sender,
	    (pid_t)m.pid, (uid_t)m.uid, (size_t)m.size);
	if (slot_fill(c, s, m.payload.ptr, m.fd, m.shared, (size_t)m.size) == -1)
		return conn_break(c, errno);
	sync = (a->h.flags & PROTO_MSG_SYNC) != 0;
	more = (a->h.flags & PROTO_MSG_MORE) != 0;
	while (more) {
		struct msg h;

		if (answer_wait(c, id, a) == -1)
			return -1;
		if (a->h.type != PROTO_MSG ||
		    msg_decode(c, a, UINT64_MAX, &h) == -1)
			return conn_break(c, EPROTO);
		more = (a->h.flags & PROTO_MSG_MORE) != 0;
		if (!inbox_push(&c->inbox, h.id, h.mailbox.ptr, h.mailbox.len,
		    (long)h.sender, (pid_t)h.pid, (uid_t)h.uid, h.fd, h.shared,
		    h.payload.ptr, (size_t)h.size))
			return conn_break(c, ENOMEM);
	}
	if (msg_ack(c, m.id, sync) == -1) {
		/* A withdrawn message is not the caller's after all. */
		if (s->obj != NULL) {
			shm_free(*s->obj);
			*s->obj = NULL;
		}
		return -1;
	}
	return 0;
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
	return recv_answer(c, &a, s);
}

/*
 * Receives into s: a held message of name if there is one, else from
 * the daemon, asking for up to max at once.  Waits as timeout_ms says.
 */
static int
recv_slot(struct mbx *c, const char *name, struct slot *s, unsigned max,
    int timeout_ms)
{
	int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
	int left = timeout_ms;
	struct held *h;

	for (;;) {
		/* A binding lost since the last call takes its messages. */
		if (c->inbox.count > 0 && conn_drain(c) == -1)
			return -1;
		if ((h = inbox_find(&c->inbox, name)) != NULL) {
			if (s->obj == NULL && h->len > s->cap)
				return fail(EMSGSIZE);
			return take_held(c, h, s);
		}
		if (recv_once(c, name, s, max, left) == 0)
			return 0;
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
	if (recv_slot(c, name, s, c->prefetch, timeout_ms) == -1) {
		acks_flush_keep_errno(c);
		return -1;
	}
	/*
	 * The acknowledgement is written before the call returns: whatever
	 * the caller does next (an operator's rebind, say) the daemon then
	 * knows this message was received.
	 */
	if (acks_flush(c) == -1) {
		if (s->obj != NULL) {
			shm_free(*s->obj);
			*s->obj = NULL;
		}
		return -1;
	}
	return 0;
}

MBX_EXPORT ssize_t
mbx_recv(mbx_t *c, const char *name, void *buf, size_t cap,
    struct mbx_meta *meta, int timeout_ms)
{
	struct slot s = { buf, cap, meta, 0, NULL };

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
	struct slot s = { NULL, 0, meta, 0, m };

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
		struct slot s = { v[i].buf, v[i].cap, &v[i].meta, 0, NULL };
		unsigned max = n - i > c->prefetch ? (unsigned)(n - i) :
		    c->prefetch;

		/* Only the first message may wait; then only held ones. */
		if (i > 0 && inbox_find(&c->inbox, name) == NULL)
			break;
		if (recv_slot(c, name, &s, max, i == 0 ? timeout_ms : 0) == -1) {
			if (i == 0) {
				acks_flush_keep_errno(c);
				return -1;
			}
			break;
		}
		v[i].len = s.len;
	}
	/* One ACK frame for the batch, written before the call returns. */
	if (acks_flush(c) == -1)
		return -1;
	return (ssize_t)i;
}

/*
 * Zero-copy messages.
 */

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
	struct iovec iov;
	struct answer a;
	uint32_t id, status;
	int fd = shm_ready(&c->shm, m, shared);

	if (fd < 0)
		return -1;
	req_begin(c);
	req_put_name(c, name);
	proto_put_i32(&c->out, timeout_ms);
	proto_put_u64(&c->out, m->len);
	id = req_end_nfds(c, PROTO_SEND, PROTO_SEND_FD |
	    (shared ? PROTO_SEND_SHARED : 0) |
	    ((flags & MBX_SYNC) ? PROTO_SEND_SYNC : 0), 0, 1);
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

/* A SEND round trip; a success may bring credit for the next ones. */
static int
send_call(struct mbx *c, const char *name, const void *data, size_t len,
    int flags, int timeout_ms)
{
	struct answer a;
	uint32_t id, status, count;
	uint64_t mailbox_id, bytes;

	req_begin(c);
	req_put_name(c, name);
	proto_put_i32(&c->out, timeout_ms);
	/* The blob's length; its bytes follow straight from data, so a
	 * large payload is not copied into the request first. */
	proto_put_u32(&c->out, (uint32_t)len);
	id = req_end(c, PROTO_SEND, (flags & MBX_SYNC) ? PROTO_SEND_SYNC : 0,
	    len);
	if (id == 0 || call(c, id, data, len, &a) == -1 ||
	    reply_status(c, &a, &status) == -1)
		return -1;
	if (status != PROTO_OK)
		return status_fail(c, status);
	if (a.r.left == 0)
		return 0;
	mailbox_id = proto_get_u64(&a.r);
	count = proto_get_u32(&a.r);
	bytes = proto_get_u64(&a.r);
	if (!proto_reader_done(&a.r))
		return conn_break(c, EPROTO);
	if (c->use_credit)
		credits_set(&c->credits, name, mailbox_id, count, bytes);
	return 0;
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
	if (len > MBX_MAX_MSG_LIMIT)
		return send_large(c, name, data, len, flags, timeout_ms);
	/* A mailbox gone since the last call takes its credit with it. */
	if (!(flags & MBX_SYNC) && c->use_credit &&
	    (cr = credits_cover(&c->credits, name, len)) != NULL) {
		if (conn_drain(c) == -1)
			return -1;
		if ((cr = credits_cover(&c->credits, name, len)) != NULL)
			return send_post(c, cr, data, len);
	}
	return send_call(c, name, data, len, flags, timeout_ms);
}

/* The SENDV round trip for v[0..n): how many the daemon enqueued. */
static ssize_t
sendv_call(struct mbx *c, const struct mbx_smsg *v, size_t n)
{
	struct iovec iov[1 + 2 * 64];
	struct answer a;
	uint32_t id, status, done;
	size_t start;

	if (n > 64)
		n = 64;
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
	ssize_t done;

	if (c == NULL || v == NULL || n == 0 || timeout_ms < -1)
		return fail(EINVAL);
	for (size_t k = 0; k < n; k++) {
		if (!name_ok(v[k].name) || (v[k].data == NULL && v[k].len > 0))
			return fail(EINVAL);
		if (v[k].len > MBX_MAX_MSG_LIMIT)
			return fail(EMSGSIZE);
	}
	/* Whatever credit covers goes without a round trip. */
	if (c->use_credit && conn_drain(c) == -1)
		return -1;
	for (; i < n && c->use_credit; i++) {
		struct credit *cr = credits_cover(&c->credits, v[i].name,
		    v[i].len);

		if (cr == NULL || send_post(c, cr, v[i].data, v[i].len) == -1)
			break;
	}
	if (i == n || (i > 0 && c->broken))
		return (ssize_t)i;
	done = sendv_call(c, v + i, n - i);
	if (done > 0)
		return (ssize_t)i + done;
	if (i > 0)
		return (ssize_t)i;
	/* Nothing could go without waiting: wait for the first alone. */
	if (errno != EAGAIN || timeout_ms == 0)
		return -1;
	if (mbx_send(c, v[0].name, v[0].data, v[0].len, 0, timeout_ms) == -1)
		return -1;
	return 1;
}

