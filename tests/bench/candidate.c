/*
 * candidate.c - prototypes of the two candidate data paths of the next
 * protocol (proto/PROTOCOL.md, "Version 6"), run through the same roles,
 * clock and workloads as the baselines (baseline.c), so that one run of
 * `make bench` compares them:
 *
 *   cand_sock  C1, socket posts: every send is one write() of a stamped
 *              record; the middle process (the prototype daemon) works in
 *              passes: it reads the clock, then every readable socket,
 *              takes the records stamped before the pass began, merges
 *              them by stamp, copies them into a queue with one in-flight
 *              entry per message, and forwards them in one write per
 *              destination and pass.  The receiver reads large chunks and
 *              acknowledges by storing a count in a page it shares with
 *              the daemon: no ACK frame, no syscall.
 *   cand_ring  C2, rings: every process has a channel (a tx ring it
 *              writes and an rx ring the daemon writes, 256 KiB each, in
 *              one memfd mapped by both) and a socket used only for
 *              wake-ups.  A send is a copy into the tx ring and a release
 *              store; a receive is a copy out of the rx ring and a release
 *              store; a side wakes the other with one byte only when that
 *              side said it sleeps (store flag, fence, look again).  The
 *              daemon copies each record out of the client's ring before
 *              looking at it, as the real daemon must.
 *
 * What they leave out of a real broker: names, permissions, grants and
 * their totals, several mailboxes; what they keep: the order rule (stamps,
 * passes, merge), a copy into daemon memory, per-message in-flight
 * bookkeeping, consumption by a store, and the wake-up protocol, which are
 * what the numbers depend on.  Messages from the senders go to the
 * receiver; messages from the receiver go to sender 0 (ping-pong).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

/*
 * Each ring of a channel.  At 64 KiB, 4 KiB messages moved 0.28-0.31 M
 * msg/s (0.36x POSIX mq: a wake-up every seven messages); at 256 KiB,
 * 0.96 M (1.24x), and 64 B messages 3.1 -> 4.9 M.
 */
#define CAND_RING		(256 * KIB)
/* A record's header: u32 len, u16 kind, u16 flags, u64 stamp. */
#define CAND_HDR		16u
#define CAND_KIND_MSG	1
#define CAND_KIND_PAD	2
#define CAND_FLAG_LAST	1		/* the sender's last message */
#define CAND_QUEUE	(4 * MIB)	/* the daemon's queue per destination */
#define CAND_INFLIGHT	8192		/* in-flight entries per destination */
#define CAND_READ		MIB
/* The ends of a run: the senders, then the receiver. */
#define CAND_ENDS		(FANIN_SENDERS + 1)

/*
 * What a sleeper waits for.  Data wakes it at the first byte (latency);
 * room wakes it only once half a ring is free, so that a full ring drains
 * in batches instead of one wake-up per message (hysteresis).
 */
#define CAND_WANT_DATA	1u
#define CAND_WANT_ROOM	2u

struct cand_rec {
	uint32_t	len;		/* payload bytes */
	uint16_t	kind;
	uint16_t	flags;
	uint64_t	stamp;		/* CLOCK_MONOTONIC ns before publish */
};

/*
 * One channel (C2), or the consumption page alone (C1).  Each group of
 * fields has one writer and a cache line of its own.
 */
struct cand_chan {
	/* written by the client */
	_Alignas(64) _Atomic uint64_t tx_tail;
	_Atomic uint64_t rx_head;	/* consumption: the acknowledgement */
	_Atomic uint32_t c_sleep;	/* the client sleeps: CAND_WANT_* */
	/* written by the daemon */
	_Alignas(64) _Atomic uint64_t tx_head;
	_Atomic uint64_t rx_tail;
	_Atomic uint32_t d_sleep;	/* the daemon sleeps: CAND_WANT_* */
	_Alignas(64) uint8_t tx[CAND_RING];
	_Alignas(64) uint8_t rx[CAND_RING];
};

struct cand {
	bool		 ring;		/* C2, else C1 */
	unsigned	 nends;		/* senders + 1 */
	struct cand_chan *chan[CAND_ENDS];	/* shared with the daemon */
	int		 cfd[CAND_ENDS];	/* client ends of the sockets */
	int		 dfd[CAND_ENDS];	/* daemon ends */
};

