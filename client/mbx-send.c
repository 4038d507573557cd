/*
 * mbx-send.c - sends in libmbx: mbx_send(), mbx_sendv(), mbx_sendmsg()
 * (see mbx.h), and the credit they go on.  A send is a SEND round trip,
 * whose OK may bring a grant (grant.h); while one covers the next
 * message, that goes as a POST, written without waiting for any answer.
 * A payload above c->zerocopy_above, or a message object, travels as a
 * memfd (shm.h).  The SEND, SENDV and POST requests are built here, their
 * bodies with proto/body.h; an inline payload goes from the caller's
 * buffer straight to the socket (the body_*_put_head() encoders).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "body.h"
#include "chan.h"
#include "grant.h"
#include "mbx-int.h"
#include "mbx.h"
#include "proto.h"
#include "mbx-session.h"
#include "order.h"
#include "shm.h"

/*
 * The rest of an OK answering a SEND: the grant the handle now holds in
 * name, if any (none: what it knew of one there is forgotten).
 */
static int
send_grant_read(struct mbx *c, const char *name, struct answer *a)
{
	struct body_reply_send r;

	if (!body_reply_send_get(a->body, a->h.len, a->h.flags, &r) ||
	    (r.has_grant && r.count == 0))
		return net_break(&c->net, EPROTO);
	/* Without a grant, r's fields are 0: grant_set() forgets. */
	if (c->use_credit)
		grant_set(&c->grants, name, r.mailbox_id, r.count, r.bytes,
		    r.max_msg, a->h.flags);
	return 0;
}

/*
 * Posts a prepared memfd on credit: one write, no answer (see
 * send_post()).  The descriptor fd is the message's; the kernel dups it.
 */
static int
send_post_fd(struct mbx *c, struct grant_slot *cr, struct mbx_msg *m, int fd,
    bool shared)
{
	struct body_post b = { .mailbox_id = cr->mailbox_id, .has_fd = true,
	    .size = m->len };
	struct iovec iov;

	session_req_begin(c);
	body_post_put(&c->out, &b);
	if (session_req_end_nfds(c, PROTO_POST, PROTO_POST_FD |
	    (shared ? PROTO_POST_SHARED : 0), 0, 1) == 0)
		return -1;
	iov.iov_base = c->out.buf;
	iov.iov_len = c->out.len;
	if (session_write(c, &iov, 1, fd) == -1)
		return -1;
	cr->count--;
	cr->bytes -= m->len;
	return 0;
}

/* Whether grant cr covers a memfd post, shared or sealed. */
static bool
send_grant_covers_fd(const struct grant_slot *cr, int flags)
{
	return cr != NULL && cr->zerocopy &&
	    (cr->shared || !(flags & MBX_SHARED));
}

/*
 * A grant that covers a memfd post of len bytes to name, or NULL.  A
 * shared one needs a grant that says the daemon would take it: elsewhere
 * the SEND it goes as instead is refused (EPERM), as it must be.
 */
static struct grant_slot *
send_grant_for_fd(struct mbx *c, const char *name, size_t len, int flags)
{
	struct grant_slot *cr;

	/* With a channel, posts go through its ring only (send_post()). */
	if ((flags & MBX_SYNC) || !c->use_credit ||
	    c->chan.state == CHAN_OPEN ||
	    !send_grant_covers_fd(grant_cover(&c->grants, name, len), flags))
		return NULL;
	/* As for an inline post: a mailbox gone takes its grant along. */
	if (session_drain_if_due(c) == -1)
		return NULL;
	cr = grant_cover(&c->grants, name, len);
	return send_grant_covers_fd(cr, flags) ? cr : NULL;
}

