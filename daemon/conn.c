/*
 * conn.c - socket transport: framed reads, queued writes, backpressure.
 *
 * Reads use recvmsg() so that passed descriptors are seen.  The framer
 * (proto/framer.h) cuts the input into frames: descriptors queue in
 * arrival order and each frame takes the number its header declares;
 * the frame's owner decides whether its type may carry any.  A descriptor
 * no frame claims, a truncated control message, or more than the queue
 * holds closes every descriptor received and drops the connection (a
 * descriptor left unread would leak into the daemon, as in
 * CVE-2020-12049).  That is also why this is plain struct event and not a
 * bufferevent, which would silently drop them.
 *
 * Outgoing descriptors are bound to the offset of their frame in the
 * output: the write that starts at that offset carries them.
 *
 * Backpressure: when a client's unwritten output passes CONN_OUT_HIGH,
 * the conn stops reading its requests until the output drains below
 * CONN_OUT_LOW, so a client that does not read its replies costs bounded
 * memory and never slows anyone else.  The owner is told how much output
 * each conn holds (ops->output) and may stop reading a conn with output
 * waiting for wider reasons (ops->may_read): one uid's conns together.
 *
 * A descriptor written to the socket leaves the daemon's table but not
 * the kernel's books: it stays "in flight", charged to the daemon's user,
 * until the peer reads it.  So it is still counted as the conn's (passed)
 * until the socket is seen to hold nothing unread (SIOCOUTQ 0).  When the
 * kernel refuses a descriptor (ETOOMANYREFS: the daemon's user has more
 * in flight than its RLIMIT_NOFILE), the frame and what follows stay
 * queued and the write is tried again a little later (20 ms, then less
 * often, up to 640 ms, while the kernel keeps refusing): that peer is not
 * at fault, and no message is lost.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/sockios.h>

#include <event2/event.h>

#include "conn.h"
#include "framer.h"
#include "log.h"

#define CONN_READ_SIZE	(64u * 1024)
/* Descriptors received and not yet claimed: one frame's and the next's. */
#define CONN_MAX_FDS	FRAMER_MAX_FDS
/* Descriptors waiting to be written: a reader stalled longer is dropped. */
#define CONN_MAX_OUT_FDS	256
#define CONN_OUT_HIGH	(4u * 1024 * 1024)
#define CONN_OUT_LOW	(1u * 1024 * 1024)
/*
 * How soon a write the kernel refused a descriptor for is tried again:
 * soon at first, then less often while it stays refused, so that many
 * connections waiting for the kernel do not keep the daemon busy.
 */
#define CONN_FD_RETRY_MS	20
#define CONN_FD_RETRY_MAX_MS	640

struct conn {
	int		 fd;
	struct event	*rev;
	struct event	*wev;
	struct event	*reap;
	const struct conn_ops *ops;
	void		*ctx;

	uint8_t		*in;		/* allocated only while data waits */
	size_t		 in_len;
	size_t		 in_cap;

	struct proto_writer out;
	size_t		 out_off;	/* bytes of out already written */

	struct framer	 framer;	/* frames cut, descriptors bound */
	struct conn_fd {
		size_t	 off;		/* frame start in out */
		int	 fd;
	}		*out_fds;	/* grown on demand: idle conns hold none */
	size_t		 nout_fds;
	size_t		 out_fds_cap;
	unsigned	 passed;	/* written, not seen read */
	struct event	*retry;		/* after ETOOMANYREFS */
	bool		 fd_refused;	/* the kernel refused the next one */
	unsigned	 retry_ms;	/* the next wait after a refusal */

	size_t		 out_reported;	/* output told to ops->output */
	unsigned	 fds_reported;
	bool		 uncharged;	/* nothing is told any more */

	bool		 write_soon;
	bool		 read_shut;	/* conn_read_to_end(): EOF is no death */
	bool		 reading_paused;
	bool		 close_after_flush;
	bool		 dead;
	bool		 parsing;	/* in conn_parse_some(): no re-entry */
	size_t		 charged;	/* announced frame bytes charged */
	bool		 covered;	/* that frame needs no charge */
	/*
	 * A frame whose charge was refused: its bytes are dropped as they
	 * come, skip_left more of them, then its owner answers it.
	 */
	struct proto_header skip;
	size_t		 skip_left;
	char		 label[32];	/* for the log: "client 7" */
};