/* How long a side with nothing to do looks again before it sleeps. */
static int64_t cand_spin_ns = 5000;

static size_t
cand_need(size_t len)
{
	return CAND_HDR + ((len + 7) & ~(size_t)7);
}

static uint64_t
cand_clamp(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static void
cand_wake(int fd)
{
	char b = 1;

	(void)!write(fd, &b, 1);
}

static void
cand_drain(int fd)
{
	char b[64];

	while (read(fd, b, sizeof(b)) == (ssize_t)sizeof(b))
		;
}

/*
 * The client side of C2
 */

/* Waits until cond(ch) holds: spins, then sleeps with the flag protocol. */
static void
cand_client_wait(struct cand_chan *ch, int fd, uint32_t want,
    bool (*cond)(struct cand_chan *, const void *), const void *arg)
{
	int64_t t0 = now_ns();
	struct pollfd pfd = { fd, POLLIN, 0 };

	while (!cond(ch, arg))
		if (now_ns() - t0 > cand_spin_ns) {
			atomic_store(&ch->c_sleep, want);	/* seq_cst */
			if (!cond(ch, arg)) {
				poll(&pfd, 1, -1);
				cand_drain(fd);
			}
			atomic_store_explicit(&ch->c_sleep, 0,
			    memory_order_relaxed);
			t0 = now_ns();
		}
}

struct cand_room {
	uint64_t	tail;
	size_t		need;
};

static bool
cand_has_room(struct cand_chan *ch, const void *arg)
{
	const struct cand_room *r = arg;

	return r->tail + r->need - atomic_load_explicit(&ch->tx_head,
	    memory_order_acquire) <= CAND_RING;
}

static bool
cand_has_msg(struct cand_chan *ch, const void *arg)
{
	const uint64_t *head = arg;

	return atomic_load_explicit(&ch->rx_tail, memory_order_acquire) !=
	    *head;
}

/* One send: a record in the tx ring, published with its stamp. */
static void
cand_ring_send(struct cand_chan *ch, int fd, const void *buf, size_t len,
    uint16_t flags)
{
	uint64_t tail = atomic_load_explicit(&ch->tx_tail,
	    memory_order_relaxed);
	size_t off = tail % CAND_RING, need = cand_need(len);
	struct cand_room room = { tail, need };
	struct cand_rec h;

	if (off + need > CAND_RING) {	/* a record never wraps: pad */
		room.need = CAND_RING - off + need;
		cand_client_wait(ch, fd, CAND_WANT_ROOM, cand_has_room, &room);
		h = (struct cand_rec){ (uint32_t)(CAND_RING - off - CAND_HDR),
		    CAND_KIND_PAD, 0, 0 };
		memcpy(ch->tx + off, &h, sizeof(h));
		tail += CAND_RING - off;
		off = 0;
	} else {
		cand_client_wait(ch, fd, CAND_WANT_ROOM, cand_has_room, &room);
	}
	h = (struct cand_rec){ (uint32_t)len, CAND_KIND_MSG, flags,
	    (uint64_t)now_ns() };
	memcpy(ch->tx + off, &h, sizeof(h));
	memcpy(ch->tx + off + CAND_HDR, buf, len);
	atomic_store_explicit(&ch->tx_tail, tail + need, memory_order_release);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&ch->d_sleep, memory_order_relaxed) &
	    CAND_WANT_DATA)
		cand_wake(fd);
}

/* One receive into buf: the payload length, *flags. */
static size_t
cand_ring_recv(struct cand_chan *ch, int fd, void *buf, size_t cap,
    uint16_t *flags)
{
	uint64_t head = atomic_load_explicit(&ch->rx_head,
	    memory_order_relaxed);
	struct cand_rec h;

	for (;;) {
		cand_client_wait(ch, fd, CAND_WANT_DATA, cand_has_msg, &head);
		memcpy(&h, ch->rx + head % CAND_RING, sizeof(h));
		if (h.kind != CAND_KIND_PAD)
			break;
		head += CAND_HDR + h.len;
	}
	if (h.len > cap)
		h.len = (uint32_t)cap;
	memcpy(buf, ch->rx + head % CAND_RING + CAND_HDR, h.len);
	*flags = h.flags;
	/* The acknowledgement: a store, before the call returns. */
	head += cand_need(h.len);
	atomic_store_explicit(&ch->rx_head, head, memory_order_release);
	atomic_thread_fence(memory_order_seq_cst);
	if ((atomic_load_explicit(&ch->d_sleep, memory_order_relaxed) &
	    CAND_WANT_ROOM) && atomic_load_explicit(&ch->rx_tail,
	    memory_order_relaxed) - head <= CAND_RING / 2)
		cand_wake(fd);
	return h.len;
}

