/*
 * conn.c - socket transport: framed reads, queued writes, backpressure.
 *
 * Reads use recvmsg() so that passed descriptors are seen: protocol
 * version 1 has no frame type that carries one, so any descriptor that
 * arrives is closed at once and the connection dropped (a descriptor
 * left unread would leak into the daemon, as in CVE-2020-12049).  That is
 * also why this is plain struct event and not a bufferevent, which would
 * silently drop them.
 *
 * Backpressure: when a client's unwritten output passes CONN_OUT_HIGH,
 * the conn stops reading its requests until the output drains below
 * CONN_OUT_LOW, so a client that does not read its replies costs bounded
 * memory and never slows anyone else.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "conn.h"
#include "log.h"

#define CONN_READ_SIZE	(64u * 1024)
#define CONN_OUT_HIGH	(4u * 1024 * 1024)
#define CONN_OUT_LOW	(1u * 1024 * 1024)

struct conn {
	int		 fd;
	struct event	*rev;
	struct event	*wev;
	struct event	*reap;
	const struct conn_ops *ops;
	void		*ctx;
	uint32_t	 max_body;

	uint8_t		*in;		/* allocated only while data waits */
	size_t		 in_len;
	size_t		 in_cap;

	struct proto_writer out;
	size_t		 out_off;	/* bytes of out already written */

	bool		 write_soon;
	bool		 reading_paused;
	bool		 close_after_flush;
	bool		 dead;
};

static void conn_read_cb(evutil_socket_t, short, void *);
static void conn_write_cb(evutil_socket_t, short, void *);
static void conn_reap_cb(evutil_socket_t, short, void *);
static void conn_parse(struct conn *);

struct conn *
conn_new(struct event_base *base, int fd, uint32_t max_body,
    const struct conn_ops *ops, void *ctx)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		close(fd);
		return NULL;
	}
	c->fd = fd;
	c->ops = ops;
	c->ctx = ctx;
	c->max_body = max_body;
	proto_writer_init(&c->out);
	c->rev = event_new(base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
	c->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, conn_write_cb, c);
	c->reap = event_new(base, -1, 0, conn_reap_cb, c);
	if (c->rev == NULL || c->wev == NULL || c->reap == NULL ||
	    event_add(c->rev, NULL) < 0) {
		conn_free(c);
		return NULL;
	}
	return c;
}

void
conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	if (c->rev != NULL)
		event_free(c->rev);
	if (c->wev != NULL)
		event_free(c->wev);
	if (c->reap != NULL)
		event_free(c->reap);
	close(c->fd);
	free(c->in);
	proto_writer_free(&c->out);
	free(c);
}

struct proto_writer *
conn_out(struct conn *c)
{
	return &c->out;
}

bool
conn_dead(const struct conn *c)
{
	return c->dead;
}

void
conn_kill(struct conn *c, const char *why)
{
	if (c->dead)
		return;
	if (why != NULL)
		log_info("connection closed: %s", why);
	c->dead = true;
	event_del(c->rev);
	event_del(c->wev);
	event_active(c->reap, EV_TIMEOUT, 1);
}

static void
conn_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	c->ops->closed(c->ctx);
}

void
conn_flush_soon(struct conn *c)
{
	if (c->dead || c->write_soon)
		return;
	if (proto_writer_failed(&c->out)) {
		conn_kill(c, "out of memory for output");
		return;
	}
	c->write_soon = true;
	event_active(c->wev, EV_WRITE, 1);
}

void
conn_close_after_flush(struct conn *c)
{
	c->close_after_flush = true;
	conn_flush_soon(c);
}

static void
conn_pause_reading(struct conn *c, bool pause)
{
	if (c->dead || c->reading_paused == pause)
		return;
	c->reading_paused = pause;
	if (pause) {
		event_del(c->rev);
		return;
	}
	event_add(c->rev, NULL);
	/* Frames that arrived before the pause will not trigger a read. */
	if (c->in_len > 0)
		conn_parse(c);
}

/* Writes what the socket takes; -1 when the connection failed. */
static int
conn_write_some(struct conn *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.buf + c->out_off,
		    c->out.len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0)
			return -1;
		c->out_off += (size_t)n;
	}
	c->out.len = 0;
	c->out_off = 0;
	return 0;
}

