/*
 * baseline.c - the paths mbx competes with, run through the same roles
 * and clock as mbx itself (run.c):
 *
 *   direct    a Unix stream socket per sender, one write() of one frame
 *             per message; the receiver reads one frame per read()
 *   direct-b  the same socket, 64 frames per writev(); the receiver reads
 *             up to 1 MiB at a time and parses the frames it holds
 *   relay     a one-process relay in the middle (poll() loop) that reads
 *             what a socket has and forwards every complete frame it
 *             holds in one write(); sender and receiver as for direct
 *   relay-b   the same relay; sender and receiver as for direct-b
 *   mq        a POSIX message queue, mq_send()/mq_receive() per message
 *
 * A frame is a little-endian u32 header and the payload; the header's top
 * bit marks the sender's last frame (every frame of a run has the same
 * size, so a reader that asks for exactly one frame never reads into the
 * next).  A receiver copies every payload into its own buffer, as
 * mbx_recv() does.  POSIX queues have no header: their last message is
 * one byte short.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bench.h"

#define FRAME_HDR	4u
#define FRAME_LAST	0x80000000u
#define READ_CHUNK	MIB		/* what the buffered readers read */
#define MQ_DEPTH	64		/* queue depth we ask for */
#define MQ_DEPTH_MIN	10		/* what an unprivileged user gets */

/* The transport of one run, built before the fork. */
struct base {
	int	 send_fd[FANIN_SENDERS];	/* sender i writes here */
	int	 recv_fd[FANIN_SENDERS];	/* the receiver reads these */
	unsigned nrecv;
	int	 left[FANIN_SENDERS];		/* relay: senders' far ends */
	int	 right;				/* relay: receiver's far end */
	unsigned nleft;
	mqd_t	 mq, mq_reply;
	char	 mq_name[64], mq_reply_name[64];
};