/*
 * The client side of C1
 */

struct cand_reader {
	uint8_t	*buf;
	size_t	 off, have;
	uint64_t consumed;
};

static int
cand_sock_send(int fd, uint8_t *frame, size_t len, uint16_t flags)
{
	struct cand_rec h = { (uint32_t)len, CAND_KIND_MSG, flags,
	    (uint64_t)now_ns() };

	memcpy(frame, &h, sizeof(h));
	return fdio_write_all(fd, frame, cand_need(len));
}

/* One receive from the socket's buffered stream; -1 on EOF. */
static ssize_t
cand_sock_recv(struct cand_chan *page, int fd, struct cand_reader *r, void *buf,
    size_t cap, uint16_t *flags)
{
	struct cand_rec h;

	for (;;) {
		if (r->have - r->off >= CAND_HDR) {
			memcpy(&h, r->buf + r->off, sizeof(h));
			if (r->have - r->off >= cand_need(h.len))
				break;
		}
		if (fdio_fill(fd, r->buf, CAND_READ, &r->off, &r->have) < 0)
			return -1;
	}
	if (h.len > cap)
		return -1;
	memcpy(buf, r->buf + r->off + CAND_HDR, h.len);
	r->off += cand_need(h.len);
	*flags = h.flags;
	atomic_store_explicit(&page->rx_head, ++r->consumed,
	    memory_order_release);
	return h.len;
}

/*
 * Roles
 */

static int
cand_sender(struct runctx *ctx, const struct spec *s, unsigned idx, void *arg)
{
	struct cand *p = arg;
	uint8_t *buf = malloc(cand_need(s->size));
	int rc = 0;

	if (buf == NULL)
		return run_fail(ctx, "out of memory");
	memset(buf, 0x5a, cand_need(s->size));
	run_ready(ctx);
	while (!run_stopped(ctx)) {
		if (p->ring)
			cand_ring_send(p->chan[idx], p->cfd[idx], buf, s->size,
			    0);
		else if (cand_sock_send(p->cfd[idx], buf, s->size, 0) < 0)
			return run_fail(ctx, "write: %s", strerror(errno));
	}
	if (p->ring)
		cand_ring_send(p->chan[idx], p->cfd[idx], buf, s->size,
		    CAND_FLAG_LAST);
	else
		rc = cand_sock_send(p->cfd[idx], buf, s->size, CAND_FLAG_LAST);
	free(buf);
	return rc < 0 ? run_fail(ctx, "write: %s", strerror(errno)) : 0;
}

static int
cand_receiver(struct runctx *ctx, const struct spec *s, unsigned idx,
    void *arg)
{
	struct cand *p = arg;
	unsigned me = p->nends - 1, lasts = 0;
	struct cand_reader rd = { malloc(CAND_READ), 0, 0, 0 };
	uint8_t *buf = malloc(s->size);
	uint64_t msgs = 0, bytes = 0;
	uint16_t flags;

	(void)idx;
	if (buf == NULL || rd.buf == NULL)
		return run_fail(ctx, "out of memory");
	run_ready(ctx);
	while (lasts < s->senders) {
		ssize_t len = p->ring ? (ssize_t)cand_ring_recv(p->chan[me],
		    p->cfd[me], buf, s->size, &flags) :
		    cand_sock_recv(p->chan[me], p->cfd[me], &rd, buf, s->size,
		    &flags);

		if (len < 0)
			return run_fail(ctx, "recv: EOF or bad record");
		msgs++;
		bytes += (uint64_t)len;
		lasts += (flags & CAND_FLAG_LAST) != 0;
		run_tick(ctx, msgs, bytes);
	}
	run_report(ctx, msgs, bytes);
	return 0;
}