static void conn_read_cb(evutil_socket_t, short, void *);
static void conn_write_cb(evutil_socket_t, short, void *);
static void conn_reap_cb(evutil_socket_t, short, void *);
static void conn_parse(struct conn *);
static void conn_skip(struct conn *);
static void conn_read_rest(struct conn *);
static void conn_retry_cb(evutil_socket_t, short, void *);
static void conn_uncharge_input(struct conn *);

/* Tells the owner how the output held changed since it was last told. */
static void
conn_report(struct conn *c)
{
	size_t bytes = c->out.len - c->out_off;
	unsigned fds = (unsigned)c->nout_fds + c->passed;

	if (c->uncharged || c->ops->output == NULL ||
	    (bytes == c->out_reported && fds == c->fds_reported))
		return;
	c->ops->output(c->ctx, (int64_t)bytes - (int64_t)c->out_reported,
	    (int)fds - (int)c->fds_reported);
	c->out_reported = bytes;
	c->fds_reported = fds;
}

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
	framer_init(&c->framer, max_body, CONN_MAX_FDS);
	proto_writer_init(&c->out);
	c->rev = event_new(base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
	c->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, conn_write_cb, c);
	c->reap = event_new(base, -1, 0, conn_reap_cb, c);
	c->retry = evtimer_new(base, conn_retry_cb, c);
	if (c->rev == NULL || c->wev == NULL || c->reap == NULL ||
	    c->retry == NULL ||
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
	if (c->retry != NULL)
		event_free(c->retry);
	close(c->fd);
	framer_deinit(&c->framer);
	for (size_t i = 0; i < c->nout_fds; i++)
		close(c->out_fds[i].fd);
	free(c->out_fds);
	free(c->in);
	proto_writer_free(&c->out);
	free(c);
}

void
conn_set_label(struct conn *c, const char *label)
{
	snprintf(c->label, sizeof(c->label), "%s", label);
}

int
conn_attach_fd(struct conn *c, size_t frame_start, int fd)
{
	if (c->nout_fds == c->out_fds_cap) {
		size_t cap = c->out_fds_cap ? c->out_fds_cap * 2 : 8;
		struct conn_fd *fds;

		/* fd stays the caller's: it closes it, and only it. */
		if (cap > CONN_MAX_OUT_FDS ||
		    (fds = realloc(c->out_fds, cap * sizeof(*fds))) == NULL)
			return -EMFILE;
		c->out_fds = fds;
		c->out_fds_cap = cap;
	}
	c->out_fds[c->nout_fds].off = frame_start;
	c->out_fds[c->nout_fds].fd = fd;
	c->nout_fds++;
	conn_report(c);
	return 0;
}

unsigned
conn_out_fds(struct conn *c)
{
	int unread;

	if (c->passed > 0 && ioctl(c->fd, SIOCOUTQ, &unread) == 0 &&
	    unread == 0) {
		c->passed = 0;
		conn_report(c);
	}
	return (unsigned)c->nout_fds + c->passed;
}

void
conn_resume(struct conn *c)
{
	/* The write callback unpauses when the output allows it. */
	if (!c->dead && c->reading_paused)
		event_active(c->wev, EV_WRITE, 1);
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
	/* Only anomalies have a reason: a plain hang-up is not news. */
	if (why != NULL)
		log_warn("%s: %s: closing", c->label, why);
	c->dead = true;
	event_del(c->rev);
	event_del(c->wev);
	evtimer_del(c->retry);
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
	conn_report(c);
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
	/* What the peer wrote after this is neither read nor run. */
	if (!c->dead)
		event_del(c->rev);
	conn_flush_soon(c);
}

