/*
 * conn.c - the transport and request plumbing of a libmbx handle (see
 * conn.h and mbx.c's invariants): bytes and descriptors in and out,
 * frames decoded with proto/, requests built and answers awaited.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "order.h"

/*
 * Transport: bytes and frames, no protocol knowledge.
 */

/* Marks the handle broken (see "Invariants") and fails with err. */
int
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
int
conn_write_fd(struct mbx *c, struct iovec *iov, size_t iovcnt, int fd)
{
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = iovcnt };
	union proto_fd_control cbuf;
	ssize_t n;

	/* The descriptor rides with the first byte of the frame. */
	if (fd >= 0)
		proto_attach_fd(&msg, &cbuf, fd);
	if (c->broken) {
		errno = ECONNRESET;
		return -1;
	}
	order_before_write(c->fd);
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
	order_written(c->fd);
	return 0;
}

int
conn_write(struct mbx *c, struct iovec *iov, size_t iovcnt)
{
	return conn_write_fd(c, iov, iovcnt, -1);
}

void
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
	struct iovec iov = { c->rbuf + c->rpos + c->rlen,
	    c->rcap - c->rpos - c->rlen };
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

/* The unconsumed bytes (no buffer yet: NULL, with rlen 0). */
static const uint8_t *
conn_unread(const struct mbx *c)
{
	return c->rbuf != NULL ? c->rbuf + c->rpos : NULL;
}

/*
 * Makes the read buffer hold at least need bytes from the start of the
 * unconsumed ones, moving those to the front only when the room after
 * them is short: consuming a frame is then just an offset.
 */
static int
conn_reserve(struct mbx *c, size_t need)
{
	uint8_t *p;

	if (need < RBUF_MIN)
		need = RBUF_MIN;
	if (c->rpos + need <= c->rcap)
		return 0;
	if (c->rpos > 0) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen);
		c->rpos = 0;
	}
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
	c->rpos = c->rlen > 0 ? c->rpos + c->rdone : 0;
	c->rdone = 0;
	if (c->rcap > RBUF_KEEP && c->rlen <= RBUF_MIN) {
		memmove(c->rbuf, c->rbuf + c->rpos, c->rlen);
		c->rpos = 0;
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
int
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
		d = proto_header_decode(conn_unread(c), c->rlen,
		    PROTO_MAX_BODY, &a->h);
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
	proto_reader_init(&a->r, c->rbuf + c->rpos + PROTO_HEADER_SIZE,
	    a->h.len);
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
void
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

void
req_put_name(struct mbx *c, const char *name)
{
	proto_put_str(&c->out, name, strlen(name));
}

/*
 * Fills in the header of the request in c->out, whose body goes on for
 * extra bytes that are not in c->out (a payload sent straight from the
 * caller's buffer).  Returns the request id, or 0 with errno ENOMEM.
 */
uint32_t
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

uint32_t
req_end(struct mbx *c, uint16_t type, uint32_t flags, size_t extra)
{
	return req_end_nfds(c, type, flags, extra, 0);
}

/* Writes the request in c->out, then the extra bytes. */
int
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
	if (what != PROTO_REVOKE_CREDIT)
		inbox_drop_mailbox(&c->inbox, name.ptr, name.len);
	if (what != PROTO_REVOKE_BINDING)
		credits_drop(&c->credits, mailbox_id);
	return 0;
}

/* Reads frames until the answer to id, applying REVOKEs on the way. */
int
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
		order_answered(c->fd);
		c->own_answers++;
		return 0;
	}
}

/*
 * Applies the REVOKEs that arrived since the last call, without waiting:
 * between calls nothing else can come.
 */
int
conn_drain(struct mbx *c)
{
	unsigned seen = order_answers();
	struct answer a;
	ssize_t n;

	for (;;) {
		struct proto_header h;

		conn_drop(c);
		if (proto_header_decode(conn_unread(c), c->rlen,
		    PROTO_MAX_BODY, &h) ==
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
		n = recv(c->fd, c->rbuf + c->rpos + c->rlen,
		    c->rcap - c->rpos - c->rlen,
		    MSG_DONTWAIT);
		if (n > 0) {
			c->rlen += (size_t)n;
			continue;
		}
		if (n == 0)
			return conn_break(c, ECONNRESET);
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			c->notices_seen = seen;
			c->own_answers = 0;
			return 0;
		}
		if (errno != EINTR)
			return conn_break(c, ECONNRESET);
	}
}

/*
 * Applies the notices that may wait unread before a send on credit: only
 * when some other handle of the process read an answer since this one
 * last read all it was sent.  A handle alone (the common case) never pays
 * a system call to look.
 */
int
conn_drain_if_due(struct mbx *c)
{
	if (order_answers() - c->notices_seen == c->own_answers)
		return 0;
	return conn_drain(c);
}

/* Sends the request built in c->out (plus extra) and waits for its
 * answer. */
int
call(struct mbx *c, uint32_t id, const void *extra, size_t extralen,
    struct answer *a)
{
	unsigned seen = order_answers(), own = c->own_answers;

	if (req_send(c, extra, extralen) == -1 ||
	    answer_wait(c, id, a) == -1)
		return -1;
	/*
	 * Whatever the process had seen before the request, the daemon had
	 * done before answering it: its notices came before the answer.
	 */
	c->notices_seen = seen;
	c->own_answers -= own;
	return 0;
}

/* Reads the status that starts a REPLY; -1 (handle broken) when a is
 * no REPLY. */
int
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
int
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
int
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
int
name_request(struct mbx *c, uint16_t type, uint32_t flags, const char *name)
{
	uint32_t id;

	req_begin(c);
	req_put_name(c, name);
	if ((id = req_end(c, type, flags, 0)) == 0)
		return -1;
	return call_status(c, id, NULL, 0);
}


/* Writes the pending acknowledgements now, alone. */
int
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