static int
cand_ping(struct runctx *ctx, const struct spec *s, unsigned idx, void *arg)
{
	struct cand *p = arg;
	struct cand_reader rd = { malloc(CAND_READ), 0, 0, 0 };
	uint8_t *buf = malloc(cand_need(s->size)), *in = malloc(s->size);
	uint64_t n = 0;
	uint16_t flags;
	int64_t t0;

	(void)idx;
	if (buf == NULL || in == NULL || rd.buf == NULL)
		return run_fail(ctx, "out of memory");
	memset(buf, 0x5a, cand_need(s->size));
	run_ready(ctx);
	while (!run_stopped(ctx)) {
		t0 = now_ns();
		if (p->ring) {
			cand_ring_send(p->chan[0], p->cfd[0], buf, s->size, 0);
			cand_ring_recv(p->chan[0], p->cfd[0], in, s->size,
			    &flags);
		} else if (cand_sock_send(p->cfd[0], buf, s->size, 0) < 0 ||
		    cand_sock_recv(p->chan[0], p->cfd[0], &rd, in, s->size,
		    &flags) < 0) {
			return run_fail(ctx, "ping: %s", strerror(errno));
		}
		if (run_timing(ctx))
			run_latency(ctx, (uint64_t)(now_ns() - t0));
		n++;
		run_tick(ctx, n, n * s->size);
	}
	run_report(ctx, n, n * s->size);
	if (p->ring)
		cand_ring_send(p->chan[0], p->cfd[0], buf, s->size,
		    CAND_FLAG_LAST);
	else if (cand_sock_send(p->cfd[0], buf, s->size, CAND_FLAG_LAST) < 0)
		return run_fail(ctx, "ping: %s", strerror(errno));
	return 0;
}

static int
cand_pong(struct runctx *ctx, const struct spec *s, unsigned idx, void *arg)
{
	struct cand *p = arg;
	unsigned me = p->nends - 1;
	struct cand_reader rd = { malloc(CAND_READ), 0, 0, 0 };
	uint8_t *buf = malloc(cand_need(s->size));
	uint16_t flags;

	(void)idx;
	if (buf == NULL || rd.buf == NULL)
		return run_fail(ctx, "out of memory");
	run_ready(ctx);
	for (;;) {
		ssize_t len = p->ring ? (ssize_t)cand_ring_recv(p->chan[me],
		    p->cfd[me], buf + CAND_HDR, s->size, &flags) :
		    cand_sock_recv(p->chan[me], p->cfd[me], &rd, buf + CAND_HDR,
		    s->size, &flags);

		if (len < 0)
			return run_fail(ctx, "pong: EOF or bad record");
		if (flags & CAND_FLAG_LAST)
			return 0;
		if (p->ring)
			cand_ring_send(p->chan[me], p->cfd[me], buf + CAND_HDR,
			    (size_t)len, 0);
		else {
			/* The record header goes in front of the payload. */
			memmove(buf, buf + CAND_HDR, (size_t)len);
			if (cand_sock_send(p->cfd[me], buf, (size_t)len, 0) < 0)
				return run_fail(ctx, "pong: %s",
				    strerror(errno));
		}
	}
}

/*
 * The prototype daemon
 */

/*
 * Messages bound for one end.  Payloads sit in an arena (copied there
 * once, straight out of the client's memory); the order of delivery is a
 * FIFO of references, filled pass by pass in stamp order; a reference
 * delivered is in flight until the end's consumption passes it.  Arena
 * room is given back a pass at a time: a pass's records are contiguous in
 * the arena and delivered before the next pass's.
 */
struct cand_ref {
	uint64_t	 q_off;		/* in the arena */
	uint32_t	 need;
	uint64_t	 release;	/* arena position freed once consumed */
	uint64_t	 rx_end;	/* C2: ring position after it */
};

struct cand_dest {
	uint8_t		*q;		/* the arena, circular */
	uint64_t	 q_tail, q_done;	/* byte positions */
	uint64_t	 pass_start;	/* q_tail when this pass began */
	struct cand_ref	*ref;		/* CAND_INFLIGHT, circular */
	size_t		 r_head, r_sent, r_tail;	/* consumed, delivered,
						 * queued */
	uint64_t	 rx_tail;	/* C2: how far the rx ring is written */
	uint64_t	 acked;		/* consumption seen */
	uint8_t		*out;		/* C1: what waits to be written */
	size_t		 out_len;
};

