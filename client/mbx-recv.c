/*
 * mbx-recv.c - receives in libmbx: mbx_recv(), mbx_recvv(),
 * mbx_recvmsg() (see mbx.h).  A RECV asks for up to c->prefetch messages
 * at once; the first answers the call, the rest are held in the inbox
 * (inbox.h) for the next receives, and every message the caller gets is
 * acknowledged (session_ack()) before the call returns.  A MSG is
 * decoded (body_msg_get()) and checked against what was asked for in
 * recv_msg_decode().
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "body.h"
#include "inbox.h"
#include "mbx-int.h"
#include "mbx.h"
#include "proto.h"
#include "mbx-session.h"
#include "shm.h"

/*
 * A MSG as received: its decoded body, whose strings point into the
 * answer, and what came with the frame.  (The daemon's struct msg, a
 * queued message, is another thing.)
 */
struct msg_body {
	struct body_msg		b;	/* payload inline, or size of fd's */
	struct mbx_meta		meta;	/* b as the caller is told it */
	int			fd;	/* a zero-copy payload, or -1 */
	bool			shared;
	bool			store;	/* PROTO_MSG_STORE */
	bool			durable; /* PROTO_MSG_DURABLE */
	uint64_t		seq;	/* its number: msgs_read */
};


static int64_t
recv_now_ms(void)
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
recv_ms_left(int64_t deadline)
{
	int64_t left = deadline - recv_now_ms();

	if (left < 1)
		return 1;
	if (left > INT_MAX)
		return INT_MAX;
	return (int)left;
}


/* session_acks_flush() on a failure path: the caller's errno is the one
 * to keep. */
static void
recv_acks_flush_keep_errno(struct mbx *c)
{
	int err = errno;

	(void)session_acks_flush(c);
	errno = err;
}


/*
 * With MBX_OPT_ACK nothing is held ahead of the caller: a receive asks
 * for the messages it hands over (one, or a batch's slots), within the
 * handle's n.  So a message given back is at the head for the next
 * receive, an attempt is a delivery the caller saw, and what a killed
 * worker had is exactly what it received.  At least 1: the receive
 * checked for room.
 */
static unsigned
recv_max(const struct mbx *c, unsigned max, unsigned wanted)
{
	size_t room;

	if (c->ack_max == 0)
		return max;
	room = c->ack_max - c->nunacked;
	if (wanted < room)
		room = wanted;
	return room > 0 ? (unsigned)room : 1;
}

static uint32_t
recv_flags(const struct mbx *c)
{
	return c->ack_max > 0 ? PROTO_RECV_ACK : 0;
}

/* MBX_OPT_ACK: room for one more message held for the caller? */
static bool
recv_room(const struct mbx *c)
{
	return c->ack_max == 0 || c->nunacked < c->ack_max;
}

/*
 * A shared buffer copied out goes back to its sender once the daemon
 * knows the message was received.  With MBX_OPT_ACK it may yet come back
 * (a nack, a crash), pointing at that buffer: it is never handed back.
 */
static void
recv_release(struct mbx *c, struct mbx_msg *m)
{
	if (c->ack_max > 0)
		shm_discard(m);
	else
		mbx_msg_free(m);
}

/*
 * Decodes a MSG body; a message larger than promised breaks the handle
 * (and the daemon then puts it back).  m->fd takes a's descriptor.
 */