static void
put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t
get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/* writev() until everything is out; iov is consumed. */
static int
writev_all(int fd, struct iovec *iov, int cnt)
{
	while (cnt > 0) {
		ssize_t n = writev(fd, iov, cnt > IOV_MAX ? IOV_MAX : cnt);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/*
 * Reads one whole frame of at most size payload bytes into buf (room for
 * FRAME_HDR + size), in one read() when the socket holds it.  Returns the
 * payload length and *last, or -1.
 */
static ssize_t
read_frame(int fd, uint8_t *buf, size_t size, bool *last)
{
	size_t got = 0, want = FRAME_HDR + size;
	uint32_t h = 0;

	while (got < want) {
		ssize_t n = read(fd, buf + got, want - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
		if (got >= FRAME_HDR) {
			h = get_le32(buf);
			if ((h & ~FRAME_LAST) > size)
				return -1;
			want = FRAME_HDR + (h & ~FRAME_LAST);
		}
	}
	*last = (h & FRAME_LAST) != 0;
	return (ssize_t)(h & ~FRAME_LAST);
}

/*
 * The buffered reader of the batched receivers: reads up to READ_CHUNK at
 * a time and hands out the frames it holds; the tail of a frame larger
 * than what is buffered is read straight into the caller's buffer.
 */
struct reader {
	int	 fd;
	uint8_t	*buf;
	size_t	 cap, off, have;
};

static int
reader_init(struct reader *r, int fd)
{
	r->fd = fd;
	r->cap = READ_CHUNK;
	r->off = r->have = 0;
	r->buf = malloc(r->cap);
	return r->buf != NULL ? 0 : -1;
}

/* One read(), after moving what is left to the front. */
static int
reader_fill(struct reader *r)
{
	return fdio_fill(r->fd, r->buf, r->cap, &r->off, &r->have);
}

/* A frame wholly buffered, copied to dest: its length, or -2 if none. */
static ssize_t
reader_take(struct reader *r, uint8_t *dest, size_t cap, bool *last)
{
	uint32_t h, len;

	if (r->have - r->off < FRAME_HDR)
		return -2;
	h = get_le32(r->buf + r->off);
	len = h & ~FRAME_LAST;
	if (len > cap)
		return -1;
	if (r->have - r->off - FRAME_HDR < len)
		return -2;
	memcpy(dest, r->buf + r->off + FRAME_HDR, len);
	r->off += FRAME_HDR + len;
	*last = (h & FRAME_LAST) != 0;
	return len;
}

/* The next frame into dest, reading as needed. */
static ssize_t
reader_next(struct reader *r, uint8_t *dest, size_t cap, bool *last)
{
	for (;;) {
		ssize_t len = reader_take(r, dest, cap, last);
		size_t avail;
		uint32_t h;

		if (len != -2)
			return len;
		if (r->have - r->off >= FRAME_HDR) {
			h = get_le32(r->buf + r->off);
			avail = r->have - r->off - FRAME_HDR;
			/* Larger than the buffer, or mostly still to
			 * come: the rest goes straight to the caller. */
			if ((h & ~FRAME_LAST) <= cap &&
			    (FRAME_HDR + (h & ~FRAME_LAST) > r->cap ||
			    (h & ~FRAME_LAST) - avail > r->cap / 2)) {
				memcpy(dest, r->buf + r->off + FRAME_HDR,
				    avail);
				r->off = r->have = 0;
				if (fdio_read_full(r->fd, dest + avail,
				    (h & ~FRAME_LAST) - avail) < 0)
					return -1;
				*last = (h & FRAME_LAST) != 0;
				return h & ~FRAME_LAST;
			}
		}
		if (reader_fill(r) < 0)
			return -1;
	}
}

/* A frame of FRAME_HDR + size bytes, payload filled. */
static uint8_t *
frame_new(size_t size)
{
	uint8_t *f = malloc(FRAME_HDR + size);

	if (f != NULL) {
		memset(f + FRAME_HDR, 0x5a, size);
		put_le32(f, (uint32_t)size);
	}
	return f;
}

/* Sender: one write() per message. */
static int
sock_send_each(struct runctx *ctx, const struct spec *s, unsigned idx,
    void *arg)
{
	struct base *b = arg;
	int fd = b->send_fd[idx];
	uint8_t *f = frame_new(s->size);

	if (f == NULL)
		return run_fail(ctx, "out of memory");
	run_ready(ctx);
	while (!run_stopped(ctx))
		if (fdio_write_all(fd, f, FRAME_HDR + s->size) < 0)
			return run_fail(ctx, "write: %s", strerror(errno));
	put_le32(f, (uint32_t)s->size | FRAME_LAST);
	if (fdio_write_all(fd, f, FRAME_HDR + s->size) < 0)
		return run_fail(ctx, "write: %s", strerror(errno));
	return 0;
}

/* Sender: s->batch frames per writev(), header and payload iovecs. */
static int
sock_send_batch(struct runctx *ctx, const struct spec *s, unsigned idx,
    void *arg)
{
	struct base *b = arg;
	int fd = b->send_fd[idx];
	struct iovec tmpl[2 * BATCH_MAX], iov[2 * BATCH_MAX];
	uint8_t hdr[FRAME_HDR], last[FRAME_HDR];
	uint8_t *payload = malloc(s->size);
	int n = 2 * (int)s->batch;

	if (payload == NULL)
		return run_fail(ctx, "out of memory");
	memset(payload, 0x5a, s->size);
	put_le32(hdr, (uint32_t)s->size);
	put_le32(last, (uint32_t)s->size | FRAME_LAST);
	for (unsigned i = 0; i < s->batch; i++) {
		tmpl[2 * i].iov_base = hdr;
		tmpl[2 * i].iov_len = FRAME_HDR;
		tmpl[2 * i + 1].iov_base = payload;
		tmpl[2 * i + 1].iov_len = s->size;
	}
	run_ready(ctx);
	while (!run_stopped(ctx)) {
		memcpy(iov, tmpl, (size_t)n * sizeof(iov[0]));
		if (writev_all(fd, iov, n) < 0)
			return run_fail(ctx, "writev: %s", strerror(errno));
	}
	iov[0].iov_base = last;
	iov[0].iov_len = FRAME_HDR;
	iov[1] = tmpl[1];
	if (writev_all(fd, iov, 2) < 0)
		return run_fail(ctx, "writev: %s", strerror(errno));
	return 0;
}

/* Receiver: one frame per read(); polls when there are several sockets. */
static int
sock_recv_each(struct runctx *ctx, const struct spec *s, unsigned idx,
    void *arg)
{
	struct base *b = arg;
	struct pollfd pfd[FANIN_SENDERS];
	uint8_t *buf = malloc(FRAME_HDR + s->size);
	uint64_t msgs = 0, bytes = 0;
	unsigned lasts = 0;
	bool last;
	ssize_t len;

	(void)idx;
	if (buf == NULL)
		return run_fail(ctx, "out of memory");
	for (unsigned i = 0; i < b->nrecv; i++)
		pfd[i] = (struct pollfd){ b->recv_fd[i], POLLIN, 0 };
	run_ready(ctx);
	while (lasts < s->senders) {
		if (b->nrecv == 1) {
			if ((len = read_frame(pfd[0].fd, buf, s->size,
			    &last)) < 0)
				return run_fail(ctx, "read: bad frame or EOF");
			msgs++;
			bytes += (uint64_t)len;
			lasts += last;
			run_tick(ctx, msgs, bytes);
			continue;
		}
		if (poll(pfd, b->nrecv, -1) < 0 && errno != EINTR)
			return run_fail(ctx, "poll: %s", strerror(errno));
		for (unsigned i = 0; i < b->nrecv; i++) {
			if (pfd[i].revents == 0)
				continue;
			if ((len = read_frame(pfd[i].fd, buf, s->size,
			    &last)) < 0)
				return run_fail(ctx, "read: bad frame or EOF");
			msgs++;
			bytes += (uint64_t)len;
			if (last) {
				lasts++;
				pfd[i].fd = -1;
			}
		}
		run_tick(ctx, msgs, bytes);
	}
	run_report(ctx, msgs, bytes);
	return 0;
}

/* Receiver: 1 MiB reads, every buffered frame parsed. */
static int
sock_recv_batch(struct runctx *ctx, const struct spec *s, unsigned idx,
    void *arg)
{
	struct base *b = arg;
	struct reader rd[FANIN_SENDERS];
	struct pollfd pfd[FANIN_SENDERS];
	uint8_t *dest = malloc(s->size);
	uint64_t msgs = 0, bytes = 0;
	unsigned lasts = 0;
	bool last;
	ssize_t len;

	(void)idx;
	if (dest == NULL)
		return run_fail(ctx, "out of memory");
	for (unsigned i = 0; i < b->nrecv; i++) {
		if (reader_init(&rd[i], b->recv_fd[i]) < 0)
			return run_fail(ctx, "out of memory");
		pfd[i] = (struct pollfd){ b->recv_fd[i], POLLIN, 0 };
	}
	run_ready(ctx);
	while (lasts < s->senders) {
		if (b->nrecv == 1) {
			if ((len = reader_next(&rd[0], dest, s->size,
			    &last)) < 0)
				return run_fail(ctx, "read: bad frame or EOF");
			msgs++;
			bytes += (uint64_t)len;
			lasts += last;
			run_tick(ctx, msgs, bytes);
			continue;
		}
		if (poll(pfd, b->nrecv, -1) < 0 && errno != EINTR)
			return run_fail(ctx, "poll: %s", strerror(errno));
		for (unsigned i = 0; i < b->nrecv; i++) {
			if (pfd[i].revents == 0)
				continue;
			if (reader_fill(&rd[i]) < 0)
				return run_fail(ctx, "read: EOF");
			while ((len = reader_take(&rd[i], dest, s->size,
			    &last)) >= 0) {
				msgs++;
				bytes += (uint64_t)len;
				if (last) {
					lasts++;
					pfd[i].fd = -1;
				}
			}
			if (len == -1)
				return run_fail(ctx, "read: bad frame");
		}
		run_tick(ctx, msgs, bytes);
	}
	run_report(ctx, msgs, bytes);
	return 0;
}

/*
 * The relay: what arrives on a sender's socket goes to the receiver's,
 * what arrives on the receiver's goes to the first sender's (ping-pong).
 * Each read() is followed by one write() of every complete frame held.
 * It never ends by itself: the run kills it.
 */
struct relay_buf {
	uint8_t	*buf;
	size_t	 cap, have;
};

static int
relay(struct runctx *ctx, const struct spec *s, unsigned idx, void *arg)
{
	struct base *b = arg;
	struct pollfd pfd[FANIN_SENDERS + 1];
	struct relay_buf rb[FANIN_SENDERS + 1];
	unsigned n = b->nleft + 1;

	(void)s;
	(void)idx;
	for (unsigned i = 0; i < n; i++) {
		pfd[i].fd = i < b->nleft ? b->left[i] : b->right;
		pfd[i].events = POLLIN;
		rb[i].cap = READ_CHUNK;
		rb[i].have = 0;
		if ((rb[i].buf = malloc(rb[i].cap)) == NULL)
			return run_fail(ctx, "out of memory");
	}
	run_ready(ctx);
	for (;;) {
		if (poll(pfd, n, -1) < 0 && errno != EINTR)
			return run_fail(ctx, "relay poll: %s", strerror(errno));
		for (unsigned i = 0; i < n; i++) {
			struct relay_buf *r = &rb[i];
			int dest = i < b->nleft ? b->right : b->left[0];
			size_t off = 0;
			ssize_t k;

			if (pfd[i].revents == 0)
				continue;
			k = read(pfd[i].fd, r->buf + r->have, r->cap - r->have);
			if (k <= 0) {
				pfd[i].fd = -1;
				continue;
			}
			r->have += (size_t)k;
			while (r->have - off >= FRAME_HDR) {
				size_t len = get_le32(r->buf + off) &
				    ~FRAME_LAST;

				if (r->have - off - FRAME_HDR < len) {
					/* Room for the whole frame, for the
					 * next reads. */
					if (FRAME_HDR + len > r->cap) {
						uint8_t *p = realloc(r->buf,
						    FRAME_HDR + len);

						if (p == NULL)
							return run_fail(ctx,
							    "out of memory");
						r->buf = p;
						r->cap = FRAME_HDR + len;
					}
					break;
				}
				off += FRAME_HDR + len;
			}
			if (off == 0)
				continue;
			if (fdio_write_all(dest, r->buf, off) < 0)
				return run_fail(ctx, "relay write: %s",
				    strerror(errno));
			memmove(r->buf, r->buf + off, r->have - off);
			r->have -= off;
		}
	}
}

/* Ping-pong over a socket (direct or through the relay): the client. */
static int
sock_ping(struct runctx *ctx, const struct spec *s, unsigned idx, void *arg)
{
	struct base *b = arg;
	int fd = b->send_fd[0];
	uint8_t *f = frame_new(s->size), *in = malloc(FRAME_HDR + s->size);
	uint64_t n = 0;
	int64_t t0;
	bool last;

	(void)idx;
	if (f == NULL || in == NULL)
		return run_fail(ctx, "out of memory");
	run_ready(ctx);
	while (!run_stopped(ctx)) {
		t0 = now_ns();
		if (fdio_write_all(fd, f, FRAME_HDR + s->size) < 0 ||
		    read_frame(fd, in, s->size, &last) < 0)
			return run_fail(ctx, "ping: %s", strerror(errno));
		if (run_timing(ctx))
			run_latency(ctx, (uint64_t)(now_ns() - t0));
		n++;
		run_tick(ctx, n, n * s->size);
	}
	run_report(ctx, n, n * s->size);
	put_le32(f, (uint32_t)s->size | FRAME_LAST);
	if (fdio_write_all(fd, f, FRAME_HDR + s->size) < 0)
		return run_fail(ctx, "ping: %s", strerror(errno));
	return 0;
}

/* Ping-pong over a socket: the server echoes until the last frame. */
static int
sock_pong(struct runctx *ctx, const struct spec *s, unsigned idx, void *arg)
{
	struct base *b = arg;
	int fd = b->recv_fd[0];
	uint8_t *f = malloc(FRAME_HDR + s->size);
	bool last = false;
	ssize_t len;

	(void)idx;
	if (f == NULL)
		return run_fail(ctx, "out of memory");
	run_ready(ctx);
	for (;;) {
		if ((len = read_frame(fd, f, s->size, &last)) < 0)
			return run_fail(ctx, "pong: bad frame or EOF");
		if (last)
			return 0;
		if (fdio_write_all(fd, f, FRAME_HDR + (size_t)len) < 0)
			return run_fail(ctx, "pong: %s", strerror(errno));
	}
}

static int
mq_send_each(struct runctx *ctx, const struct spec *s, unsigned idx,
    void *arg)
{
	struct base *b = arg;
	char *buf = malloc(s->size);

	(void)idx;
	if (buf == NULL)
		return run_fail(ctx, "out of memory");
	memset(buf, 0x5a, s->size);
	run_ready(ctx);
	while (!run_stopped(ctx))
		if (mq_send(b->mq, buf, s->size, 0) < 0 && errno != EINTR)
			return run_fail(ctx, "mq_send: %s", strerror(errno));
	while (mq_send(b->mq, buf, s->size - 1, 0) < 0)
		if (errno != EINTR)
			return run_fail(ctx, "mq_send: %s", strerror(errno));
	return 0;
}

static int
mq_recv_each(struct runctx *ctx, const struct spec *s, unsigned idx,
    void *arg)
{
	struct base *b = arg;
	char *buf = malloc(s->size);
	uint64_t msgs = 0, bytes = 0;
	unsigned lasts = 0;

	(void)idx;
	if (buf == NULL)
		return run_fail(ctx, "out of memory");
	run_ready(ctx);
	while (lasts < s->senders) {
		ssize_t n = mq_receive(b->mq, buf, s->size, NULL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return run_fail(ctx, "mq_receive: %s", strerror(errno));
		}
		msgs++;
		bytes += (uint64_t)n;
		lasts += (size_t)n < s->size;
		run_tick(ctx, msgs, bytes);
	}
	run_report(ctx, msgs, bytes);
	return 0;
}

static int
mq_ping(struct runctx *ctx, const struct spec *s, unsigned idx, void *arg)
{
	struct base *b = arg;
	char *buf = malloc(s->size);
	uint64_t n = 0;
	int64_t t0;

	(void)idx;
	if (buf == NULL)
		return run_fail(ctx, "out of memory");
	memset(buf, 0x5a, s->size);
	run_ready(ctx);
	while (!run_stopped(ctx)) {
		t0 = now_ns();
		if (mq_send(b->mq, buf, s->size, 0) < 0 ||
		    mq_receive(b->mq_reply, buf, s->size, NULL) < 0)
			return run_fail(ctx, "mq ping: %s", strerror(errno));
		if (run_timing(ctx))
			run_latency(ctx, (uint64_t)(now_ns() - t0));
		n++;
		run_tick(ctx, n, n * s->size);
	}
	run_report(ctx, n, n * s->size);
	if (mq_send(b->mq, buf, s->size - 1, 0) < 0)
		return run_fail(ctx, "mq ping: %s", strerror(errno));
	return 0;
}

static int
mq_pong(struct runctx *ctx, const struct spec *s, unsigned idx, void *arg)
{
	struct base *b = arg;
	char *buf = malloc(s->size);

	(void)idx;
	if (buf == NULL)
		return run_fail(ctx, "out of memory");
	run_ready(ctx);
	for (;;) {
		ssize_t n = mq_receive(b->mq, buf, s->size, NULL);

		if (n < 0)
			return run_fail(ctx, "mq pong: %s", strerror(errno));
		if ((size_t)n < s->size)
			return 0;
		if (mq_send(b->mq_reply, buf, (size_t)n, 0) < 0)
			return run_fail(ctx, "mq pong: %s", strerror(errno));
	}
}

/* A queue for messages of size bytes, as deep as we may make it. */
static mqd_t
mq_make(char *name, size_t len, const char *what, size_t size, long *depth,
    char *err, size_t errlen)
{
	static unsigned seq;
	struct mq_attr a = { .mq_maxmsg = MQ_DEPTH, .mq_msgsize = (long)size };
	mqd_t q;

	snprintf(name, len, "/mbx-bench.%ld.%s.%u", (long)getpid(), what,
	    seq++);
	q = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &a);
	if (q == (mqd_t)-1 && errno == EINVAL) {
		a.mq_maxmsg = MQ_DEPTH_MIN;
		q = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &a);
	}
	if (q == (mqd_t)-1)
		snprintf(err, errlen, "mq_open (%zu B messages): %s", size,
		    strerror(errno));
	*depth = a.mq_maxmsg;
	return q;
}

static void
base_close(struct base *b)
{
	for (unsigned i = 0; i < FANIN_SENDERS; i++) {
		if (b->send_fd[i] >= 0)
			close(b->send_fd[i]);
		if (b->recv_fd[i] >= 0)
			close(b->recv_fd[i]);
		if (b->left[i] >= 0)
			close(b->left[i]);
	}
	if (b->right >= 0)
		close(b->right);
	if (b->mq != (mqd_t)-1) {
		mq_close(b->mq);
		mq_unlink(b->mq_name);
	}
	if (b->mq_reply != (mqd_t)-1) {
		mq_close(b->mq_reply);
		mq_unlink(b->mq_reply_name);
	}
}

/* Sockets for the senders, straight or through the relay. */
static int
base_sockets(struct base *b, unsigned senders, bool relayed)
{
	int sp[2];

	for (unsigned i = 0; i < senders; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
			return -1;
		b->send_fd[i] = sp[0];
		if (relayed) {
			b->left[b->nleft++] = sp[1];
		} else {
			b->recv_fd[b->nrecv++] = sp[1];
		}
	}
	if (relayed) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
			return -1;
		b->right = sp[0];
		b->recv_fd[b->nrecv++] = sp[1];
	}
	return 0;
}