/* A record taken in a pass, before the merge by stamp. */
struct cand_taken {
	uint64_t	 stamp;
	unsigned	 dest;
	uint32_t	 need;
	uint64_t	 q_off;
};

struct cand_daemon {
	struct cand	*p;
	struct cand_dest	 dest[CAND_ENDS];
	uint64_t	 last_stamp[CAND_ENDS];	/* the clamp, per source */
	uint64_t	 tx_head[CAND_ENDS];	/* C2: consumed, per source */
	uint8_t		*inbuf[CAND_ENDS];	/* C1: bytes read, per source */
	size_t		 in_off[CAND_ENDS], in_have[CAND_ENDS];
	struct cand_taken	*taken;
	size_t		 ntaken;
	bool		 stamp_deferred;	/* a record waits for a pass */
	bool		 room_deferred;	/* ... for the receiver to consume */
};

#define CAND_TAKEN	CAND_INFLIGHT

static unsigned
cand_route(const struct cand *p, unsigned src)
{
	return src == p->nends - 1 ? 0 : p->nends - 1;
}

static int
cand_cmp_taken(const void *a, const void *b)
{
	const struct cand_taken *x = a, *y = b;

	return x->stamp < y->stamp ? -1 : x->stamp > y->stamp;
}

/*
 * Takes one record of src (at rec, which may be client memory: read once
 * into the arena, then looked at there) if its clamped stamp is before t0
 * and there is room for it: true when taken.
 */
static bool
cand_take(struct cand_daemon *d, unsigned src, const uint8_t *rec, size_t need,
    uint64_t t0)
{
	unsigned to = cand_route(d->p, src);
	struct cand_dest *dst = &d->dest[to];
	size_t off = dst->q_tail % CAND_QUEUE, skip = 0;
	struct cand_rec h;
	uint64_t stamp;

	if (off + need > CAND_QUEUE)	/* no record wraps in the arena */
		skip = CAND_QUEUE - off;
	if (dst->q_tail + skip + need - dst->q_done > CAND_QUEUE ||
	    dst->r_tail - dst->r_head + d->ntaken >= CAND_INFLIGHT ||
	    d->ntaken == CAND_TAKEN) {
		d->room_deferred = true;	/* after some consumption */
		return false;
	}
	memcpy(dst->q + (off + skip) % CAND_QUEUE, rec, need);
	memcpy(&h, dst->q + (off + skip) % CAND_QUEUE, sizeof(h));
	if (cand_need(h.len) != need)
		return false;	/* changed under us: the real daemon closes */
	stamp = h.stamp < d->last_stamp[src] ? d->last_stamp[src] : h.stamp;
	if (stamp >= t0) {
		d->stamp_deferred = true;	/* the next pass takes it */
		return false;
	}
	dst->q_tail += skip + need;
	d->taken[d->ntaken++] = (struct cand_taken){ stamp, to, (uint32_t)need,
	    (off + skip) % CAND_QUEUE };
	d->last_stamp[src] = stamp;
	return true;
}

/* C2: the records of one client's tx ring; true if any was taken. */
static bool
cand_take_ring(struct cand_daemon *d, unsigned src, uint64_t t0)
{
	struct cand_chan *ch = d->p->chan[src];
	uint64_t head = d->tx_head[src], tail;
	bool any = false;

	/* Hostile memory: one load, clamped; each header copied before it
	 * is looked at, each record copied before it is decoded. */
	tail = cand_clamp(atomic_load_explicit(&ch->tx_tail,
	    memory_order_acquire), head, head + CAND_RING);
	while (tail - head >= CAND_HDR) {
		struct cand_rec h;
		size_t off = head % CAND_RING;

		memcpy(&h, ch->tx + off, sizeof(h));
		if (h.len > CAND_RING - CAND_HDR - off ||
		    cand_need(h.len) > tail - head)
			break;		/* the real daemon closes it */
		if (h.kind == CAND_KIND_PAD) {
			head += CAND_HDR + h.len;
			continue;
		}
		if (!cand_take(d, src, ch->tx + off, cand_need(h.len), t0))
			break;
		head += cand_need(h.len);
		any = true;
	}
	if (head != d->tx_head[src]) {
		d->tx_head[src] = head;
		atomic_store_explicit(&ch->tx_head, head,
		    memory_order_release);
		atomic_thread_fence(memory_order_seq_cst);
		if ((atomic_load_explicit(&ch->c_sleep, memory_order_relaxed) &
		    CAND_WANT_ROOM) && atomic_load_explicit(&ch->tx_tail,
		    memory_order_relaxed) - head <= CAND_RING / 2)
			cand_wake(d->p->dfd[src]);
	}
	return any;
}