void
conn_flush_now(struct conn *c)
{
	if (!c->dead)
		(void)conn_write_some(c);
}

static void
conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	size_t left;

	c->write_soon = false;
	if (c->dead)
		return;
	if (conn_write_some(c) < 0) {
		conn_kill(c, strerror(errno));
		return;
	}
	left = c->out.len - c->out_off;
	if (left == 0) {
		event_del(c->wev);
		if (c->close_after_flush) {
			conn_kill(c, NULL);
			return;
		}
	} else {
		/* Wait for room; drop what was written so the buffer stays small. */
		proto_writer_consume(&c->out, c->out_off);
		c->out_off = 0;
		event_add(c->wev, NULL);
	}
	if (left < CONN_OUT_LOW)
		conn_pause_reading(c, false);
}

/* Any descriptor in the control data is closed; returns how many came. */
static int
conn_close_passed_fds(struct msghdr *mh)
{
	struct cmsghdr *cm;
	int count = 0;

	for (cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *fds = (int *)CMSG_DATA(cm);

		for (size_t i = 0; i < n; i++) {
			close(fds[i]);
			count++;
		}
	}
	return count;
}

/* Makes room for at least want more bytes in the input buffer. */
static int
conn_reserve(struct conn *c, size_t want)
{
	size_t cap = c->in_cap ? c->in_cap : CONN_READ_SIZE;
	uint8_t *in;

	while (cap - c->in_len < want)
		cap *= 2;
	if (cap == c->in_cap)
		return 0;
	in = realloc(c->in, cap);
	if (in == NULL)
		return -1;
	c->in = in;
	c->in_cap = cap;
	return 0;
}

/* Hands every complete frame to the owner; drops what was consumed. */
static void
conn_parse(struct conn *c)
{
	size_t off = 0;

	while (!c->dead && !c->reading_paused) {
		struct proto_header h;
		enum proto_decode d = proto_header_decode(c->in + off,
		    c->in_len - off, c->max_body, &h);

		if (d == PROTO_DECODE_MALFORMED) {
			conn_kill(c, "malformed frame header");
			return;
		}
		if (d == PROTO_DECODE_MORE ||
		    c->in_len - off < PROTO_HEADER_SIZE + (size_t)h.len)
			break;
		if (c->ops->frame(c->ctx, &h, c->in + off + PROTO_HEADER_SIZE) < 0) {
			conn_kill(c, "malformed request");
			return;
		}
		off += PROTO_HEADER_SIZE + h.len;
		if (c->out.len - c->out_off > CONN_OUT_HIGH)
			conn_pause_reading(c, true);
	}
	if (off > 0) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	if (c->in_len == 0) {
		/* Idle connections hold no input buffer. */
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
}

/* A partial frame longer than the buffer: grow once to its full size. */
static void
conn_reserve_frame(struct conn *c)
{
	struct proto_header h;
	size_t total;

	if (c->dead || c->in_len < PROTO_HEADER_SIZE ||
	    proto_header_decode(c->in, c->in_len, c->max_body, &h) !=
	    PROTO_DECODE_OK)
		return;
	total = PROTO_HEADER_SIZE + (size_t)h.len;
	if (total > c->in_len && conn_reserve(c, total - c->in_len) < 0)
		conn_kill(c, "out of memory for input");
}

static void
conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * PROTO_MAX_FDS)];
	} cbuf;
	struct iovec iov;
	struct msghdr mh;
	ssize_t n;

	if (conn_reserve(c, CONN_READ_SIZE / 4) < 0) {
		conn_kill(c, "out of memory for input");
		return;
	}
	iov.iov_base = c->in + c->in_len;
	iov.iov_len = c->in_cap - c->in_len;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = sizeof(cbuf.buf);
	n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		conn_kill(c, n == 0 ? NULL : strerror(errno));
		return;
	}
	/* Descriptors are not part of protocol version 1; nor is truncation. */
	if (conn_close_passed_fds(&mh) > 0 || (mh.msg_flags & MSG_CTRUNC)) {
		conn_kill(c, "unexpected file descriptor");
		return;
	}
	c->in_len += (size_t)n;
	conn_parse(c);
	conn_reserve_frame(c);
}
