/*
 * net.c - the transport of a libmbx handle (see net.h): the socket,
 * bytes and descriptors in and out, and the read buffer that
 * proto/framer.c cuts frames from.  What the frames mean is the
 * session's (session.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "net.h"

void
net_init(struct net *n)
{
	memset(n, 0, sizeof(*n));
	n->fd = -1;
	/* One frame's descriptors at most wait unbound: a client is sent
	 * one descriptor per frame, and only with a zero-copy MSG. */
	framer_init(&n->framer, PROTO_MAX_BODY, PROTO_MAX_FDS);
}

void
net_deinit(struct net *n)
{
	if (n->fd != -1)
		(void)close(n->fd);
	n->fd = -1;
	framer_deinit(&n->framer);
	free(n->rbuf);
	n->rbuf = NULL;
}

int
net_connect(struct net *n, const char *path)
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
	n->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (n->fd == -1)
		return -1;
	/* An AF_UNIX connect interrupted by a signal has queued nothing
	 * (Linux), so it is simply tried again. */
	while (connect(n->fd, (struct sockaddr *)&addr, sizeof(addr)) == -1) {
		if (errno == EISCONN)
			break;
		if (errno != EINTR)
			return -1;
	}
	/* The core is non-blocking: every wait is an explicit poll(). */
	flags = fcntl(n->fd, F_GETFL);
	if (flags == -1 || fcntl(n->fd, F_SETFL, flags | O_NONBLOCK) == -1)
		return -1;
	return 0;
}

/* Marks the transport broken (see "Invariants" in mbx-int.h) and fails
 * with err. */
int
net_break(struct net *n, int err)
{
	n->broken = true;
	/* Shut down, not close: the descriptor number stays the caller's. */
	(void)shutdown(n->fd, SHUT_RDWR);
	errno = err;
	return -1;
}