/* C1: the whole records of one socket's buffered input. */
static bool
cand_take_sock(struct cand_daemon *d, unsigned src, uint64_t t0)
{
	bool any = false;

	while (d->in_have[src] - d->in_off[src] >= CAND_HDR) {
		uint8_t *rec = d->inbuf[src] + d->in_off[src];
		struct cand_rec h;

		memcpy(&h, rec, sizeof(h));
		if (d->in_have[src] - d->in_off[src] < cand_need(h.len) ||
		    !cand_take(d, src, rec, cand_need(h.len), t0))
			break;
		d->in_off[src] += cand_need(h.len);
		any = true;
	}
	return any;
}

/* The pass's records, merged by stamp, onto their ends' FIFOs. */
static void
cand_enqueue(struct cand_daemon *d, bool several)
{
	if (several)
		qsort(d->taken, d->ntaken, sizeof(d->taken[0]), cand_cmp_taken);
	for (size_t i = 0; i < d->ntaken; i++) {
		struct cand_taken *t = &d->taken[i];
		struct cand_dest *dst = &d->dest[t->dest];

		dst->ref[dst->r_tail++ % CAND_INFLIGHT] = (struct cand_ref){
		    t->q_off, t->need, 0, 0 };
	}
	/* The last reference of each end's pass gives the pass back. */
	for (unsigned e = 0; e < d->p->nends; e++) {
		struct cand_dest *dst = &d->dest[e];

		if (dst->q_tail != dst->pass_start && dst->r_tail > 0)
			dst->ref[(dst->r_tail - 1) % CAND_INFLIGHT].release =
			    dst->q_tail;
		dst->pass_start = dst->q_tail;
	}
	d->ntaken = 0;
}

/* Frees what the end has consumed: the acknowledgements. */
static void
cand_reap(struct cand_daemon *d, unsigned e)
{
	struct cand_dest *dst = &d->dest[e];
	struct cand_chan *ch = d->p->chan[e];
	uint64_t acked = atomic_load_explicit(&ch->rx_head,
	    memory_order_acquire);

	if (d->p->ring)
		acked = cand_clamp(acked, dst->acked, dst->rx_tail);
	dst->acked = acked;
	while (dst->r_head != dst->r_sent) {
		struct cand_ref *r = &dst->ref[dst->r_head % CAND_INFLIGHT];
		/* C1 counts messages, C2 ring bytes. */
		uint64_t end = d->p->ring ? r->rx_end :
		    (uint64_t)dst->r_head + 1;

		if (end > acked)
			break;
		if (r->release != 0)
			dst->q_done = r->release;
		dst->r_head++;
	}
}

/* Hands queued records on: into the rx ring (C2) or the output (C1). */
static bool
cand_deliver(struct cand_daemon *d, unsigned e)
{
	struct cand_dest *dst = &d->dest[e];
	struct cand_chan *ch = d->p->chan[e];
	uint64_t rx = dst->rx_tail;
	bool any = false;

	while (dst->r_sent != dst->r_tail) {
		struct cand_ref *r = &dst->ref[dst->r_sent % CAND_INFLIGHT];

		if (d->p->ring) {
			size_t off = rx % CAND_RING;
			uint64_t pad = off + r->need > CAND_RING ?
			    CAND_RING - off : 0;

			if (rx + pad + r->need - dst->acked > CAND_RING)
				break;
			if (pad > 0) {
				struct cand_rec ph = {
				    (uint32_t)(pad - CAND_HDR), CAND_KIND_PAD,
				    0, 0 };

				memcpy(ch->rx + off, &ph, sizeof(ph));
				rx += pad;
				off = 0;
			}
			memcpy(ch->rx + off, dst->q + r->q_off, r->need);
			rx += r->need;
		} else {
			if (dst->out_len + r->need > CAND_READ)
				break;
			memcpy(dst->out + dst->out_len, dst->q + r->q_off,
			    r->need);
			dst->out_len += r->need;
		}
		r->rx_end = rx;
		dst->r_sent++;
		any = true;
	}
	if (d->p->ring && any) {
		dst->rx_tail = rx;
		atomic_store_explicit(&ch->rx_tail, rx, memory_order_release);
		atomic_thread_fence(memory_order_seq_cst);
		if (atomic_load_explicit(&ch->c_sleep, memory_order_relaxed) &
		    CAND_WANT_DATA)
			cand_wake(d->p->dfd[e]);
	}
	if (!d->p->ring && dst->out_len > 0) {
		ssize_t n = write(d->p->dfd[e], dst->out, dst->out_len);

		if (n > 0) {
			memmove(dst->out, dst->out + n, dst->out_len -
			    (size_t)n);
			dst->out_len -= (size_t)n;
			any = true;
		}
	}
	return any;
}