/* A SEND whose payload is the memfd of m. */
static int
send_fd(struct mbx *c, const char *name, struct mbx_msg *m, int flags,
    int timeout_ms)
{
	bool shared = (flags & MBX_SHARED) != 0;
	struct grant_slot *cr = send_grant_for_fd(c, name, m->len, flags);
	struct body_send b = { .name = mbx_str(name),
	    .timeout_ms = timeout_ms, .has_fd = true, .size = m->len };
	struct iovec iov;
	struct answer a;
	uint32_t id, status;
	int fd;

	if (c->net.broken)
		return mbx_fail(ECONNRESET);
	if ((fd = shm_ready(&c->shm, m, shared)) < 0)
		return -1;
	if (cr != NULL) {
		if (send_post_fd(c, cr, m, fd, shared) == -1)
			goto fail;
		shm_sent(&c->shm, m);
		return 0;
	}
	session_req_begin(c);
	body_send_put(&c->out, &b);
	id = session_req_end_nfds(c, PROTO_SEND, PROTO_SEND_FD |
	    (shared ? PROTO_SEND_SHARED : 0) |
	    ((flags & MBX_SYNC) ? PROTO_SEND_SYNC :
	    c->use_credit ? PROTO_SEND_CREDIT : 0), 0, 1);
	if (id == 0)
		goto fail;
	iov.iov_base = c->out.buf;
	iov.iov_len = c->out.len;
	if (session_write(c, &iov, 1, fd) == -1 ||
	    session_answer_wait(c, id, &a) == -1 ||
	    session_reply_status(c, &a, &status) == -1)
		goto fail;
	if (status != PROTO_OK) {
		(void)session_status_fail(c, status);
		goto fail;
	}
	if (send_grant_read(c, name, &a) == -1)
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
	if (c == NULL || !mbx_name_ok(name) || m == NULL || m->received ||
	    (flags & ~(MBX_SYNC | MBX_SHARED)) != 0 || timeout_ms < -1)
		return mbx_fail(EINVAL);
	if (c->net.broken)
		return mbx_fail(ECONNRESET);
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
 * The channel is asked for by the first post that fits a record (the
 * CHANNEL round trip also means mbxd has read every socket post before
 * it, so none of them can follow a ring post).  -1 only when the handle
 * broke.
 */
static int
send_channel(struct mbx *c, size_t len)
{
	if (c->chan.state != CHAN_NONE || BODY_POST_HEAD + len >
	    CHANNEL_REC_MAX)
		return 0;
	return session_channel_open(c);
}

/*
 * A post into the channel's tx ring: the POST body's head, then the
 * payload copied straight from the caller, published (PROTOCOL.md,
 * "Version 6").  A full ring is waited for; the grant is looked at again
 * after a wait, since a notice read meanwhile may have ended it (then
 * 1: the caller sends instead).
 */
static int
send_post_ring(struct mbx *c, const char *name, struct grant_slot *cr,
    const void *data, size_t len)
{
	struct body_post b = { .mailbox_id = cr->mailbox_id,
	    .payload = { data, len } };
	size_t need = BODY_POST_HEAD + len;
	struct proto_writer w;
	uint64_t pos;
	size_t kept;
	uint8_t *at;

	/*
	 * A socket write of another handle (a memfd post) must be read
	 * before this post can be taken: it came first.
	 */
	order_before_write(c->net.fd);
	while ((at = chan_reserve(&c->chan, CHANNEL_POST, 0, need, &pos)) ==
	    NULL) {
		if (session_room_wait(c, need) == -1)
			return -1;
		if ((cr = grant_cover(&c->grants, name, len)) == NULL)
			return 1;
		b.mailbox_id = cr->mailbox_id;
	}
	proto_writer_fixed(&w, at, BODY_POST_HEAD);
	body_post_put_head(&w, &b);
	/* A 0-byte message may come as NULL, which memcpy() must not see. */
	if (len > 0)
		memcpy(at + BODY_POST_HEAD, data, len);
	cr->count--;
	cr->bytes -= len;
	if (chan_publish(&c->chan) == -1)
		return net_break(&c->net, errno);
	/* Dropped, its mailbox destroyed: sent by name instead. */
	if (session_posts_kept(c, &pos, 1, &kept) == -1)
		return -1;
	return kept == 1 ? 0 : 1;
}

/*
 * Posts a message on credit: the daemon reserved room for it, so it
 * cannot fail there and nothing is answered.  One write, no wait, or
 * with a channel no system call at all.  Returns 1 when the grant ended
 * meanwhile and the message must be sent instead.
 */
static int
send_post(struct mbx *c, const char *name, struct grant_slot *cr,
    const void *data, size_t len)
{
	/* The payload's bytes follow straight from data (session_req_send()). */
	struct body_post b = { .mailbox_id = cr->mailbox_id,
	    .payload = { data, len } };
	uint32_t id;

	if (send_channel(c, len) == -1)
		return -1;
	/*
	 * With a channel, every post goes through its ring, which mbxd takes
	 * in stamp order: a socket POST could be read after a later ring
	 * post.  One too large for a record is sent instead.
	 */
	if (c->chan.state == CHAN_OPEN)
		return BODY_POST_HEAD + len <= CHANNEL_REC_MAX ?
		    send_post_ring(c, name, cr, data, len) : 1;
	session_req_begin(c);
	body_post_put_head(&c->out, &b);
	if ((id = session_req_end(c, PROTO_POST, 0, len)) == 0)
		return -1;
	if (session_req_send(c, data, len) == -1)
		return -1;
	cr->count--;
	cr->bytes -= len;
	return 0;
}

/* Bytes of posts gathered for one write. */
#define POST_BATCH_BYTES	(256u * 1024)

/* send_post_batch() through the channel's ring. */
/*
 * One publication holds posts into one mailbox, at most BODY_DROPPED_MAX:
 * what a destroy drops of them is then a suffix, and the caller sends
 * that by name (see session_posts_kept()).
 */
static ssize_t
send_post_batch_ring(struct mbx *c, const struct mbx_smsg *v, size_t n)
{
	uint64_t pos[BODY_DROPPED_MAX], mailbox_id = 0;
	size_t i = 0, kept;

	order_before_write(c->net.fd);
	while (i < n && i < BODY_DROPPED_MAX) {
		struct grant_slot *cr = grant_cover(&c->grants, v[i].name,
		    v[i].len);
		struct body_post b;
		struct proto_writer w;
		size_t need = BODY_POST_HEAD + v[i].len;
		uint8_t *at;

		if (cr == NULL || need > CHANNEL_REC_MAX ||
		    (i > 0 && cr->mailbox_id != mailbox_id))
			break;
		mailbox_id = cr->mailbox_id;
		if ((at = chan_reserve(&c->chan, CHANNEL_POST, 0, need,
		    &pos[i])) == NULL) {
			/* What is reserved goes first; then wait for room. */
			if (i > 0)
				break;
			if (session_room_wait(c, need) == -1)
				return -1;
			continue;
		}
		b = (struct body_post){ .mailbox_id = cr->mailbox_id,
		    .payload = { v[i].data, v[i].len } };
		proto_writer_fixed(&w, at, BODY_POST_HEAD);
		body_post_put_head(&w, &b);
		if (v[i].len > 0)
			memcpy(at + BODY_POST_HEAD, v[i].data, v[i].len);
		cr->count--;
		cr->bytes -= v[i].len;
		i++;
	}
	/* One publication, one fence, at most one doorbell for the batch. */
	if (i == 0)
		return 0;
	if (chan_publish(&c->chan) == -1)
		return net_break(&c->net, errno);
	if (session_posts_kept(c, pos, i, &kept) == -1)
		return -1;
	return (ssize_t)kept;
}

/*
 * Posts the prefix of v[0..n) that credit covers: into the channel's
 * ring, published once, or without a channel copied into one write of at
 * most about POST_BATCH_BYTES.  How many (0 when credit does not cover
 * v[0]), or -1 when the handle broke (out of memory for the frames,
 * which carry the pending acknowledgements too, or a failed write).
 */
static ssize_t
send_post_batch(struct mbx *c, const struct mbx_smsg *v, size_t n)
{
	size_t i;

	if (send_channel(c, v[0].len) == -1)
		return -1;
	if (c->chan.state == CHAN_OPEN)
		return send_post_batch_ring(c, v, n);
	for (i = 0; i < n && (i == 0 || c->out.len < POST_BATCH_BYTES); i++) {
		struct grant_slot *cr = grant_cover(&c->grants, v[i].name,
		    v[i].len);
		struct body_post b;

		if (cr == NULL)
			break;
		if (i == 0) {
			session_req_begin(c);
		} else {
			c->req_off = c->out.len;
			(void)proto_frame_begin(&c->out);
		}
		/* Small posts are copied: one write for the batch. */
		b = (struct body_post){ .mailbox_id = cr->mailbox_id,
		    .payload = { v[i].data, v[i].len } };
		body_post_put(&c->out, &b);
		if (session_req_end(c, PROTO_POST, 0, 0) == 0)
			return net_break(&c->net, ENOMEM);
		cr->count--;
		cr->bytes -= v[i].len;
	}
	if (i > 0 && session_req_send(c, NULL, 0) == -1)
		return -1;
	return (ssize_t)i;
}

/* A SEND round trip; a success may bring credit for the next ones. */
static int
send_call(struct mbx *c, const char *name, const void *data, size_t len,
    int flags, int timeout_ms)
{
	/* The blob's length only; its bytes follow straight from data, so
	 * a large payload is not copied into the request first. */
	struct body_send b = { .name = mbx_str(name),
	    .timeout_ms = timeout_ms, .payload = { data, len } };
	struct answer a;
	uint32_t id, status;

	session_req_begin(c);
	body_send_put_head(&c->out, &b);
	id = session_req_end(c, PROTO_SEND,
	    (flags & MBX_SYNC) ? PROTO_SEND_SYNC :
	    c->use_credit ? PROTO_SEND_CREDIT : 0, len);
	if (id == 0 || session_call(c, id, data, len, &a) == -1 ||
	    session_reply_status(c, &a, &status) == -1)
		return -1;
	if (status != PROTO_OK)
		return session_status_fail(c, status);
	return send_grant_read(c, name, &a);
}

MBX_EXPORT int
mbx_send(mbx_t *c, const char *name, const void *data, size_t len,
    int flags, int timeout_ms)
{
	struct grant_slot *cr;

	if (c == NULL || !mbx_name_ok(name) || (data == NULL && len > 0) ||
	    (flags & ~MBX_SYNC) != 0 || timeout_ms < -1)
		return mbx_fail(EINVAL);
	if (c->net.broken)
		return mbx_fail(ECONNRESET);
	if (len > c->zerocopy_above)
		return send_large(c, name, data, len, flags, timeout_ms);
	/* A mailbox gone (as far as this process can know) takes its
	 * credit with it. */
	if (!(flags & MBX_SYNC) && c->use_credit &&
	    (cr = grant_cover(&c->grants, name, len)) != NULL) {
		if (session_drain_if_due(c) == -1)
			return -1;
		if ((cr = grant_cover(&c->grants, name, len)) != NULL) {
			int ret = send_post(c, name, cr, data, len);

			if (ret <= 0)
				return ret;
		}
	}
	return send_call(c, name, data, len, flags, timeout_ms);
}

/*
 * The body bytes one SENDV frame carries at most (a single larger message
 * goes alone).  mbxd queues nothing of a frame before it has all of it:
 * frames of up to 16 MiB left the receiver idle while the daemon read,
 * and 1 MiB messages in batches moved at 0.54x of one call at a time
 * (make bench, 2026-12-03).  With 256 KiB: 1.05-1.06x at 1 MiB and
 * 1.00-1.07x at 64 KiB, two runs; 1 MiB frames gave 0.89x and 0.79x.
 */
#define SENDV_FRAME_BYTES	(256u * 1024)

/* How many of v[0..n) one SENDV frame can carry (at least one). */
static size_t
sendv_fit(const struct mbx_smsg *v, size_t n)
{
	size_t body = 4, i;

	for (i = 0; i < n; i++) {
		body += BODY_SENDV_ITEM_HEAD(strlen(v[i].name)) + v[i].len;
		if (body > SENDV_FRAME_BYTES)
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
	struct body_sendv b;
	struct body_reply_sendv r;
	struct answer a;
	uint32_t id, status;
	size_t start;

	if (n > 64)
		n = 64;
	n = sendv_fit(v, n);
	*tried = n;
	b = (struct body_sendv){ .count = (uint32_t)n };
	session_req_begin(c);
	body_sendv_put(&c->out, &b);
	/* Names and lengths into c->out; payloads straight from the caller. */
	start = c->out.len;
	for (size_t i = 0; i < n; i++) {
		struct body_sendv_item it = { .name = mbx_str(v[i].name),
		    .payload = { v[i].data, v[i].len } };

		body_sendv_item_put_head(&c->out, &it);
	}
	{
		size_t extra = 0, off = start, k = 0;

		for (size_t i = 0; i < n; i++)
			extra += v[i].len;
		if ((id = session_req_end(c, PROTO_SENDV, 0, extra)) == 0)
			return -1;
		/* Interleave: [prefix+name0+len0][data0][name1+len1][data1]... */
		iov[k].iov_base = c->out.buf;
		iov[k++].iov_len = off;
		for (size_t i = 0; i < n; i++) {
			size_t field = BODY_SENDV_ITEM_HEAD(strlen(v[i].name));

			iov[k].iov_base = c->out.buf + off;
			iov[k++].iov_len = field;
			off += field;
			iov[k].iov_base = (void *)(uintptr_t)v[i].data;
			iov[k++].iov_len = v[i].len;
		}
		if (session_write(c, iov, k, -1) == -1)
			return -1;
	}
	if (session_answer_wait(c, id, &a) == -1 ||
	    session_reply_status(c, &a, &status) == -1)
		return -1;
	if (!body_reply_sendv_get(a.body, a.h.len, a.h.flags, &r) ||
	    r.enqueued > n)
		return net_break(&c->net, EPROTO);
	if (r.enqueued == 0)
		return session_status_fail(c,
		    status == PROTO_OK ? PROTO_EPROTO : status);
	return (ssize_t)r.enqueued;
}

MBX_EXPORT ssize_t
mbx_sendv(mbx_t *c, const struct mbx_smsg *v, size_t n, int timeout_ms)
{
	size_t i = 0;
	ssize_t done = 0;

	if (c == NULL || v == NULL || n == 0 || timeout_ms < -1)
		return mbx_fail(EINVAL);
	for (size_t k = 0; k < n; k++)
		if (!mbx_name_ok(v[k].name) ||
		    (v[k].data == NULL && v[k].len > 0))
			return mbx_fail(EINVAL);
	/* Zero-copy ones go alone, as mbx_send() sends them. */
	if (v[0].len > c->zerocopy_above)
		return mbx_send(c, v[0].name, v[0].data, v[0].len, 0,
		    timeout_ms) == -1 ? -1 : 1;
	for (size_t k = 1; k < n; k++)
		if (v[k].len > c->zerocopy_above)
			n = k;
	/* Whatever credit covers goes without a round trip. */
	if (c->use_credit && session_drain_if_due(c) == -1)
		return -1;
	while (i < n && c->use_credit) {
		ssize_t posted = send_post_batch(c, v + i, n - i);

		/* A write cut short: which posts went is unknown. */
		if (posted < 0)
			return -1;
		if (posted == 0)
			break;
		i += (size_t)posted;
	}
	if (i == n || (i > 0 && c->net.broken))
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