/* Waits, without deadline, until the socket is ready for events. */
static int
net_wait(struct net *n, short events)
{
	struct pollfd pfd = { .fd = n->fd, .events = events };

	while (poll(&pfd, 1, -1) == -1) {
		/* A signal interrupts nothing: the daemon answers anyway. */
		if (errno != EINTR)
			return net_break(n, errno);
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
net_write(struct net *n, struct iovec *iov, size_t iovcnt, int fd)
{
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = iovcnt };
	union proto_fd_control cbuf;
	ssize_t sent;

	/* The descriptor rides with the first byte of the frame. */
	if (fd >= 0)
		proto_attach_fd(&msg, &cbuf, fd);
	if (n->broken) {
		errno = ECONNRESET;
		return -1;
	}
	iov_advance(&msg, 0);
	while (msg.msg_iovlen > 0) {
		/* MSG_NOSIGNAL: a vanished daemon is ECONNRESET, not
		 * SIGPIPE. */
		sent = sendmsg(n->fd, &msg, MSG_NOSIGNAL);
		if (sent >= 0) {
			iov_advance(&msg, (size_t)sent);
			if (sent > 0) {
				msg.msg_control = NULL;
				msg.msg_controllen = 0;
			}
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return net_break(n, ECONNRESET);
		if (net_wait(n, POLLOUT) == -1)
			return -1;
	}
	return 0;
}

void
net_close_in_fds(struct net *n)
{
	framer_close_fds(&n->framer);
}

/* Reads once into the free part of the read buffer, waiting if need be. */
static int
net_fill(struct net *n)
{
	union framer_control cbuf;
	struct iovec iov = { n->rbuf + n->rpos + n->rlen,
	    n->rcap - n->rpos - n->rlen };
	struct msghdr msg;
	ssize_t got;

	for (;;) {
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = sizeof(cbuf.buf);
		/* MSG_CMSG_CLOEXEC: no window in which a fork could inherit
		 * a descriptor before net_close_in_fds() closes it. */
		got = recvmsg(n->fd, &msg, MSG_CMSG_CLOEXEC);
		if (got > 0)
			break;
		if (got == 0)
			return net_break(n, ECONNRESET);
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return net_break(n, ECONNRESET);
		if (net_wait(n, POLLIN) == -1)
			return -1;
	}
	/*
	 * More descriptors than any frame may claim, or MSG_CTRUNC (some
	 * were lost in the kernel): the stream cannot be trusted, and none
	 * of them may leak into the caller's process.
	 */
	if (framer_take_fds(&n->framer, &msg) != FRAMER_FRAME) {
		framer_close_fds(&n->framer);
		return net_break(n, EPROTO);
	}
	n->rlen += (size_t)got;
	return 0;
}

/* The unconsumed bytes (no buffer yet: NULL, with rlen 0). */
static const uint8_t *
net_unread(const struct net *n)
{
	return n->rbuf != NULL ? n->rbuf + n->rpos : NULL;
}

/*
 * Makes the read buffer hold at least need bytes from the start of the
 * unconsumed ones, moving those to the front only when the room after
 * them is short: consuming a frame is then just an offset.
 */
static int
net_reserve(struct net *n, size_t need)
{
	uint8_t *p;

	if (need < NET_RBUF_MIN)
		need = NET_RBUF_MIN;
	if (n->rpos + need <= n->rcap)
		return 0;
	if (n->rpos > 0) {
		memmove(n->rbuf, n->rbuf + n->rpos, n->rlen);
		n->rpos = 0;
	}
	if (n->rcap >= need)
		return 0;
	p = realloc(n->rbuf, need);
	if (p == NULL)
		return -1;
	n->rbuf = p;
	n->rcap = need;
	return 0;
}

/* Forgets the frame handed out last, and a big buffer it needed. */
static void
net_drop(struct net *n)
{
	uint8_t *p;

	if (n->rdone == 0)
		return;
	n->rlen -= n->rdone;
	n->rpos = n->rlen > 0 ? n->rpos + n->rdone : 0;
	n->rdone = 0;
	if (n->rcap > NET_RBUF_KEEP && n->rlen <= NET_RBUF_MIN) {
		memmove(n->rbuf, n->rbuf + n->rpos, n->rlen);
		n->rpos = 0;
		p = realloc(n->rbuf, NET_RBUF_MIN);
		if (p != NULL) {
			n->rbuf = p;
			n->rcap = NET_RBUF_MIN;
		}
	}
}

/*
 * Hands out the frame f peeked at the front of the unconsumed bytes,
 * binding to it the descriptors its header declares.  Descriptors come
 * with the first byte of the frames that declare them: a frame declaring
 * more than have come is a violation, and so are descriptors left over
 * once no byte is left to start a frame that could claim them.  Either
 * way whatever did come is closed.
 */
static int
net_take_frame(struct net *n, struct framer_frame *f)
{
	if (framer_bind(&n->framer, f) != FRAMER_FRAME) {
		framer_close_fds(&n->framer);
		return net_break(n, EPROTO);
	}
	if (framer_stray_fds(&n->framer, n->rlen - f->size)) {
		for (size_t i = 0; i < f->h.nfds; i++)
			(void)close(f->fds[i]);
		framer_close_fds(&n->framer);
		return net_break(n, EPROTO);
	}
	n->rdone = f->size;
	return 0;
}

/*
 * Reads the next whole frame from the daemon.  The header's length is
 * checked (by framer_peek()) before the buffer grows for the body.
 */
int
net_read_frame(struct net *n, struct framer_frame *f)
{
	if (n->broken) {
		errno = ECONNRESET;
		return -1;
	}
	net_drop(n);
	for (;;) {
		switch (framer_peek(&n->framer, net_unread(n), n->rlen, f)) {
		case FRAMER_FRAME:
			return net_take_frame(n, f);
		case FRAMER_MORE:
			break;
		case FRAMER_MALFORMED:
		default:
			framer_close_fds(&n->framer);
			return net_break(n, EPROTO);
		}
		/* Without room for the frame (its header first), the stream
		 * cannot be kept in step: give the connection up. */
		if (net_reserve(n, f->size > 0 ? f->size : PROTO_HEADER_SIZE) ==
		    -1)
			return net_break(n, ENOMEM);
		if (net_fill(n) == -1)
			return -1;
	}
}

/*
 * What has arrived is read without waiting and without recvmsg(): no
 * frame that may come between two calls carries a descriptor (see
 * session_drain()), and one that does finds none bound and breaks the
 * handle.  A malformed header is left for the next net_read_frame() to
 * report.
 */
int
net_poll_frame(struct net *n, struct framer_frame *f)
{
	ssize_t got;

	for (;;) {
		net_drop(n);
		if (framer_peek(&n->framer, net_unread(n), n->rlen, f) ==
		    FRAMER_FRAME)
			return net_read_frame(n, f) == -1 ? -1 : 1;
		if (net_reserve(n, n->rlen + 256) == -1)
			return net_break(n, ENOMEM);
		got = recv(n->fd, n->rbuf + n->rpos + n->rlen,
		    n->rcap - n->rpos - n->rlen, MSG_DONTWAIT);
		if (got > 0) {
			n->rlen += (size_t)got;
			continue;
		}
		if (got == 0)
			return net_break(n, ECONNRESET);
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno != EINTR)
			return net_break(n, ECONNRESET);
	}
}