/* C2: nothing to do anywhere?  Checked again after the sleep flags. */
static bool
cand_ring_idle(struct cand_daemon *d)
{
	for (unsigned e = 0; e < d->p->nends; e++) {
		struct cand_chan *ch = d->p->chan[e];

		const struct cand_dest *dst = &d->dest[e];

		if (atomic_load_explicit(&ch->tx_tail, memory_order_acquire) !=
		    d->tx_head[e])
			return false;
		/* Deliveries waiting for room go on at half a ring. */
		if (dst->r_sent != dst->r_tail && dst->rx_tail -
		    atomic_load_explicit(&ch->rx_head, memory_order_acquire) <=
		    CAND_RING / 2)
			return false;
	}
	return true;
}

static int
cand_daemon(struct runctx *ctx, const struct spec *s, unsigned idx, void *arg)
{
	struct cand_daemon *d = calloc(1, sizeof(*d));
	struct pollfd pfd[CAND_ENDS];
	struct cand *p = arg;
	int64_t idle_since = 0;
	bool deferred = false;

	(void)s;
	(void)idx;
	if (d == NULL)
		return run_fail(ctx, "out of memory");
	d->p = p;
	d->taken = malloc(CAND_TAKEN * sizeof(d->taken[0]));
	if (d->taken == NULL)
		return run_fail(ctx, "out of memory");
	for (unsigned e = 0; e < p->nends; e++) {
		struct cand_dest *dst = &d->dest[e];

		dst->q = calloc(1, CAND_QUEUE);
		dst->ref = malloc(CAND_INFLIGHT * sizeof(dst->ref[0]));
		dst->out = malloc(CAND_READ);
		d->inbuf[e] = malloc(CAND_READ);
		if (dst->q == NULL || dst->ref == NULL || dst->out == NULL ||
		    d->inbuf[e] == NULL)
			return run_fail(ctx, "out of memory");
		pfd[e] = (struct pollfd){ p->dfd[e], POLLIN, 0 };
	}
	run_ready(ctx);
	for (;;) {
		bool work = false, several = false;
		unsigned sources = 0;
		uint64_t t0;

		if (!p->ring) {
			/*
			 * C1: sleep in poll unless input waits already.  A
			 * full queue waits for consumption, which only a
			 * store says: the prototype looks again every
			 * millisecond (the real one would have the receiver
			 * wake it, as C2 does).
			 */
			for (unsigned e = 0; e < p->nends; e++)
				pfd[e].events = POLLIN | (d->dest[e].out_len ?
				    POLLOUT : 0);
			if (poll(pfd, p->nends, deferred ? 0 :
			    d->room_deferred ? 1 : -1) < 0 && errno != EINTR)
				return run_fail(ctx, "poll: %s",
				    strerror(errno));
		}
		t0 = (uint64_t)now_ns();
		atomic_thread_fence(memory_order_seq_cst);
		d->room_deferred = false;	/* said anew by this pass */
		for (unsigned e = 0; e < p->nends; e++) {
			bool took;

			if (p->ring) {
				took = cand_take_ring(d, e, t0);
			} else {
				if (pfd[e].revents & POLLIN) {
					size_t *off = &d->in_off[e],
					    *have = &d->in_have[e];
					ssize_t n;

					memmove(d->inbuf[e], d->inbuf[e] + *off,
					    *have - *off);
					*have -= *off;
					*off = 0;
					n = *have == CAND_READ ? -1 :
					    read(p->dfd[e], d->inbuf[e] + *have,
					    CAND_READ - *have);
					if (n > 0)
						*have += (size_t)n;
					else if (n == 0)
						pfd[e].fd = -1;
				}
				took = cand_take_sock(d, e, t0);
			}
			sources += took;
			work |= took;
		}
		several = sources > 1;
		cand_enqueue(d, several);
		/* C1: records stamped after this pass began are taken by the
		 * next one, without sleeping in poll first. */
		deferred = d->stamp_deferred;
		d->stamp_deferred = false;
		for (unsigned e = 0; e < p->nends; e++) {
			cand_reap(d, e);
			work |= cand_deliver(d, e);
		}
		if (!p->ring || work) {
			idle_since = 0;
			continue;
		}
		/* C2, nothing this pass: spin a little, then sleep. */
		if (idle_since == 0)
			idle_since = now_ns();
		if (now_ns() - idle_since < cand_spin_ns)
			continue;
		for (unsigned e = 0; e < p->nends; e++)
			atomic_store(&p->chan[e]->d_sleep, CAND_WANT_DATA |
			    (d->dest[e].r_sent != d->dest[e].r_tail ?
			    CAND_WANT_ROOM : 0));
		if (cand_ring_idle(d))
			poll(pfd, p->nends, -1);
		for (unsigned e = 0; e < p->nends; e++) {
			atomic_store_explicit(&p->chan[e]->d_sleep, 0,
			    memory_order_relaxed);
			if (pfd[e].revents & POLLIN)
				cand_drain(p->dfd[e]);
		}
		idle_since = 0;
	}
}

