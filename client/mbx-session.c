/*
 * mbx-session.c - the protocol state of a libmbx handle (see mbx-session.h and
 * the invariants in mbx-int.h): requests and their answers, the frames
 * a client accepts, the daemon's notices, acknowledgements written late,
 * and the bookkeeping of order.h.  Frames come from net.c whole; what
 * their bodies say beyond notices, statuses and acknowledgements is the
 * API's (mbx-*.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "body.h"
#include "chan.h"
#include "framer.h"
#include "grant.h"
#include "inbox.h"
#include "net.h"
#include "order.h"
#include "mbx-session.h"

/*
 * Requests: building, sending.
 */

/* Appends an ACK frame for the pending acknowledgements to c->out. */
static void
session_put_acks(struct mbx *c)
{
	struct body_ack b = { .count = c->nacks, .ids = c->acks };
	size_t start;

	if (c->nacks == 0)
		return;
	start = proto_frame_begin(&c->out);
	body_ack_put(&c->out, &b);
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
session_req_begin(struct mbx *c)
{
	/* Keep the allocation between requests, unless it failed. */
	if (proto_writer_failed(&c->out))
		proto_writer_free(&c->out);
	else
		proto_writer_consume(&c->out, c->out.len);
	session_put_acks(c);
	c->req_off = c->out.len;
	(void)proto_frame_begin(&c->out);
}

/*
 * Fills in the header of the request in c->out, whose body goes on for
 * extra bytes that are not in c->out (a payload sent straight from the
 * caller's buffer).  Returns the request id, or 0 with errno ENOMEM.
 */
uint32_t
session_req_end_nfds(struct mbx *c, uint16_t type, uint32_t flags,
    size_t extra, uint16_t nfds)
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
session_req_end(struct mbx *c, uint16_t type, uint32_t flags, size_t extra)
{
	return session_req_end_nfds(c, type, flags, extra, 0);
}

/*
 * Every write of the handle goes through here: bytes no answer covers
 * yet (a post, an acknowledgement) must reach the daemon before what the
 * process writes next on another handle (order.h).
 */
int
session_write(struct mbx *c, struct iovec *iov, size_t iovcnt, int fd)
{
	if (c->net.broken) {
		errno = ECONNRESET;
		return -1;
	}
	order_before_write(c->net.fd);
	if (net_write(&c->net, iov, iovcnt, fd) == -1)
		return -1;
	order_written(c->net.fd);
	return 0;
}

/* Writes the request in c->out, then the extra bytes. */
int
session_req_send(struct mbx *c, const void *extra, size_t extralen)
{
	struct iovec iov[2];

	iov[0].iov_base = c->out.buf;
	iov[0].iov_len = c->out.len;
	/* The payload is only read; iovec just has no const member. */
	iov[1].iov_base = (void *)(uintptr_t)extra;
	iov[1].iov_len = extralen;
	return session_write(c, iov, 2, -1);
}

/*
 * Frames and notices.
 */

/*
 * The frame-type policy: only REPLY, MSG and REVOKE travel to a client;
 * only a zero-copy MSG declares a descriptor, sent with its first byte.
 * A frame that passes becomes the answer a; any other breaks the handle,
 * and no descriptor that came with it leaks into the caller's process.
 */
static int
session_accept(struct mbx *c, struct framer_frame *f, struct answer *a)
{
	unsigned nfds = 0;

	if (f->h.type == PROTO_MSG && (f->h.flags & PROTO_MSG_FD))
		nfds = 1;
	else if (f->h.type == PROTO_REPLY && f->h.id == c->channel_req)
		nfds = f->h.nfds == SESSION_CHANNEL_FDS ? SESSION_CHANNEL_FDS :
		    0;
	if ((f->h.type != PROTO_REPLY && f->h.type != PROTO_MSG &&
	    f->h.type != PROTO_REVOKE && f->h.type != PROTO_WAKE) ||
	    (f->h.type == PROTO_WAKE && (f->h.id != 0 || f->h.len != 0)) ||
	    f->h.nfds != nfds) {
		for (size_t i = 0; i < f->h.nfds; i++)
			(void)close(f->fds[i]);
		net_close_in_fds(&c->net);
		return net_break(&c->net, EPROTO);
	}
	/* Numbered as mbxd numbers them (PROTOCOL.md, "Consumption"). */
	if (f->h.type == PROTO_MSG)
		c->msgs_read++;
	a->h = f->h;
	a->fd = f->h.nfds >= 1 ? f->fds[0] : -1;
	for (unsigned i = 0; i < SESSION_CHANNEL_FDS; i++)
		a->fds[i] = i < f->h.nfds ? f->fds[i] : -1;
	a->body = f->body;
	return 0;
}

/* Reads the next frame the policy accepts, waiting as long as it takes. */
static int
session_read(struct mbx *c, struct answer *a)
{
	struct framer_frame f;

	if (net_read_frame(&c->net, &f) == -1)
		return -1;
	return session_accept(c, &f, a);
}

/*
 * A REVOKE: the daemon took back the messages we held from a mailbox
 * (its binding moved, or it is gone, and with it any credit there).
 */
static void unacked_forget(struct mbx *, uint64_t);

static int
session_revoke(struct mbx *c, struct answer *a)
{
	struct body_revoke b;

	if (!body_revoke_get(a->body, a->h.len, a->h.flags, &b) ||
	    a->h.id != 0)
		return net_break(&c->net, EPROTO);
	c->revokes_read++;
	/* One message taken back: whether held for the caller or ahead. */
	if (b.what == PROTO_REVOKE_MSG) {
		if (b.msg_id == c->check_id)
			c->check_revoked = true;
		unacked_forget(c, b.msg_id);
		inbox_drop_id(&c->inbox, b.msg_id);
		return 0;
	}
	if (b.what != PROTO_REVOKE_CREDIT)
		inbox_drop_mailbox(&c->inbox, b.mailbox.ptr, b.mailbox.len);
	if (b.what != PROTO_REVOKE_BINDING)
		grant_drop(&c->grants, b.mailbox_id);
	return 0;
}

/* Reads frames until the answer to id, applying REVOKEs on the way. */
int
session_answer_wait(struct mbx *c, uint32_t id, struct answer *a)
{
	for (;;) {
		if (session_read(c, a) == -1)
			return -1;
		if (a->h.type == PROTO_REVOKE) {
			if (session_revoke(c, a) == -1)
				return -1;
			continue;
		}
		/* Room in the tx ring: only a post that waits for it cares. */
		if (a->h.type == PROTO_WAKE)
			continue;
		/* One request at a time: another id means we lost track. */
		if (a->h.id != id)
			return net_break(&c->net, EPROTO);
		order_answered(c->net.fd);
		c->own_answers++;
		return 0;
	}
}

/* A frame read between requests: only a notice or a WAKE may come. */
static int
session_notice(struct mbx *c, struct answer *a)
{
	if (a->h.type == PROTO_WAKE)
		return 0;
	if (a->h.type != PROTO_REVOKE) {
		if (a->fd >= 0)
			(void)close(a->fd);
		return net_break(&c->net, EPROTO);
	}
	return session_revoke(c, a);
}

/*
 * Applies the REVOKEs that arrived since the last call, without waiting:
 * between calls nothing else can come.
 */
int
session_drain(struct mbx *c)
{
	unsigned seen = order_answers();
	struct framer_frame f;
	struct answer a;
	uint64_t queued;
	int got;

	/*
	 * With a channel, the notice word counts the REVOKEs mbxd queued:
	 * equal to those read, there is nothing to look for; ahead, they are
	 * on their way, and reading until all are in reads what came before.
	 */
	if (c->chan.state == CHAN_OPEN) {
		queued = channel_load(c->chan.daemon, CHANNEL_DAEMON_NOTICE);
		while (c->revokes_read < queued)
			if (session_read(c, &a) == -1 ||
			    session_notice(c, &a) == -1)
				return -1;
		got = 0;
	} else {
		while ((got = net_poll_frame(&c->net, &f)) == 1)
			if (session_accept(c, &f, &a) == -1 ||
			    session_notice(c, &a) == -1)
				return -1;
	}
	if (got == -1)
		return -1;
	c->notices_seen = seen;
	c->own_answers = 0;
	return 0;
}

/*
 * Applies the notices that may wait unread before a send on credit: only
 * when some other handle of the process read an answer since this one
 * last read all it was sent.  A handle alone (the common case) never pays
 * a system call to look.
 */
int
session_drain_if_due(struct mbx *c)
{
	if (order_answers() - c->notices_seen == c->own_answers)
		return 0;
	return session_drain(c);
}

/*
 * Answers.
 */

/* Sends the request built in c->out (plus extra) and waits for its
 * answer. */
int
session_call(struct mbx *c, uint32_t id, const void *extra, size_t extralen,
    struct answer *a)
{
	unsigned seen = order_answers(), own = c->own_answers;

	c->call_written = false;
	if (session_req_send(c, extra, extralen) == -1)
		return -1;
	c->call_written = true;
	if (session_answer_wait(c, id, a) == -1)
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
session_reply_status(struct mbx *c, struct answer *a, uint32_t *status)
{
	/* Set on failure too, though the caller then does not look: the
	 * compiler cannot see that net_break() always returns -1. */
	*status = PROTO_EPROTO;
	if (a->h.type != PROTO_REPLY)
		return net_break(&c->net, EPROTO);
	if (!body_reply_status(a->body, a->h.len, status))
		return net_break(&c->net, EPROTO);
	return 0;
}

/* Checks that an OK answer a is the status alone; -1 (broken) if not. */
int
session_reply_bare(struct mbx *c, const struct answer *a)
{
	struct body_reply r;

	if (!body_reply_get(a->body, a->h.len, a->h.flags, &r))
		return net_break(&c->net, EPROTO);
	return 0;
}

/* Fails with the errno of a status other than PROTO_OK. */
int
session_status_fail(struct mbx *c, uint32_t status)
{
	int err = proto_status_to_errno(status);

	/* PROTO_STALE answers a sync ACK only (handled there). */
	if (err == ESTALE)
		return net_break(&c->net, EPROTO);
	/* PROTO_ESHUTDOWN: the daemon is stopping and closes every
	 * connection; the handle is as good as gone. */
	if (err == ECONNRESET)
		return net_break(&c->net, ECONNRESET);
	errno = err;
	return -1;
}

/*
 * Waits for the answer to a request whose success is a bare status.
 * What follows an error status is not checked: the error is the answer
 * whatever detail comes with it.
 */
int
session_call_status(struct mbx *c, uint32_t id, const void *extra,
    size_t extralen)
{
	struct answer a;
	uint32_t status;

	if (session_call(c, id, extra, extralen, &a) == -1 ||
	    session_reply_status(c, &a, &status) == -1)
		return -1;
	if (status != PROTO_OK)
		return session_status_fail(c, status);
	return session_reply_bare(c, &a);
}

/*
 * The channel.
 */

/*
 * Asks for this connection's channel, once: a refusal (a quota, the
 * daemon's memory) is no error, posts then go over the socket.  -1 only
 * when the handle broke.
 */
int
session_channel_open(struct mbx *c)
{
	struct body_reply_channel r;
	struct answer a;
	uint32_t id, status;
	int err;

	if (c->chan.state != CHAN_NONE)
		return 0;
	c->chan.state = CHAN_OFF;
	session_req_begin(c);
	if ((id = session_req_end(c, PROTO_CHANNEL, 0, 0)) == 0)
		return net_break(&c->net, ENOMEM);
	c->channel_req = id;
	err = session_call(c, id, NULL, 0, &a);
	c->channel_req = 0;
	if (err == -1 || session_reply_status(c, &a, &status) == -1)
		goto fail;
	if (!body_reply_channel_get(a.body, a.h.len, a.h.flags, &r)) {
		(void)net_break(&c->net, EPROTO);
		goto fail;
	}
	if (status != PROTO_OK) {
		if (a.h.nfds != 0) {
			(void)net_break(&c->net, EPROTO);
			goto fail;
		}
		return 0;
	}
	if (a.h.nfds != SESSION_CHANNEL_FDS) {
		(void)net_break(&c->net, EPROTO);
		goto fail;
	}
	/* The descriptors are chan_map()'s whatever it answers. */
	if (chan_map(&c->chan, a.fds[0], a.fds[1], a.fds[2], r.ring_size) == -1)
		return net_break(&c->net, errno == EPROTO ? EPROTO : ENOMEM);
	return 0;
fail:
	if (err != -1)
		for (unsigned i = 0; i < SESSION_CHANNEL_FDS; i++)
			if (a.fds[i] >= 0)
				(void)close(a.fds[i]);
	return -1;
}

int
session_channel_for_receives(struct mbx *c)
{
	if (!c->use_credit || c->chan.state != CHAN_NONE)
		return 0;
	return session_channel_open(c);
}

/*
 * A check's round trip failed with the connection.  A planned restart
 * settled this connection for good before it closed it and wrote the
 * final word (PROTOCOL.md, "The restart, as built"): that word, or 0
 * when there is none (no channel, or the daemon died).
 */
static uint64_t
session_final(struct mbx *c)
{
	if (!c->net.broken || c->chan.state != CHAN_OPEN)
		return 0;
	return chan_final_wait(&c->chan, SESSION_FINAL_WAIT_MS);
}

int
session_posts_kept(struct mbx *c, const uint64_t *pos, size_t n,
    size_t *kept)
{
	struct body_grant_check b = { pos[0] };
	struct body_reply_grant_check r;
	struct answer a;
	uint32_t id;
	size_t j = 0;

	*kept = n;
	if (n == 0 || !chan_revoked(&c->chan))
		return 0;
	session_req_begin(c);
	body_grant_check_put(&c->out, &b);
	if ((id = session_req_end(c, PROTO_GRANT_CHECK, 0, 0)) == 0)
		return net_break(&c->net, ENOMEM);
	if (session_call(c, id, NULL, 0, &a) == -1 ||
	    session_reply_status(c, &a, &id) == -1) {
		/* Taken: the posts that start below the daemon's head. */
		if (session_final(c) == 0)
			return -1;
		*kept = 0;
		while (*kept < n && pos[*kept] < chan_tx_taken(&c->chan))
			(*kept)++;
		return 0;
	}
	if (!body_reply_grant_check_get(a.body, a.h.len, a.h.flags, &r) ||
	    r.status != PROTO_OK)
		return net_break(&c->net, EPROTO);
	/* Both rise: the first of ours among the dropped. */
	for (size_t i = 0; i < n; i++) {
		while (j < r.n && r.pos[j] < pos[i])
			j++;
		if (j < r.n && r.pos[j] == pos[i]) {
			*kept = i;
			break;
		}
	}
	return 0;
}

/*
 * Waits until a record of len bytes fits in the tx ring: the flag that
 * asks mbxd for a WAKE once half the ring is free, a last look, then the
 * socket, on which only notices and WAKEs can come between requests.
 */
int
session_room_wait(struct mbx *c, size_t len)
{
	struct answer a;
	int ret = 0;

	while (!chan_want_room(&c->chan, len)) {
		if (session_read(c, &a) == -1) {
			ret = -1;
			break;
		}
		if (a.h.type == PROTO_REVOKE) {
			if (session_revoke(c, &a) == -1) {
				ret = -1;
				break;
			}
			continue;
		}
		if (a.h.type != PROTO_WAKE) {
			if (a.fd >= 0)
				(void)close(a.fd);
			ret = net_break(&c->net, EPROTO);
			break;
		}
	}
	chan_room_done(&c->chan);
	return ret;
}

/*
 * Acknowledgements.
 */

/* Writes the pending acknowledgements now, alone. */
int
session_acks_flush(struct mbx *c)
{
	if (c->nacks == 0)
		return 0;
	if (proto_writer_failed(&c->out))
		proto_writer_free(&c->out);
	else
		proto_writer_consume(&c->out, c->out.len);
	session_put_acks(c);
	/* An ACK we cannot send leaves messages handed out for good: drop
	 * the connection so that the daemon puts them back. */
	if (proto_writer_failed(&c->out))
		return net_break(&c->net, ENOMEM);
	return session_req_send(c, NULL, 0);
}

/* Starts an ACK or NACK of msg_id in c->out: its request id, or 0. */
static uint32_t
settle_put(struct mbx *c, uint64_t msg_id, bool nack, uint32_t delay_ms,
    bool reply)
{
	session_req_begin(c);
	if (nack) {
		struct body_nack b = { msg_id, delay_ms, reply };

		body_nack_put(&c->out, &b);
	} else {
		struct body_ack b = { .count = 1, .ids = &msg_id };

		body_ack_put(&c->out, &b);
	}
	return session_req_end(c, nack ? PROTO_NACK : PROTO_ACK,
	    reply ? PROTO_ACK_REPLY : 0, 0);
}

/*
 * Confirms a message whose payload the caller now has, the second phase
 * of a receive.  An ordinary one joins the pending acknowledgements,
 * written with the next request or as soon as nothing more is held.  A
 * sync sender waits on this very message, so its ACK goes at once and
 * asks for an answer: PROTO_STALE (ESTALE here) means the sender gave up
 * and withdrew it meanwhile, and the receive does not count.
 */
int
session_ack(struct mbx *c, uint64_t msg_id, bool sync, bool durable)
{
	struct answer a;
	uint32_t id, status;

	if (!sync) {
		c->acks[c->nacks++] = msg_id;
		return c->nacks == MBX_ACK_MAX ? session_acks_flush(c) : 0;
	}
	if ((id = settle_put(c, msg_id, false, 0, true)) == 0)
		return net_break(&c->net, ENOMEM);
	if (session_call(c, id, NULL, 0, &a) == -1) {
		/*
		 * A durable message's ACK written, then the daemon went before
		 * it answered: it may have synced the removal, and the log
		 * no longer has the message.  So the caller keeps it: received
		 * at least once (it may come again after the restart).  Any
		 * other fails: a sync sender is told it failed too.
		 */
		return durable && c->call_written && c->net.broken ? 0 : -1;
	}
	if (session_reply_status(c, &a, &status) == -1)
		return -1;
	if (status == PROTO_STALE) {
		errno = ESTALE;
		return -1;
	}
	if (status != PROTO_OK)
		return session_status_fail(c, status);
	return session_reply_bare(c, &a);
}

/*
 * Explicit acknowledgement (MBX_OPT_ACK): the messages handed to the
 * caller and not yet acknowledged, in receive order (acknowledgements
 * mostly come in that order too, so the search is short).
 */
static ssize_t
unacked_find(const struct mbx *c, uint64_t id)
{
	for (size_t i = 0; i < c->nunacked; i++)
		if (c->unacked[i].id == id)
			return (ssize_t)i;
	return -1;
}

static void
unacked_remove(struct mbx *c, size_t i)
{
	memmove(&c->unacked[i], &c->unacked[i + 1],
	    (c->nunacked - i - 1) * sizeof(c->unacked[0]));
	c->nunacked--;
}

static void
unacked_forget(struct mbx *c, uint64_t id)
{
	ssize_t i = unacked_find(c, id);

	if (i >= 0)
		unacked_remove(c, (size_t)i);
}

/*
 * The takeback word moved since the last look: mbxd may have taken the
 * message back before it read the store.  An ACK with an answer tells:
 * OK (still in flight: now received), or STALE, which is "received by
 * the store" unless a REVOKE of it came first, and every REVOKE of a
 * message taken back before the ACK was read comes first.
 */
static int
session_store_check(struct mbx *c, const struct taken *t)
{
	uint64_t final;
	int ret;

	c->check_id = t->id;
	c->check_revoked = false;
	ret = session_ack(c, t->id, true, false);
	if (ret == -1 && errno == ESTALE && !c->check_revoked)
		ret = 0;
	c->check_id = 0;
	/* Received if the daemon's last reading of the store covered it. */
	if (ret == -1 && (final = session_final(c)) != 0) {
		if (t->seq < final - 1)
			return 0;
		errno = ECONNRESET;
	}
	return ret;
}

/*
 * A receive's consumption by a store: the word says "every store message
 * below the oldest still held (or the next to come) is received".  If a
 * receive by name took t past an older held one, the word cannot say it:
 * an ACK frame does.  Then the fence pair of "Taken back" with the roles
 * of PROTOCOL.md, and a doorbell if mbxd watches (a send waits for room).
 */
static int
session_store(struct mbx *c, const struct taken *t)
{
	uint64_t upto = inbox_store_floor(&c->inbox, c->msgs_read + 1), tb;
	uint64_t watch;

	if (t->seq >= upto)
		return session_ack(c, t->id, false, false);
	if (upto > c->consumed) {
		channel_store(c->chan.client, CHANNEL_CLIENT_CONSUMED, upto);
		c->consumed = upto;
	}
	channel_fence();
	/* mbxd sleeps with a send parked: once per value it stored. */
	watch = channel_load(c->chan.daemon, CHANNEL_DAEMON_WATCH);
	if (watch != c->watch_rung) {
		c->watch_rung = watch;
		if (chan_ring(&c->chan) == -1)
			return net_break(&c->net, errno);
	}
	tb = chan_takeback(&c->chan);
	if (tb == c->store_takeback_seen)
		return 0;
	c->store_takeback_seen = tb;
	return session_store_check(c, t);
}

int
session_consume(struct mbx *c, const struct taken *t)
{
	if (c->ack_max == 0) {
		if (t->store && !t->sync && c->chan.state == CHAN_OPEN)
			return session_store(c, t);
		return session_ack(c, t->id, t->sync, t->durable);
	}
	/* The receive checked for room: the slots were allocated by setopt. */
	c->unacked[c->nunacked].id = t->id;
	c->unacked[c->nunacked].sync = t->sync;
	c->nunacked++;
	return 0;
}

/*
 * The fast path is the fence pair of PROTOCOL.md ("Taken back"): mbxd
 * moves the takeback word, fences, then reads the socket before it takes
 * a message back.  Here the ACK is written, a fence, and the word read:
 * unmoved, mbxd will read the ACK before any takeback, so the message is
 * done.  Moved, the ACK may have come too late: a round trip tells,
 * since every REVOKE of a message taken back before the ACK was read
 * comes ahead of the answer.
 */
int
session_settle_held(struct mbx *c, uint64_t msg_id, bool nack,
    uint32_t delay_ms)
{
	ssize_t i = unacked_find(c, msg_id);
	bool written = false, held;
	struct answer a;
	uint32_t id, status;

	if (c->net.broken)
		return mbx_fail(ECONNRESET);
	if (i < 0)
		return mbx_fail(ESTALE);
	/* A sync sender may withdraw it: only the answer tells. */
	if (!c->unacked[i].sync) {
		/* Its answer comes after any REVOKE: look again after it. */
		if (c->chan.state == CHAN_NONE) {
			if (session_channel_open(c) == -1)
				return -1;
			if ((i = unacked_find(c, msg_id)) < 0)
				return mbx_fail(ESTALE);
		}
		if (c->chan.state == CHAN_OPEN &&
		    chan_takeback(&c->chan) == c->takeback_seen) {
			if ((id = settle_put(c, msg_id, nack, delay_ms,
			    false)) == 0)
				return net_break(&c->net, ENOMEM);
			if (session_req_send(c, NULL, 0) == -1)
				return -1;
			written = true;
			channel_fence();
			if (chan_takeback(&c->chan) == c->takeback_seen) {
				unacked_remove(c, (size_t)i);
				return 0;
			}
		}
	}
	if (c->chan.state == CHAN_OPEN)
		c->takeback_seen = chan_takeback(&c->chan);
	if ((id = settle_put(c, msg_id, nack, delay_ms, true)) == 0)
		return net_break(&c->net, ENOMEM);
	if (session_call(c, id, NULL, 0, &a) == -1 ||
	    session_reply_status(c, &a, &status) == -1 ||
	    session_reply_bare(c, &a) == -1) {
		/*
		 * A planned restart read every frame written before it shut
		 * the socket: the first ACK, written, was done.
		 */
		if (written && session_final(c) != 0) {
			if ((i = unacked_find(c, msg_id)) >= 0)
				unacked_remove(c, (size_t)i);
			return 0;
		}
		return -1;
	}
	/* A REVOKE read on the way forgot it if it was taken back. */
	i = unacked_find(c, msg_id);
	held = i >= 0;
	if (held)
		unacked_remove(c, (size_t)i);
	if (status == PROTO_OK || (status == PROTO_STALE && written && held))
		return 0;
	if (status == PROTO_STALE)
		return mbx_fail(ESTALE);
	return session_status_fail(c, status);
}

/*
 * Taken messages are confirmed (held ones go back to the daemon when the
 * socket closes), and what the handle wrote last still goes before what
 * the process does next on another handle.
 */
void
session_end(struct mbx *c)
{
	if (c->net.fd == -1)
		return;
	if (!c->net.broken)
		(void)session_acks_flush(c);
	order_forget(c->net.fd);
}