static void
conn_pause_reading(struct conn *c, bool pause)
{
	if (c->dead || c->reading_paused == pause || c->close_after_flush ||
	    c->read_shut)
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

/*
 * One write of output: up to the next frame that carries descriptors,
 * or, when that frame starts here, from it on with all of its
 * descriptors in one message (they travel with its first byte).
 */
static ssize_t
conn_send_once(struct conn *c)
{
	union proto_fds_control cbuf;
	int fds[PROTO_MAX_FDS];
	struct iovec iov;
	struct msghdr mh;
	size_t end = c->out.len;
	unsigned nfds = 0;
	ssize_t n;

	while (nfds < c->nout_fds && nfds < PROTO_MAX_FDS &&
	    c->out_fds[nfds].off == c->out_off) {
		fds[nfds] = c->out_fds[nfds].fd;
		nfds++;
	}
	if (c->nout_fds > nfds)
		end = c->out_fds[nfds].off;
	iov.iov_base = c->out.buf + c->out_off;
	iov.iov_len = end - c->out_off;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfds > 0)
		proto_attach_fds(&mh, &cbuf, fds, nfds);
	n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n > 0 && nfds > 0) {
		/* The kernel holds the files now; our copies go. */
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		c->passed += nfds;
		c->retry_ms = 0;
		c->nout_fds -= nfds;
		memmove(&c->out_fds[0], &c->out_fds[nfds],
		    c->nout_fds * sizeof(c->out_fds[0]));
	}
	return n;
}

/* Writes what the socket takes; -1 when the connection failed. */
static int
conn_write_once_more(struct conn *c)
{
	c->fd_refused = false;
	while (c->out_off < c->out.len) {
		ssize_t n = conn_send_once(c);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0 && errno == ETOOMANYREFS) {
			/* Not this peer's doing: keep it all, try later. */
			c->fd_refused = true;
			return 0;
		}
		if (n < 0)
			return -1;
		c->out_off += (size_t)n;
	}
	c->out.len = 0;
	c->out_off = 0;
	return 0;
}

static int
conn_write_some(struct conn *c)
{
	int ret = conn_write_once_more(c);
	int err = errno;

	conn_report(c);
	errno = err;
	return ret;
}

static void
conn_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	if (!c->dead)
		event_active(c->wev, EV_WRITE, 1);
}

/* Drops written output, keeping the descriptors' offsets true. */
static void
conn_compact_out(struct conn *c)
{
	proto_writer_consume(&c->out, c->out_off);
	for (size_t i = 0; i < c->nout_fds; i++)
		c->out_fds[i].off -= c->out_off;
	c->out_off = 0;
}

void
conn_flush_now(struct conn *c)
{
	/* A peer that is gone takes nothing more: nothing is left. */
	if (!c->dead && conn_write_some(c) < 0)
		conn_kill(c, NULL);
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
		int err = errno;

		conn_read_rest(c);
		conn_kill(c, err == EPIPE || err == ECONNRESET ? NULL :
		    strerror(err));
		return;
	}
	left = c->out.len - c->out_off;
	if (c->fd_refused) {
		/* Writable it is: waiting for that would spin. */
		struct timeval tv;

		if (c->retry_ms == 0)
			c->retry_ms = CONN_FD_RETRY_MS;
		tv.tv_sec = c->retry_ms / 1000;
		tv.tv_usec = (c->retry_ms % 1000) * 1000;
		if (c->retry_ms < CONN_FD_RETRY_MAX_MS)
			c->retry_ms *= 2;
		conn_compact_out(c);
		event_del(c->wev);
		if (!evtimer_pending(c->retry, NULL))
			evtimer_add(c->retry, &tv);
	} else if (left == 0) {
		event_del(c->wev);
		if (c->close_after_flush) {
			conn_kill(c, NULL);
			return;
		}
	} else {
		/* Wait for room; drop what was written so the buffer stays small. */
		conn_compact_out(c);
		event_add(c->wev, NULL);
	}
	if (left < CONN_OUT_LOW)
		conn_pause_reading(c, false);
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

/*
 * Hands every complete frame to the owner, or with only != 0 the frames
 * of those types (a bit per type) at the head of the input (paused or
 * not), stopping at the
 * first other one; drops what was consumed.  True when it stopped at a
 * complete frame of another type.
 */