static void
cand_close(struct cand *p)
{
	for (unsigned e = 0; e < CAND_ENDS; e++) {
		if (p->chan[e] != NULL)
			munmap(p->chan[e], sizeof(*p->chan[e]));
		if (p->cfd[e] >= 0)
			close(p->cfd[e]);
		if (p->dfd[e] >= 0)
			close(p->dfd[e]);
	}
}

void
candidate_run(const struct spec *s, struct result *r)
{
	struct cand p = { .ring = s->path == P_CAND_RING,
	    .nends = s->senders + 1 };
	struct job j = { .arg = &p, .middle = cand_daemon };
	char err[160] = "";

	const char *spin = getenv("MBX_BENCH_CAND_SPIN_NS");

	if (spin != NULL)
		cand_spin_ns = atoll(spin);
	for (unsigned e = 0; e < CAND_ENDS; e++)
		p.cfd[e] = p.dfd[e] = -1;
	for (unsigned e = 0; e < p.nends; e++) {
		int sp[2], mfd = memfd_create("mbx-cand", MFD_CLOEXEC);

		if (mfd < 0 || ftruncate(mfd, sizeof(struct cand_chan)) < 0 ||
		    (p.chan[e] = mmap(NULL, sizeof(struct cand_chan),
		    PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0)) ==
		    MAP_FAILED ||
		    socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0) {
			snprintf(err, sizeof(err), "channel: %s",
			    strerror(errno));
			p.chan[e] = NULL;
			if (mfd >= 0)
				close(mfd);
			goto fail;
		}
		close(mfd);
		p.cfd[e] = sp[0];
		p.dfd[e] = sp[1];
		/* C2's daemon end only carries wake bytes: never block on
		 * it; C1's daemon writes what the socket takes. */
		fcntl(sp[1], F_SETFL, O_NONBLOCK);
		if (p.ring)
			fcntl(sp[0], F_SETFL, O_NONBLOCK);
	}
	if (s->kind == K_PINGPONG) {
		j.sender = cand_ping;
		j.receiver = cand_pong;
	} else {
		j.sender = cand_sender;
		j.receiver = cand_receiver;
	}
	run_job(s, &j, r);
	snprintf(r->note, sizeof(r->note), "prototype");
	cand_close(&p);
	return;
fail:
	memset(r, 0, sizeof(*r));
	r->spec = *s;
	snprintf(r->err, sizeof(r->err), "%s", err);
	cand_close(&p);
}