void
baseline_run(const struct spec *s, struct result *r)
{
	struct base b;
	struct job j = { .arg = &b };
	bool relayed = s->path == P_RELAY || s->path == P_RELAY_B;
	char err[160] = "";
	long depth = 0;

	memset(&b, 0, sizeof(b));
	for (unsigned i = 0; i < FANIN_SENDERS; i++)
		b.send_fd[i] = b.recv_fd[i] = b.left[i] = -1;
	b.right = -1;
	b.mq = b.mq_reply = (mqd_t)-1;

	if (s->path == P_MQ) {
		b.mq = mq_make(b.mq_name, sizeof(b.mq_name), "req", s->size,
		    &depth, err, sizeof(err));
		if (b.mq != (mqd_t)-1 && s->kind == K_PINGPONG)
			b.mq_reply = mq_make(b.mq_reply_name,
			    sizeof(b.mq_reply_name), "rep", s->size,
			    &depth, err, sizeof(err));
		if (b.mq == (mqd_t)-1 || (s->kind == K_PINGPONG &&
		    b.mq_reply == (mqd_t)-1))
			goto fail;
		j.sender = s->kind == K_PINGPONG ? mq_ping : mq_send_each;
		j.receiver = s->kind == K_PINGPONG ? mq_pong : mq_recv_each;
	} else {
		if (base_sockets(&b, s->senders, relayed) < 0) {
			snprintf(err, sizeof(err), "socketpair: %s",
			    strerror(errno));
			goto fail;
		}
		if (relayed)
			j.middle = relay;
		if (s->kind == K_PINGPONG) {
			j.sender = sock_ping;
			j.receiver = sock_pong;
		} else if (s->path == P_DIRECT_B || s->path == P_RELAY_B) {
			j.sender = sock_send_batch;
			j.receiver = sock_recv_batch;
		} else {
			j.sender = sock_send_each;
			j.receiver = sock_recv_each;
		}
	}
	run_job(s, &j, r);
	if (s->path == P_MQ)
		snprintf(r->note, sizeof(r->note), "queue depth %ld", depth);
	base_close(&b);
	return;
fail:
	memset(r, 0, sizeof(*r));
	r->spec = *s;
	snprintf(r->err, sizeof(r->err), "%s", err);
	base_close(&b);
}