static int
recv_msg_decode(struct mbx *c, struct answer *a, uint64_t cap,
    struct msg_body *m)
{
	m->fd = a->fd;
	a->fd = -1;
	m->shared = (a->h.flags & PROTO_MSG_SHARED) != 0;
	m->store = (a->h.flags & PROTO_MSG_STORE) != 0;
	m->durable = (a->h.flags & PROTO_MSG_DURABLE) != 0;
	m->seq = c->msgs_read;
	if (!body_msg_get(a->body, a->h.len, a->h.flags, &m->b) ||
	    m->b.mailbox.len > MBX_NAME_MAX || m->b.origin.len > MBX_NAME_MAX ||
	    m->b.size > cap ||
	    m->b.size > SIZE_MAX || m->b.sender_id > LONG_MAX) {
		if (m->fd >= 0)
			(void)close(m->fd);
		return net_break(&c->net, EPROTO);
	}
	memset(&m->meta, 0, sizeof(m->meta));
	memcpy(m->meta.mailbox, m->b.mailbox.ptr, m->b.mailbox.len);
	m->meta.sender_id = (long)m->b.sender_id;
	m->meta.pid = (pid_t)m->b.pid;
	m->meta.uid = (uid_t)m->b.uid;
	m->meta.len = (size_t)m->b.size;
	m->meta.id = m->b.msg_id;
	m->meta.attempt = m->b.attempt;
	m->meta.origin_attempts = m->b.origin_attempts;
	memcpy(m->meta.origin, m->b.origin.ptr, m->b.origin.len);
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

/* The message going into s is described by meta. */
static void
slot_meta(struct slot *s, const struct mbx_meta *meta)
{
	s->len = meta->len;
	if (s->meta != NULL)
		*s->meta = *meta;
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
recv_take_held(struct mbx *c, struct held *h, struct slot *s)
{
	struct taken t = { h->meta.id, h->seq, h->sync, h->store, h->durable };
	int fd = h->fd;

	inbox_take(&c->inbox, h);
	h->fd = -1;
	slot_meta(s, &h->meta);
	if (slot_fill(c, s, h->data, fd, h->shared, h->meta.len) == -1) {
		/* Unacknowledged, the daemon gives it out again later. */
		inbox_release(&c->inbox, h);
		return net_break(&c->net, errno);
	}
	inbox_release(&c->inbox, h);
	/* A sync one comes from recv_probe(): its sender waits for this. */
	if (session_consume(c, &t) == -1) {
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
	struct taken t;
	bool more;
	uint32_t id = a->h.id;
	uint64_t last;

	if (recv_msg_decode(c, a, s->obj != NULL ? UINT64_MAX : s->cap,
	    &m) == -1)
		return -1;
	slot_meta(s, &m.meta);
	if (slot_fill(c, s, m.b.payload.ptr, m.fd, m.shared,
	    (size_t)m.b.size) == -1)
		return net_break(&c->net, errno);
	t = (struct taken){ m.b.msg_id, m.seq,
	    (a->h.flags & PROTO_MSG_SYNC) != 0, m.store, m.durable };
	more = (a->h.flags & PROTO_MSG_MORE) != 0;
	last = m.b.msg_id;
	while (more) {
		struct msg_body h;
		struct held *kept;

		if (session_answer_wait(c, id, a) == -1)
			goto drop;
		if (a->h.type != PROTO_MSG ||
		    recv_msg_decode(c, a, UINT64_MAX, &h) == -1) {
			(void)net_break(&c->net, EPROTO);
			goto drop;
		}
		more = (a->h.flags & PROTO_MSG_MORE) != 0;
		/*
		 * A sync sender's message comes alone; a durable mailbox's
		 * come in batches, each acknowledged with its answer.
		 */
		if ((kept = inbox_push(&c->inbox, &h.meta, h.b.payload.ptr,
		    h.fd, h.shared, (a->h.flags & PROTO_MSG_SYNC) != 0,
		    !any)) == NULL) {
			(void)net_break(&c->net, ENOMEM);
			goto drop;
		}
		kept->store = h.store;
		kept->durable = h.durable;
		kept->seq = h.seq;
		last = h.b.msg_id;
	}
	/* The daemon took the oldest it had, one after the other. */
	if (any)
		inbox_settle(&c->inbox, last);
	if (session_consume(c, &t) == -1)
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
    unsigned wanted, int timeout_ms)
{
	struct body_recv b = {
		.name = mbx_str(name != NULL ? name : ""),
		.timeout_ms = timeout_ms,
		.cap = s->obj != NULL ? UINT64_MAX : s->cap,
		.max_count = recv_max(c, max, wanted),
		.budget = MBX_PREFETCH_BYTES,
	};
	struct answer a;
	uint32_t id, status;

	/* A receiver that never bound (its @ID) asks for it here. */
	if (session_channel_for_receives(c) == -1)
		return -1;
	session_req_begin(c);
	body_recv_put(&c->out, &b);
	if ((id = session_req_end(c, PROTO_RECV, recv_flags(c), 0)) == 0)
		return -1;
	if (session_call(c, id, NULL, 0, &a) == -1)
		return -1;
	if (a.h.type == PROTO_REPLY) {
		if (session_reply_status(c, &a, &status) == -1)
			return -1;
		/* A successful RECV is answered by a MSG, never by OK. */
		if (status == PROTO_OK)
			return net_break(&c->net, EPROTO);
		return session_status_fail(c, status);
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
	struct body_recv b = {
		.name = { "", 0 },
		.timeout_ms = 0,
		.cap = UINT64_MAX,
		.max_count = recv_max(c, c->prefetch, 1),
		.budget = MBX_PREFETCH_BYTES,
	};
	struct answer a;
	uint32_t id, status;
	uint64_t last = 0;
	bool more = true;

	session_req_begin(c);
	body_recv_put(&c->out, &b);
	if ((id = session_req_end(c, PROTO_RECV, recv_flags(c), 0)) == 0)
		return -1;
	if (session_call(c, id, NULL, 0, &a) == -1)
		return -1;
	if (a.h.type == PROTO_REPLY) {
		if (session_reply_status(c, &a, &status) == -1)
			return -1;
		if (status == PROTO_OK)
			return net_break(&c->net, EPROTO);
		if (status != PROTO_EAGAIN)
			return session_status_fail(c, status);
		/* Nothing there: what comes later is younger. */
		inbox_settle(&c->inbox, UINT64_MAX);
		return 0;
	}
	while (more) {
		struct msg_body m;
		struct held *kept;

		if (a.h.type != PROTO_MSG ||
		    recv_msg_decode(c, &a, UINT64_MAX, &m) == -1)
			return net_break(&c->net, EPROTO);
		more = (a.h.flags & PROTO_MSG_MORE) != 0;
		if ((kept = inbox_push(&c->inbox, &m.meta, m.b.payload.ptr,
		    m.fd, m.shared, (a.h.flags & PROTO_MSG_SYNC) != 0,
		    false)) == NULL)
			return net_break(&c->net, ENOMEM);
		kept->store = m.store;
		kept->durable = m.durable;
		kept->seq = m.seq;
		last = m.b.msg_id;
		if (more && session_answer_wait(c, id, &a) == -1)
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
    unsigned wanted, int timeout_ms, bool drained)
{
	int64_t deadline = timeout_ms > 0 ? recv_now_ms() + timeout_ms : 0;
	int left = timeout_ms;
	struct held *h;

	for (;;) {
		/*
		 * A broken handle hands out nothing more, held messages
		 * included: the daemon gives them out again (and after a
		 * planned restart reads no store of this connection).
		 */
		if (c->net.broken)
			return mbx_fail(ECONNRESET);
		/* A binding lost since the last call takes its messages. */
		if (!drained && c->inbox.count > 0 && session_drain(c) == -1)
			return -1;
		drained = false;
		h = inbox_find(&c->inbox, name);
		if (h != NULL && name == NULL && h->unsettled) {
			if (recv_probe(c) == -1)
				return -1;
			h = inbox_find(&c->inbox, NULL);
		}
		if (h != NULL) {
			if (s->obj == NULL && h->meta.len > s->cap)
				return mbx_fail(EMSGSIZE);
			if (recv_take_held(c, h, s) == 0)
				return 0;
		} else if (recv_once(c, name, s, max, wanted, left) == 0) {
			return 0;
		}
		if (errno != ESTALE)
			return -1;
		/* A sync sender withdrew the message between hand-out and
		 * ACK: receive again, within what is left of the time. */
		if (timeout_ms > 0)
			left = recv_ms_left(deadline);
	}
}

/* One receive into s, then its acknowledgement written out. */
static int
recv_one(struct mbx *c, const char *name, struct slot *s, int timeout_ms)
{
	int ret = 0;

	if (recv_slot(c, name, s, c->prefetch, 1, timeout_ms, false) == -1) {
		/* recv_slot() left nothing in s: see slot_drop(). */
		recv_acks_flush_keep_errno(c);
		ret = -1;
	} else if (session_acks_flush(c) == -1) {
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
	recv_release(c, s->release);
	return ret;
}

MBX_EXPORT ssize_t
mbx_recv(mbx_t *c, const char *name, void *buf, size_t cap,
    struct mbx_meta *meta, int timeout_ms)
{
	struct slot s = { buf, cap, meta, 0, NULL, NULL };

	if (c == NULL || (name != NULL && !mbx_name_ok(name)) ||
	    (buf == NULL && cap > 0) || timeout_ms < -1)
		return mbx_fail(EINVAL);
	if (!recv_room(c))
		return mbx_fail(EBUSY);
	if (recv_one(c, name, &s, timeout_ms) == -1)
		return -1;
	return (ssize_t)s.len;
}

MBX_EXPORT int
mbx_recvmsg(mbx_t *c, const char *name, mbx_msg_t **m,
    struct mbx_meta *meta, int timeout_ms)
{
	struct slot s = { NULL, 0, meta, 0, m, NULL };

	if (c == NULL || (name != NULL && !mbx_name_ok(name)) || m == NULL ||
	    timeout_ms < -1)
		return mbx_fail(EINVAL);
	*m = NULL;
	if (!recv_room(c))
		return mbx_fail(EBUSY);
	return recv_one(c, name, &s, timeout_ms);
}

MBX_EXPORT ssize_t
mbx_recvv(mbx_t *c, const char *name, struct mbx_rmsg *v, size_t n,
    int timeout_ms)
{
	size_t i, written = 0;

	if (c == NULL || (name != NULL && !mbx_name_ok(name)) || v == NULL ||
	    n == 0 || timeout_ms < -1)
		return mbx_fail(EINVAL);
	for (i = 0; i < n; i++)
		if (v[i].buf == NULL && v[i].cap > 0)
			return mbx_fail(EINVAL);
	if (!recv_room(c))
		return mbx_fail(EBUSY);
	for (i = 0; i < n && recv_room(c); i++) {
		struct slot s = { v[i].buf, v[i].cap, &v[i].meta, 0, NULL,
		    NULL };
		unsigned max = n - i > c->prefetch ? (unsigned)(n - i) :
		    c->prefetch;

		/* Only the first message may wait; then only held ones. */
		if (i > 0 && inbox_find(&c->inbox, name) == NULL)
			break;
		/* One look for notices per call: the batch is one receive. */
		if (recv_slot(c, name, &s, max, (unsigned)(n - i),
		    i == 0 ? timeout_ms : 0, i > 0) == -1) {
			if (i == 0) {
				recv_acks_flush_keep_errno(c);
				return -1;
			}
			break;
		}
		v[i].len = s.len;
		/* A shared buffer copied out goes back after its ACK. */
		if (s.release != NULL) {
			if (session_acks_flush(c) == -1) {
				/*
				 * Unacknowledged, the message goes back to
				 * its queue with its buffer, which is then
				 * not handed back (shm_discard()), and it is
				 * not counted: the caller's copy is not its
				 * own.  The handle is broken and the next
				 * call says so.
				 */
				shm_discard(s.release);
				return written > 0 ? (ssize_t)written : -1;
			}
			recv_release(c, s.release);
			written = i + 1;
		}
	}
	/*
	 * One ACK frame for the batch, written before the call returns.  If
	 * it cannot be, the connection is broken and the daemon gives the
	 * messages out again: the call returns only those whose ACK was
	 * written (or fails), so that none is received twice.
	 */
	if (session_acks_flush(c) == -1)
		return written > 0 ? (ssize_t)written : -1;
	return (ssize_t)i;
}


/* mbx_ack() and mbx_nack(): the checks, then session_settle_held(). */
static int
recv_settle(mbx_t *c, const struct mbx_meta *m, bool nack, int delay_ms)
{
	if (c == NULL || m == NULL || c->ack_max == 0 || delay_ms < 0 ||
	    (uint64_t)delay_ms > PROTO_NACK_DELAY_MAX)
		return mbx_fail(EINVAL);
	return session_settle_held(c, m->id, nack, (uint32_t)delay_ms);
}

MBX_EXPORT int
mbx_ack(mbx_t *c, const struct mbx_meta *m)
{
	return recv_settle(c, m, false, 0);
}

MBX_EXPORT int
mbx_nack(mbx_t *c, const struct mbx_meta *m, int delay_ms)
{
	return recv_settle(c, m, true, delay_ms);
}