static bool
conn_parse_some(struct conn *c, uint32_t only)
{
	size_t off = 0;
	bool other = false;

	/*
	 * The bytes of a refused frame are no frames (a pause may end
	 * mid-way); out of turn (only >= 0) they are left to the read
	 * callback, which finishes the refusal in order.
	 */
	if (c->skip_left > 0) {
		if (only == 0)
			conn_skip(c);
		return false;
	}
	c->parsing = true;
	/* After a refused handshake nothing more is read: it is not run. */
	while (!c->dead && (only != 0 || !c->reading_paused) &&
	    !c->close_after_flush) {
		struct framer_frame fr;
		enum framer_result d;

		/* Output waits and the owner wants no more of it for now
		 * (but for a restart's last read: all of it, now). */
		if (!c->read_shut && c->out.len > c->out_off &&
		    c->ops->may_read != NULL && !c->ops->may_read(c->ctx)) {
			conn_pause_reading(c, true);
			break;
		}
		d = framer_peek(&c->framer, c->in + off, c->in_len - off, &fr);
		if (d == FRAMER_MALFORMED) {
			c->parsing = false;
			conn_kill(c, "malformed frame header");
			return false;
		}
		if (d == FRAMER_MORE)
			break;
		if (only != 0 && (fr.h.type >= 32 ||
		    (only & (1u << fr.h.type)) == 0)) {
			other = true;
			break;
		}
		if (framer_bind(&c->framer, &fr) != FRAMER_FRAME) {
			c->parsing = false;
			conn_kill(c, "a frame without its descriptors");
			return false;
		}
		/*
		 * The frame charged while it came (the first in the buffer)
		 * is complete: what its request keeps (a message) is charged
		 * by the owner now, once, and the buffer goes soon.
		 */
		if (off == 0) {
			conn_uncharge_input(c);
			c->covered = false;
		}
		/* The owner has logged why. */
		if (c->ops->frame(c->ctx, &fr.h, fr.body, fr.fds) < 0) {
			c->parsing = false;
			conn_kill(c, NULL);
			return false;
		}
		off += fr.size;
		if (c->out.len - c->out_off > CONN_OUT_HIGH)
			conn_pause_reading(c, true);
	}
	c->parsing = false;
	if (off > 0) {
		memmove(c->in, c->in + off, c->in_len - off);
		c->in_len -= off;
	}
	/* Descriptors that no frame (whole or begun) can claim. */
	if (framer_stray_fds(&c->framer, c->in_len) && !c->reading_paused) {
		conn_kill(c, "unexpected file descriptor");
		return false;
	}
	if (c->in_len == 0) {
		/* Idle connections hold no input buffer. */
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
	return other;
}

static void
conn_parse(struct conn *c)
{
	(void)conn_parse_some(c, 0);
}

/*
 * Drops the input of a refused frame as it arrives; once the whole frame
 * is gone, its owner answers it and the frames after it are read.
 */
static void
conn_skip(struct conn *c)
{
	size_t n = c->in_len < c->skip_left ? c->in_len : c->skip_left;

	if (n > 0) {
		memmove(c->in, c->in + n, c->in_len - n);
		c->in_len -= n;
	}
	c->skip_left -= n;
	if (c->skip_left > 0)
		return;
	if (c->ops->refused(c->ctx, &c->skip) < 0) {
		conn_kill(c, NULL);
		return;
	}
	conn_parse(c);
}

/*
 * A frame larger than one read is announced before it arrives: its size
 * is charged to the owner's memory accounts then, so that many half-sent
 * frames cannot hold more than the caps allow.  The buffer itself only
 * grows as the bytes come.  A charge refused is a limit reached, not bad
 * input: the frame is read and dropped (its descriptors closed), and its
 * owner answers the request (ENOBUFS).
 */
static void
conn_charge_frame(struct conn *c)
{
	struct framer_frame fr;
	size_t want = 0;

	if (c->dead || c->skip_left > 0 || c->close_after_flush)
		return;
	/* Whole or not, the first frame's header says how big it is. */
	if (framer_peek(&c->framer, c->in, c->in_len, &fr) != FRAMER_MALFORMED &&
	    fr.size > CONN_READ_SIZE)
		want = fr.size;
	if (want == c->charged || (want > 0 && c->covered))
		return;
	switch (c->ops->charge(c->ctx, want > c->charged ? &fr.h : NULL,
	    (int64_t)want - (int64_t)c->charged)) {
	case 0:
		c->charged = want;
		return;
	case CONN_COVERED:
		c->covered = true;
		return;
	}
	/* Dropped unread, the frame still takes its descriptors. */
	if (framer_bind(&c->framer, &fr) != FRAMER_FRAME) {
		conn_kill(c, "a frame without its descriptors");
		return;
	}
	for (unsigned i = 0; i < fr.h.nfds; i++)
		close(fr.fds[i]);
	c->skip = fr.h;
	c->skip_left = want;
	conn_skip(c);
}

/* Releases the charge of the input frame that is now complete. */
static void
conn_uncharge_input(struct conn *c)
{
	if (c->charged > 0)
		(void)c->ops->charge(c->ctx, NULL, -(int64_t)c->charged);
	c->charged = 0;
}

void
conn_uncharge(struct conn *c)
{
	conn_uncharge_input(c);
	if (!c->uncharged && c->ops->output != NULL &&
	    (c->out_reported > 0 || c->fds_reported > 0))
		c->ops->output(c->ctx, -(int64_t)c->out_reported,
		    -(int)c->fds_reported);
	c->uncharged = true;
}

/* One read into the input buffer: 1 read, 0 nothing there, -1 dead. */
static int
conn_recv_once(struct conn *c)
{
	union framer_control cbuf;
	struct iovec iov;
	struct msghdr mh;
	ssize_t n;

	if (conn_reserve(c, CONN_READ_SIZE / 4) < 0) {
		conn_kill(c, "out of memory for input");
		return -1;
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
		return 0;
	if (n == 0 && c->read_shut)
		return 0;
	if (n <= 0) {
		/* A client that died with requests unread resets the stream. */
		conn_kill(c, n == 0 || errno == ECONNRESET ? NULL :
		    strerror(errno));
		return -1;
	}
	if (framer_take_fds(&c->framer, &mh) != FRAMER_FRAME) {
		framer_close_fds(&c->framer);
		conn_kill(c, "too many or truncated file descriptors");
		return -1;
	}
	c->in_len += (size_t)n;
	return 1;
}

/* One read and what it completes: 1 read, 0 nothing there, -1 dead. */
static int
conn_read_once(struct conn *c)
{
	int r = conn_recv_once(c);

	if (r <= 0)
		return r;
	conn_parse(c);
	conn_charge_frame(c);
	return c->dead ? -1 : 1;
}

/*
 * The frames of one type that the peer wrote before now, ahead of any
 * other: read and handed over out of the event loop's turn.  Not while
 * the connection's own frames are being handed over (its later frames
 * come after the current one anyway).
 */
void
conn_take_leading(struct conn *c, uint32_t types)
{
	if (c->dead || c->parsing)
		return;
	/* Bounded: a peer writing without pause cannot hold us here. */
	for (int i = 0; i < 16 && !c->dead; i++) {
		if (c->in_len > 0 && conn_parse_some(c, types))
			break;
		if (c->dead || conn_recv_once(c) <= 0)
			break;
	}
	conn_charge_frame(c);
	/*
	 * Frames read and left here would wait for more bytes that may never
	 * come: the read callback hands them over at the next loop turn.
	 */
	if (!c->dead && c->in_len > 0 && !c->reading_paused)
		event_active(c->rev, EV_READ, 0);
}

static void
conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	/* Nothing new, but frames read ahead (conn_take_leading()). */
	if (conn_read_once(c) == 0 && c->in_len > 0) {
		conn_parse(c);
		conn_charge_frame(c);
	}
}

void
conn_read_to_end(struct conn *c)
{
	if (c->dead || c->read_shut)
		return;
	/*
	 * From here the peer's writes fail (EPIPE): AF_UNIX tells the peer's
	 * side of a read shutdown at once.  What it wrote before is queued.
	 */
	(void)shutdown(c->fd, SHUT_RD);
	c->read_shut = true;
	c->reading_paused = false;
	event_del(c->rev);
	if (c->in_len > 0)
		conn_parse(c);
	conn_read_rest(c);
}

size_t
conn_unwritten(const struct conn *c)
{
	return c->dead ? 0 : c->out.len - c->out_off;
}

/*
 * The peer is gone (a write failed) but what it sent before going may
 * still wait in the socket, an acknowledgement say: read it all first.
 */
static void
conn_read_rest(struct conn *c)
{
	for (int i = 0; i < 1024 && !c->dead && !c->reading_paused; i++)
		if (conn_read_once(c) <= 0)
			break;
}
