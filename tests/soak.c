/*
 * soak.c - mbx under churn for a while: many senders, several mailboxes,
 * receivers killed with SIGKILL and replaced, bindings moved by an
 * operator, and afterwards an account of every message.
 *
 *	mbx-soak --mbxd PATH [--seconds N] [--seed S] [--wrapper CMD]
 *
 * Processes (all forked from this one, around a private mbxd):
 * - senders: each sends to the mailboxes at random; every message carries
 *   its sender, mailbox, sequence number, length and a checksum of a
 *   payload derived from them.  Most sends wait at most 200 ms, some are
 *   MBX_SYNC with a shorter deadline, one sender posts on credit, a few
 *   messages are large (zero-copy).  Every attempt and its outcome is
 *   logged in shared memory before and after the call.
 * - receivers, two kinds, each standing by on one mailbox (MBX_BIND_QUEUE)
 *   and taking over in turn:
 *   "lib" receivers use libmbx (prefetch on) and log each message after
 *   mbx_recv() returned it, which is after its acknowledgement went out;
 *   they kill themselves with SIGKILL after a random count, holding
 *   prefetched messages they never acknowledged.
 *   "raw" receivers speak the protocol themselves: log the message, then
 *   acknowledge it, then log that; the orchestrator kills them with
 *   SIGKILL at random moments, mid-frame included.
 *   "ack" receivers do the same through libmbx's explicit acknowledgement
 *   (MBX_OPT_ACK, mbx_ack()), and are killed the same way.
 * - the orchestrator (this process) kills raw receivers, moves bindings to
 *   standbys (mbx_rebind) or evicts receivers at random, half the time
 *   from receivers in the middle of their work, half the time from
 *   receivers it stopped first, and keeps every mailbox staffed.
 *
 * When the time is up the senders stop, the receivers drain every
 * mailbox, and the logs are checked:
 *   loss        every successful send was received (at least once);
 *   nothing     a failed send was never received (acknowledged, for a
 *               sync send withdrawn after delivery);
 *   duplicates  a message received again only after a reception that
 *               sent no acknowledgement, or whose binding an operator
 *               took away with a call begun before the acknowledgement
 *               was written (mbx(7), guarantee 4); a receive that had
 *               returned before the call stays received;
 *   traffic     every sender's messages reached every mailbox, at
 *               least FLOOR_PER_S a second;
 *   fifo        each receiver got each sender's messages to a mailbox in
 *               order (a redelivery may repeat one, never go back);
 *   checksums   every payload intact;
 *   errors      no call failed with an errno it should not have;
 *   churn       receivers were killed, killed themselves and had their
 *               bindings moved, running and stopped;
 * and the daemon: alive throughout, its descriptors and memory back to
 * (near) their start once every client is gone, a clean exit on SIGTERM,
 * and no sanitizer report in its log (which needs a sanitizer build or a
 * --wrapper such as valgrind: `make soak` uses build/asan).  The last line is
 * "soak: N passed, M failed"; the exit status is 0 only when M is 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "mbx.h"
#include "mbxd-proc.h"
#include "proto.h"

#define NSENDERS	4
#define NMAILBOXES	3
#define ATTEMPTS_MAX	400000		/* per sender */
#define ENTRIES_MAX	3000000		/* receptions, in all */
#define RECEIVERS_MAX	4096		/* over the whole run */
#define STAFF		3		/* receivers per mailbox */
#define LARGE_LEN	(300u * 1024)	/* above MBX_ZEROCOPY_MIN */
#define BUF_LEN		(1u << 20)
#define MAGIC		0x6d62786bu	/* "mbxk" */
#define GENS		64		/* bindings per receiver, tracked */
#define FLOOR_PER_S	20		/* deliveries per stream and second */

static const char *const mailboxes[NMAILBOXES] = { "soak0", "soak1",
    "soak2" };
static const long capacities[NMAILBOXES] = { 64, 8, MBX_UNBOUNDED };

/* What every message starts with. */
struct head {
	uint32_t	magic;
	uint32_t	sender;
	uint32_t	mbox;
	uint32_t	seq;
	uint32_t	len;		/* whole payload, head included */
	uint32_t	sum;		/* FNV-1a of the rest */
};

enum outcome { PENDING, SENT_OK, SENT_FAILED };

struct attempt {
	uint32_t	mbox;
	uint8_t		sync;
	_Atomic uint8_t	outcome;
	uint16_t	err;		/* the errno of a failure */
};

enum state { GOT = 1, ACKED = 2, STALE = 3 };

struct entry {
	uint64_t	stamp;
	uint64_t	acked;		/* after its ACK was written, or 0 */
	uint32_t	sender;
	uint32_t	mbox;
	uint32_t	seq;
	uint16_t	rid;
	uint16_t	gen;		/* the receiver's bindings so far */
	uint8_t		sum_ok;
	_Atomic uint8_t	state;		/* 0 until written */
};

enum kind { LIB, RAW, ACK };

struct receiver {
	_Atomic long	client_id;	/* 0 until connected */
	pid_t		pid;
	uint8_t		kind;
	uint8_t		mbox;
	/*
	 * Bindings: gen counts those the receiver lost and noticed (a
	 * REVOKE or EPERM; only an operator takes a binding away here).
	 * bound_at[g] is the stamp taken before it asked for binding g,
	 * moved_at[g] (the orchestrator's, 0 if none) the stamp taken
	 * before the operator's call that took binding g away.
	 */
	_Atomic unsigned gen;
	_Atomic uint64_t bound_at[GENS];
	uint64_t	moved_at[GENS];
	uint64_t	last_stamp;	/* its last reception (accounting) */
	long		count;		/* its receptions */
	bool		alive;		/* orchestrator's view */
	bool		killed;		/* by the orchestrator */
	char		end;		/* k killed, s itself, e exit */
};

struct shared {
	_Atomic uint64_t clock;
	_Atomic uint32_t nentries;
	_Atomic int	stop;		/* senders: stop */
	_Atomic int	drained;	/* receivers: exit when idle */
	_Atomic long	unexpected;	/* calls failing oddly */
	_Atomic long	receptions;
	struct attempt	attempts[NSENDERS][ATTEMPTS_MAX];
	_Atomic uint32_t nattempts[NSENDERS];
	struct receiver	receivers[RECEIVERS_MAX];
	struct entry	entries[ENTRIES_MAX];
};

static struct shared *sh;
static struct mbxd_proc daemon_;
static unsigned long long seed;
static int nreceivers;
static long kills, rebinds, evicts, selfkills, running_moves, missed;

static uint64_t
xorshift(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static uint32_t
fnv1a(const uint8_t *p, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* The bytes after the head: a stream derived from the message's ids. */
static void
fill(uint8_t *p, size_t len, uint32_t sender, uint32_t seq)
{
	uint64_t s = ((uint64_t)sender << 32 | seq) * 2 + 1;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = xorshift(&s);

		memcpy(p + i, &v, len - i < 8 ? len - i : 8);
	}
}

static void
unexpected(const char *who, const char *call, int err)
{
	fprintf(stderr, "soak: %s: %s failed: %s\n", who, call,
	    strerrorname_np(err) ? strerrorname_np(err) : "?");
	atomic_fetch_add(&sh->unexpected, 1);
}

/*
 * Senders
 */

static int
sender_main(int id)
{
	uint64_t rng = seed * 7919 + (uint64_t)id + 1;
	uint32_t seq = 0;
	uint8_t *buf = malloc(LARGE_LEN);
	mbx_t *c = mbx_open(daemon_.sock);
	char who[32];

	snprintf(who, sizeof(who), "sender %d", id);
	if (c == NULL || buf == NULL) {
		unexpected(who, "mbx_open", errno);
		return 1;
	}
	if (id == 0 && mbx_setopt(c, MBX_OPT_CREDIT, 1) != 0)
		unexpected(who, "mbx_setopt", errno);
	while (!atomic_load(&sh->stop) && seq < ATTEMPTS_MAX) {
		struct attempt *a = &sh->attempts[id][seq];
		uint32_t mbox = (uint32_t)(xorshift(&rng) % NMAILBOXES);
		unsigned k = (unsigned)(xorshift(&rng) % 1000);
		size_t len = sizeof(struct head) + (k < 5 ? LARGE_LEN -
		    sizeof(struct head) : xorshift(&rng) % 2000);
		bool sync = k >= 900 && id != 0;
		struct head h = { MAGIC, (uint32_t)id, mbox, seq, (uint32_t)len,
		    0 };
		int r;

		fill(buf + sizeof(h), len - sizeof(h), (uint32_t)id, seq);
		h.sum = fnv1a(buf + sizeof(h), len - sizeof(h));
		memcpy(buf, &h, sizeof(h));
		a->mbox = mbox;
		a->sync = sync;
		atomic_store(&a->outcome, PENDING);
		atomic_store(&sh->nattempts[id], seq + 1);
		r = mbx_send(c, mailboxes[mbox], buf, len, sync ? MBX_SYNC : 0,
		    sync ? 100 : 200);
		if (r == 0) {
			atomic_store(&a->outcome, SENT_OK);
		} else {
			a->err = (uint16_t)errno;
			atomic_store(&a->outcome, SENT_FAILED);
			if (errno != ETIMEDOUT && errno != EAGAIN &&
			    errno != ENOBUFS)
				unexpected(who, "mbx_send", errno);
			if (errno == ECONNRESET)
				break;
		}
		seq++;
	}
	mbx_close(c);
	free(buf);
	return 0;
}

/*
 * Receivers
 */

/* A receiver noticed that it lost its binding. */
static unsigned
lost_binding(int rid, unsigned gen)
{
	struct receiver *me = &sh->receivers[rid];

	atomic_store(&me->gen, gen + 1);
	return gen + 1;
}

/* A receiver is about to ask for its binding number gen. */
static void
binding_asked(int rid, unsigned gen)
{
	if (gen < GENS)
		atomic_store(&sh->receivers[rid].bound_at[gen],
		    atomic_fetch_add(&sh->clock, 1));
}

/*
 * Logs one message; returns its entry (state still to be set).  gen
 * counts the bindings the receiver lost so far: what it held goes back
 * to the queue then and may come to it again, so order is checked within
 * one binding.
 */
static struct entry *
record(int rid, unsigned gen, const uint8_t *p, size_t len)
{
	struct head h;
	uint32_t i = atomic_fetch_add(&sh->nentries, 1);
	struct entry *e;

	if (i >= ENTRIES_MAX)
		return NULL;
	e = &sh->entries[i];
	memset(&h, 0, sizeof(h));
	if (len >= sizeof(h))
		memcpy(&h, p, sizeof(h));
	e->stamp = atomic_fetch_add(&sh->clock, 1);
	e->sender = h.sender;
	e->mbox = h.mbox;
	e->seq = h.seq;
	e->rid = (uint16_t)rid;
	e->gen = (uint16_t)gen;
	e->sum_ok = len >= sizeof(h) && h.magic == MAGIC && h.len == len &&
	    h.sender < NSENDERS && h.mbox < NMAILBOXES &&
	    fnv1a(p + sizeof(h), len - sizeof(h)) == h.sum;
	atomic_fetch_add(&sh->receptions, 1);
	return e;
}

/*
 * A libmbx receiver's mbx_recv() failed: true to receive again (a time-out
 * before the drain, or a binding an operator moved, which it asks for
 * again), false to stop.
 */
static bool
recv_failed(int rid, mbx_t *c, const char *name, unsigned *gen,
    const char *who)
{
	if (errno == ETIMEDOUT)
		return !atomic_load(&sh->drained);
	if (errno == EPERM) {
		/* An operator moved the binding: stand by again. */
		*gen = lost_binding(rid, *gen);
		binding_asked(rid, *gen);
		if (mbx_bind(c, name, MBX_BIND_QUEUE) != 0)
			unexpected(who, "mbx_bind", errno);
		return true;
	}
	unexpected(who, "mbx_recv", errno);
	return false;
}

static int
lib_receiver(int rid)
{
	struct receiver *me = &sh->receivers[rid];
	const char *name = mailboxes[me->mbox];
	uint64_t rng = seed * 104729 + (uint64_t)rid;
	long life = 50 + (long)(xorshift(&rng) % 3000), got = 0;
	unsigned gen = 0;
	uint8_t *buf = malloc(BUF_LEN);
	mbx_t *c = mbx_open(daemon_.sock);

	if (c == NULL || buf == NULL) {
		unexpected("lib receiver", "mbx_open", errno);
		return 1;
	}
	atomic_store(&me->client_id, mbx_id(c));
	binding_asked(rid, gen);
	if (mbx_bind(c, name, MBX_BIND_QUEUE) != 0)
		unexpected("lib receiver", "mbx_bind", errno);
	for (long i = 0; i < 100000000L; i++) {
		ssize_t n = mbx_recv(c, name, buf, BUF_LEN, NULL, 100);
		struct entry *e;

		if (n >= 0) {
			/* mbx_recv() wrote the ACK before it returned. */
			if ((e = record(rid, gen, buf, (size_t)n)) != NULL) {
				e->acked = e->stamp;
				atomic_store(&e->state, ACKED);
			}
			if (++got == life) {
				/* Prefetched, unacknowledged messages die
				 * with us and must come back. */
				raise(SIGKILL);
			}
			continue;
		}
		if (!recv_failed(rid, c, name, &gen, "lib receiver"))
			break;
	}
	mbx_close(c);
	free(buf);
	return 0;
}

/*
 * An "ack" receiver: libmbx with explicit acknowledgement (MBX_OPT_ACK,
 * issue 12).  Like a raw one it logs a message, then acknowledges it with
 * mbx_ack(), then logs that, and the orchestrator kills it at random
 * moments: a message it logged and did not acknowledge must come back.
 */
static int
ack_receiver(int rid)
{
	struct receiver *me = &sh->receivers[rid];
	const char *name = mailboxes[me->mbox];
	unsigned gen = 0;
	uint8_t *buf = malloc(BUF_LEN);
	mbx_t *c = mbx_open(daemon_.sock);
	struct mbx_meta m;

	if (c == NULL || buf == NULL) {
		unexpected("ack receiver", "mbx_open", errno);
		return 1;
	}
	if (mbx_setopt(c, MBX_OPT_ACK, 1) != 0)
		unexpected("ack receiver", "mbx_setopt", errno);
	atomic_store(&me->client_id, mbx_id(c));
	binding_asked(rid, gen);
	if (mbx_bind(c, name, MBX_BIND_QUEUE) != 0)
		unexpected("ack receiver", "mbx_bind", errno);
	for (long i = 0; i < 100000000L; i++) {
		ssize_t n = mbx_recv(c, name, buf, BUF_LEN, &m, 100);
		struct entry *e;

		if (n >= 0) {
			if ((e = record(rid, gen, buf, (size_t)n)) != NULL)
				atomic_store(&e->state, GOT);
			if (mbx_ack(c, &m) == 0) {
				if (e != NULL) {
					e->acked = atomic_fetch_add(&sh->clock,
					    1);
					atomic_store(&e->state, ACKED);
				}
			} else if (errno == ESTALE) {
				/* Withdrawn by its sync sender, or taken
				 * back with the binding: not received. */
				if (e != NULL)
					atomic_store(&e->state, STALE);
			} else {
				unexpected("ack receiver", "mbx_ack", errno);
				break;
			}
			continue;
		}
		if (!recv_failed(rid, c, name, &gen, "ack receiver"))
			break;
	}
	mbx_close(c);
	free(buf);
	return 0;
}

/* The raw receiver's connection. */
struct raw {
	int		 fd;
	uint32_t	 next_id;
	uint8_t		*in;
	size_t		 in_len;
	size_t		 in_off;	/* consumed; dropped next read */
};

static bool
raw_write(struct raw *r, struct proto_writer *w)
{
	size_t off = 0;
	bool ok;

	for (int i = 0; i < 100000 && off < w->len; i++) {
		ssize_t n = send(r->fd, w->buf + off, w->len - off,
		    MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		off += (size_t)n;
	}
	ok = off == w->len;
	proto_writer_free(w);
	return ok;
}

/*
 * The next frame (blocking): 1 and its header and body (valid until the
 * next call), 0 on EOF or error.  A descriptor that came with it goes to
 * *fd (-1: none).
 */
static int
raw_frame(struct raw *r, struct proto_header *h, const uint8_t **body,
    int *fd)
{
	*fd = -1;
	if (r->in_off > 0) {
		memmove(r->in, r->in + r->in_off, r->in_len - r->in_off);
		r->in_len -= r->in_off;
		r->in_off = 0;
	}
	for (int i = 0; i < 1000000; i++) {
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(int) * PROTO_MAX_FDS)];
		} cbuf;
		struct iovec iov;
		struct msghdr mh = { 0 };
		struct cmsghdr *cm;
		ssize_t n;

		if (proto_header_decode(r->in, r->in_len, PROTO_MAX_BODY, h) ==
		    PROTO_DECODE_OK &&
		    r->in_len >= PROTO_HEADER_SIZE + h->len) {
			*body = r->in + PROTO_HEADER_SIZE;
			r->in_off = PROTO_HEADER_SIZE + h->len;
			return 1;
		}
		if (r->in_len == BUF_LEN + 4096)
			return 0;
		iov.iov_base = r->in + r->in_len;
		iov.iov_len = BUF_LEN + 4096 - r->in_len;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = sizeof(cbuf.buf);
		n = recvmsg(r->fd, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		for (cm = CMSG_FIRSTHDR(&mh); cm != NULL;
		    cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_type == SCM_RIGHTS)
				memcpy(fd, CMSG_DATA(cm), sizeof(int));
		r->in_len += (size_t)n;
	}
	return 0;
}

static bool
raw_request(struct raw *r, uint16_t type, uint32_t flags,
    struct proto_writer *b, uint32_t *id)
{
	struct proto_writer w;
	size_t start;

	proto_writer_init(&w);
	start = proto_frame_begin(&w);
	if (b != NULL && b->len > 0)
		memcpy(proto_put_raw(&w, b->len), b->buf, b->len);
	*id = r->next_id++;
	proto_frame_end(&w, start, type, *id, flags, 0);
	if (b != NULL)
		proto_writer_free(b);
	return raw_write(r, &w);
}

/* Reads frames until the REPLY to id; returns its status or -1. */
static long
raw_status(struct raw *r, uint32_t id)
{
	struct proto_header h;
	const uint8_t *body;
	int fd;

	for (int i = 0; i < 1000; i++) {
		if (raw_frame(r, &h, &body, &fd) != 1)
			return -1;
		if (fd >= 0)
			close(fd);
		if (h.type == PROTO_REPLY && h.id == id && h.len >= 4)
			return body[0] | body[1] << 8;
		/* A REVOKE notice (id 0) or similar: not ours to act on. */
	}
	return -1;
}

static bool
raw_bind(struct raw *r, const char *name)
{
	struct proto_writer b;
	uint32_t id;

	proto_writer_init(&b);
	proto_put_str(&b, name, strlen(name));
	proto_put_u32(&b, PROTO_BIND_QUEUE);
	return raw_request(r, PROTO_BIND, 0, &b, &id) &&
	    raw_status(r, id) == PROTO_OK;
}

/* A zero-copy payload: the first size bytes of the memfd. */
static uint8_t *
raw_map(int fd, uint64_t size, bool shared, size_t *len)
{
	uint8_t *p;
	off_t off = shared ? PROTO_SHARED_HEADER : 0;

	*len = 0;
	if (fd < 0 || size > BUF_LEN)
		return NULL;
	p = malloc(size ? size : 1);
	if (p != NULL && pread(fd, p, size, off) != (ssize_t)size) {
		free(p);
		return NULL;
	}
	*len = size;
	return p;
}

static int
raw_receiver(int rid)
{
	struct receiver *me = &sh->receivers[rid];
	const char *name = mailboxes[me->mbox];
	uint64_t rng = seed * 15485863 + (uint64_t)rid;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct proto_writer b;
	struct raw r = { .next_id = 1 };
	unsigned gen = 0;
	bool bound = true;	/* until it notices otherwise */
	uint32_t id;

	r.in = malloc(BUF_LEN + 4096);
	r.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", daemon_.sock);
	if (r.in == NULL || r.fd < 0 || connect(r.fd, (struct sockaddr *)&sun,
	    sizeof(sun)) < 0) {
		unexpected("raw receiver", "connect", errno);
		return 1;
	}
	proto_writer_init(&b);
	proto_put_u32(&b, PROTO_VERSION);
	if (!raw_request(&r, PROTO_HELLO, 0, &b, &id)) {
		unexpected("raw receiver", "HELLO", errno);
		return 1;
	}
	{
		struct proto_header h;
		const uint8_t *body;
		struct proto_reader rd;
		int fd;

		if (raw_frame(&r, &h, &body, &fd) != 1 || h.len != 16) {
			unexpected("raw receiver", "HELLO", EPROTO);
			return 1;
		}
		proto_reader_init(&rd, body, h.len);
		proto_get_u32(&rd);
		proto_get_u32(&rd);
		atomic_store(&me->client_id, (long)proto_get_u64(&rd));
	}
	binding_asked(rid, gen);
	if (!raw_bind(&r, name))
		unexpected("raw receiver", "BIND", EPROTO);

	for (long i = 0; i < 100000000L; i++) {
		struct proto_header h;
		const uint8_t *body;
		bool more = true;
		int fd;

		proto_writer_init(&b);
		proto_put_str(&b, name, strlen(name));
		proto_put_i32(&b, 100);
		proto_put_u64(&b, BUF_LEN);
		proto_put_u32(&b, 1 + (uint32_t)(xorshift(&rng) % 16));
		proto_put_u64(&b, BUF_LEN);
		if (!raw_request(&r, PROTO_RECV, 0, &b, &id))
			break;
		while (more) {
			struct proto_reader rd;
			struct proto_str payload;
			const uint8_t *data;
			uint8_t *mapped = NULL;
			uint64_t msg_id, size = 0;
			size_t len;
			struct entry *e;
			uint32_t ackid;

			if (raw_frame(&r, &h, &body, &fd) != 1)
				goto out;
			if (h.id != id) {
				/*
				 * A notice: a lost binding starts a new one
				 * (the EPERM of a RECV may tell it again).
				 */
				if (h.type == PROTO_REVOKE && bound) {
					gen = lost_binding(rid, gen);
					bound = false;
				}
				if (fd >= 0)
					close(fd);
				continue;
			}
			if (h.type == PROTO_REPLY) {
				long st = h.len >= 4 ? body[0] : -1;

				if (fd >= 0)
					close(fd);
				more = false;
				if (st == PROTO_ETIMEDOUT) {
					if (atomic_load(&sh->drained))
						goto out;
				} else if (st == PROTO_EPERM) {
					if (bound)
						gen = lost_binding(rid, gen);
					binding_asked(rid, gen);
					if (!raw_bind(&r, name))
						unexpected("raw receiver",
						    "BIND", EPROTO);
					bound = true;
				} else {
					unexpected("raw receiver", "RECV",
					    proto_status_to_errno((uint32_t)
					    st));
					goto out;
				}
				continue;
			}
			more = (h.flags & PROTO_MSG_MORE) != 0;
			proto_reader_init(&rd, body, h.len);
			msg_id = proto_get_u64(&rd);
			proto_get_str(&rd);	/* mailbox */
			proto_get_u64(&rd);	/* sender */
			proto_get_u32(&rd);	/* pid */
			proto_get_u32(&rd);	/* uid */
			proto_get_u32(&rd);	/* attempt */
			proto_get_str(&rd);	/* origin */
			proto_get_u32(&rd);	/* origin_attempts */
			if (h.flags & PROTO_MSG_FD) {
				size = proto_get_u64(&rd);
				mapped = raw_map(fd, size,
				    (h.flags & PROTO_MSG_SHARED) != 0, &len);
				data = mapped;
			} else {
				payload = proto_get_blob(&rd);
				data = (const uint8_t *)payload.ptr;
				len = payload.len;
			}
			if (fd >= 0)
				close(fd);
			if (data == NULL)
				len = 0;
			/* Logged first, acknowledged after. */
			e = record(rid, gen, data != NULL ? data :
			    (const uint8_t *)"", len);
			free(mapped);
			if (e != NULL)
				atomic_store(&e->state, GOT);
			proto_writer_init(&b);
			proto_put_u64(&b, msg_id);
			if (h.flags & PROTO_MSG_SYNC) {
				long st;

				if (!raw_request(&r, PROTO_ACK, PROTO_ACK_REPLY,
				    &b, &ackid) || (st = raw_status(&r,
				    ackid)) < 0)
					goto out;
				if (e != NULL) {
					e->acked = atomic_fetch_add(&sh->clock,
					    1);
					atomic_store(&e->state, st == PROTO_OK ?
					    ACKED : STALE);
				}
			} else {
				if (!raw_request(&r, PROTO_ACK, 0, &b, &ackid))
					goto out;
				if (e != NULL) {
					e->acked = atomic_fetch_add(&sh->clock,
					    1);
					atomic_store(&e->state, ACKED);
				}
			}
		}
	}
out:
	close(r.fd);
	free(r.in);
	return 0;
}

/*
 * The orchestrator
 */

static void
spawn_receiver(int mbox, enum kind kind)
{
	int rid = nreceivers;
	struct receiver *rc;
	pid_t pid, parent = getpid();

	if (rid >= RECEIVERS_MAX)
		return;
	nreceivers++;
	rc = &sh->receivers[rid];
	rc->kind = (uint8_t)kind;
	rc->mbox = (uint8_t)mbox;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("soak: fork");
		exit(1);
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		_exit(kind == LIB ? lib_receiver(rid) : kind == ACK ?
		    ack_receiver(rid) : raw_receiver(rid));
	}
	rc->pid = pid;
	rc->alive = true;
}

/* Reaps whatever ended; counts self-kills. */
static void
reap(void)
{
	for (int i = 0; i < nreceivers; i++) {
		struct receiver *rc = &sh->receivers[i];
		int st;

		if (!rc->alive || waitpid(rc->pid, &st, WNOHANG) != rc->pid)
			continue;
		rc->alive = false;
		rc->end = rc->killed ? 'k' : WIFSIGNALED(st) ? 's' : 'e';
		if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && !rc->killed)
			selfkills++;
		else if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
			atomic_fetch_add(&sh->unexpected, 1);
	}
}

static void
staff(uint64_t *rng)
{
	for (int m = 0; m < NMAILBOXES; m++) {
		int n = 0;

		for (int i = 0; i < nreceivers; i++)
			n += sh->receivers[i].alive &&
			    sh->receivers[i].mbox == m;
		for (; n < STAFF; n++)
			spawn_receiver(m, (enum kind)(xorshift(rng) % 3));
	}
}

static int
rid_of(long client_id)
{
	for (int i = 0; i < nreceivers; i++)
		if (atomic_load(&sh->receivers[i].client_id) == client_id)
			return i;
	return -1;
}

/* The receiver and standbys of a mailbox, from the admin view. */
static long
mailbox_state(mbx_t *adm, int m, long *standby, size_t *nstandby,
    long *queued)
{
	char *json = NULL;
	json_t *all, *o;
	size_t i;
	long receiver = 0;

	*nstandby = 0;
	*queued = 0;
	if (mbx_list(adm, &json) != 0) {
		unexpected("orchestrator", "mbx_list", errno);
		return 0;
	}
	all = json_loads(json, 0, NULL);
	free(json);
	json_array_foreach(all, i, o) {
		json_t *s, *v;
		size_t j;

		if (strcmp(json_string_value(json_object_get(o, "name")),
		    mailboxes[m]) != 0)
			continue;
		receiver = (long)json_integer_value(json_object_get(o,
		    "receiver"));
		*queued = (long)json_integer_value(json_object_get(o,
		    "queued"));
		s = json_object_get(o, "standby");
		json_array_foreach(s, j, v)
			if (*nstandby < 16)
				standby[(*nstandby)++] =
				    (long)json_integer_value(v);
	}
	json_decref(all);
	return receiver;
}

/*
 * Stops (or resumes) every receiver process of mailbox m, so that who is
 * bound cannot change under an operator's call: bindings move only when
 * a receiver leaves, and a stopped process cannot.  That makes the
 * receiver an operator moves exactly the one the admin view shows.
 */
static void
freeze(int m, bool stop)
{
	for (int i = 0; i < nreceivers; i++) {
		struct receiver *rc = &sh->receivers[i];

		if (rc->alive && rc->mbox == m)
			kill(rc->pid, stop ? SIGSTOP : SIGCONT);
	}
	for (int i = 0; stop && i < nreceivers; i++) {
		struct receiver *rc = &sh->receivers[i];
		int64_t until = proc_now_ms() + 5000;

		if (!rc->alive || rc->mbox != m)
			continue;
		for (int k = 0; k < 5000 && proc_now_ms() < until; k++) {
			char st = proc_state(rc->pid);

			if (st == 'T' || st == 't' || st == 'Z' || st == 0)
				break;
			poll(NULL, 0, 1);
		}
	}
}

/*
 * The binding that receiver rid held when an admin view named it as the
 * receiver, seen being a stamp taken after that view came back: the last
 * one it asked for before then (a later one would need an operator's act
 * after the view, and the orchestrator is the only operator).  -1 when
 * unknown.
 */
static int
binding_of(int rid, uint64_t seen)
{
	struct receiver *rc = &sh->receivers[rid];
	int g = -1;

	if (atomic_load(&rc->gen) >= GENS)
		return -1;
	for (int i = 0; i < GENS; i++) {
		uint64_t t = atomic_load(&rc->bound_at[i]);

		if (t == 0 || t > seen)
			break;
		g = i;
	}
	return g;
}

/* The operator's call stamped at took binding g of receiver rid away. */
static void
took(int rid, int g, uint64_t at)
{
	if (rid >= 0 && g >= 0 && sh->receivers[rid].moved_at[g] == 0)
		sh->receivers[rid].moved_at[g] = at;
}

/*
 * One random act of the operator.  Half the rebinds and evictions hit
 * running receivers, in the middle of their receives: what they were
 * handed and had not acknowledged when the call came may be delivered
 * again, nothing else.  The receiver the admin view names may leave
 * before the call (a standby then takes its place and is moved instead,
 * or the standby named is gone: ESRCH), which only a running mailbox
 * allows.  The other half freeze the mailbox's receivers first, so that
 * the receiver moved is the one the view shows.
 */
static void
act(mbx_t *adm, uint64_t *rng)
{
	unsigned k = (unsigned)(xorshift(rng) % 100);
	int m = (int)(xorshift(rng) % NMAILBOXES);
	bool running = xorshift(rng) % 2 == 0;
	long standby[16], queued, receiver;
	uint64_t seen, at;
	int rid = -1, g = -1;
	size_t ns;

	if (k < 50) {
		/* Kill a raw or ack receiver, wherever it is in its work. */
		int candidates[RECEIVERS_MAX], n = 0;

		for (int i = 0; i < nreceivers; i++)
			if (sh->receivers[i].alive &&
			    sh->receivers[i].kind != LIB)
				candidates[n++] = i;
		if (n > 0) {
			struct receiver *rc = &sh->receivers[candidates[
			    xorshift(rng) % (unsigned)n]];

			rc->killed = true;
			kill(rc->pid, SIGKILL);
			kills++;
		}
		return;
	}
	if (!running)
		freeze(m, true);
	receiver = mailbox_state(adm, m, standby, &ns, &queued);
	seen = atomic_fetch_add(&sh->clock, 1);
	if (receiver != 0 && (rid = rid_of(receiver)) >= 0)
		g = binding_of(rid, seen);
	at = atomic_fetch_add(&sh->clock, 1);
	if (receiver != 0 && k < 85 && ns > 0) {
		long to = standby[xorshift(rng) % ns];

		if (mbx_rebind(adm, mailboxes[m], to) == 0) {
			took(rid, g, at);
			rebinds++;
			running_moves += running;
		} else if (running && errno == ESRCH) {
			missed++;
		} else {
			unexpected("orchestrator", "mbx_rebind", errno);
		}
	} else if (receiver != 0 && k >= 85) {
		if (mbx_evict(adm, mailboxes[m]) == 0) {
			took(rid, g, at);
			evicts++;
			running_moves += running;
		} else if (running && errno == EPERM) {
			missed++;
		} else {
			unexpected("orchestrator", "mbx_evict", errno);
		}
	}
	if (!running)
		freeze(m, false);
}

/*
 * The account
 */

static int npassed, nfailed;
static long seconds_run;

static void
verdict(const char *what, bool ok, const char *detail)
{
	printf("soak: %-10s %s%s%s\n", what, ok ? "ok" : "FAILED",
	    detail[0] ? ": " : "", detail);
	if (ok)
		npassed++;
	else
		nfailed++;
}

static int
cmp_entry(const void *a, const void *b)
{
	const struct entry *x = *(struct entry *const *)a;
	const struct entry *y = *(struct entry *const *)b;

	if (x->sender != y->sender)
		return x->sender < y->sender ? -1 : 1;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return x->stamp < y->stamp ? -1 : x->stamp > y->stamp;
}

static int
cmp_by_receiver(const void *a, const void *b)
{
	const struct entry *x = *(struct entry *const *)a;
	const struct entry *y = *(struct entry *const *)b;

	if (x->rid != y->rid)
		return x->rid < y->rid ? -1 : 1;
	if (x->gen != y->gen)
		return x->gen < y->gen ? -1 : 1;
	return x->stamp < y->stamp ? -1 : x->stamp > y->stamp;
}

/*
 * May e's message have been delivered again after e (mbx(7), guarantee 4
 * and "Two-phase receive")?  Only if the daemon could take it back before
 * it read e's acknowledgement:
 * - no acknowledgement went out (a raw receiver killed before it wrote
 *   one);
 * - or an operator took e's binding away (rebind, evict) with a call that
 *   began before the acknowledgement was written: a receive that returned
 *   before the operator's call must stay received.
 * A synchronous message acknowledged is confirmed by the daemon (the
 * library waits for it, a raw receiver too): never again.  A binding lost
 * to a call the orchestrator cannot name (the receiver the view showed
 * left just before it) excuses its receptions, counted as unattributed.
 */
static bool
excusable(const struct entry *e, const struct attempt *a)
{
	const struct receiver *rc = &sh->receivers[e->rid];
	uint64_t moved;

	if (atomic_load(&e->state) == GOT || e->acked == 0)
		return true;
	if (a->sync)
		return false;
	if (e->gen >= GENS)
		return e->gen < atomic_load(&rc->gen);
	moved = rc->moved_at[e->gen];
	if (moved == 0)
		return e->gen < atomic_load(&rc->gen);
	return e->acked > moved;
}

/* Bindings lost to an operator's call that the orchestrator cannot name. */
static long
unattributed(void)
{
	long n = 0;

	for (int i = 0; i < nreceivers; i++) {
		const struct receiver *rc = &sh->receivers[i];
		unsigned gen = atomic_load(&rc->gen);

		for (unsigned g = 0; g < gen; g++)
			n += g >= GENS || rc->moved_at[g] == 0;
	}
	return n;
}

/* Who received a message more than once, for the report. */
static void
dup_report(int s, uint32_t seq, const struct attempt *a, struct entry **v,
    size_t first, size_t end)
{
	const char *const kinds[] = { "lib", "raw" };

	fprintf(stderr, "soak: duplicate: sender %d seq %u to %s (%s), "
	    "received by:", s, seq, mailboxes[a->mbox], a->sync ? "sync" :
	    "async");
	for (size_t y = first; y < end; y++) {
		const struct receiver *rc = &sh->receivers[v[y]->rid];

		unsigned g = v[y]->gen;

		fprintf(stderr, " receiver %u (client %ld, %s, %s, %s, %s, "
		    "binding %u of %u asked at %llu, moved at %llu, "
		    "stamp %llu, acked at %llu, %s of its %ld)", v[y]->rid,
		    atomic_load(&rc->client_id), rc->end == 'k' ? "killed" :
		    rc->end == 's' ? "killed itself" : "exited",
		    kinds[rc->kind],
		    atomic_load(&v[y]->state) == ACKED ? "acked" : "not acked",
		    excusable(v[y], a) ? "excusable" : "not excusable",
		    g, atomic_load(&rc->gen) + 1, g < GENS ?
		    (unsigned long long)atomic_load(&rc->bound_at[g]) : 0,
		    g < GENS ? (unsigned long long)rc->moved_at[g] : 0,
		    (unsigned long long)v[y]->stamp,
		    (unsigned long long)v[y]->acked, v[y]->stamp ==
		    rc->last_stamp ? "the last" : "not the last", rc->count);
	}
	fprintf(stderr, "\n");
}

static void
account(long *delivered, long *redelivered)
{
	uint32_t n = atomic_load(&sh->nentries);
	struct entry **v;
	long ok_sends = 0, lost = 0, leaked = 0, dups = 0, fifo = 0, bad = 0;
	long torn = 0, stream[NSENDERS][NMAILBOXES] = { { 0 } }, low, need;
	char detail[256];
	size_t k = 0;

	if (n > ENTRIES_MAX)
		n = ENTRIES_MAX;
	v = calloc(n ? n : 1, sizeof(*v));
	if (v == NULL) {
		perror("soak");
		exit(1);
	}
	for (uint32_t i = 0; i < n; i++) {
		struct entry *e = &sh->entries[i];

		/* 0: reserved by a receiver killed before it wrote it. */
		if (atomic_load(&e->state) == 0) {
			torn++;
			continue;
		}
		if (!e->sum_ok) {
			bad++;
			continue;
		}
		if (atomic_load(&e->state) != STALE)
			v[k++] = e;
		sh->receivers[e->rid].count++;
		if (e->stamp > sh->receivers[e->rid].last_stamp)
			sh->receivers[e->rid].last_stamp = e->stamp;
	}
	*delivered = (long)k;
	qsort(v, k, sizeof(*v), cmp_entry);

	/* Per attempt: its receptions, in stamp order. */
	for (int s = 0; s < NSENDERS; s++) {
		uint32_t na = atomic_load(&sh->nattempts[s]);
		size_t j = 0;

		while (j < k && v[j]->sender < (uint32_t)s)
			j++;
		for (uint32_t seq = 0; seq < na; seq++) {
			const struct attempt *a = &sh->attempts[s][seq];
			size_t first = j, cnt;
			bool any_acked = false;

			while (j < k && v[j]->sender == (uint32_t)s &&
			    v[j]->seq == seq)
				j++;
			cnt = j - first;
			for (size_t x = first; x < j; x++)
				any_acked |= atomic_load(&v[x]->state) == ACKED;
			if (cnt > 0 && v[first]->mbox != a->mbox)
				bad++;
			if (atomic_load(&a->outcome) == SENT_OK) {
				ok_sends++;
				if (cnt == 0) {
					if (lost++ < 5)
						fprintf(stderr, "soak: lost: "
						    "sender %d seq %u to %s\n",
						    s, seq, mailboxes[a->mbox]);
				}
			} else if (atomic_load(&a->outcome) == SENT_FAILED &&
			    (a->sync ? any_acked : cnt > 0)) {
				if (leaked++ < 5)
					fprintf(stderr, "soak: a failed send "
					    "(%s) was received: sender %d seq "
					    "%u\n", strerrorname_np(a->err), s,
					    seq);
			}
			/*
			 * At most one reception may be beyond excuse: the
			 * one that counts.  Every other must be one after
			 * which the guarantee allows a redelivery.  Stamps
			 * tell when a receiver logged, not when the daemon
			 * delivered, so they do not say which came first:
			 * the count does not need to.
			 */
			{
				size_t firm = 0;

				for (size_t x = first; x < j; x++) {
					if (x > first)
						*redelivered += 1;
					if (!excusable(v[x], a))
						firm++;
				}
				if (firm > 1 && dups++ < 5)
					dup_report(s, seq, a, v, first, j);
			}
			if (cnt > 0 && atomic_load(&a->outcome) == SENT_OK)
				stream[s][a->mbox]++;
		}
	}

	/*
	 * FIFO: per receiver and binding, per sender and mailbox, never
	 * backwards (a redelivery may repeat the last one).
	 */
	qsort(v, k, sizeof(*v), cmp_by_receiver);
	{
		static uint32_t last[NSENDERS][NMAILBOXES];
		static bool seen[NSENDERS][NMAILBOXES];
		int rid = -1, gen = -1;

		for (size_t x = 0; x < k; x++) {
			const struct entry *e = v[x];

			if (e->rid != rid || e->gen != gen) {
				rid = e->rid;
				gen = e->gen;
				memset(seen, 0, sizeof(seen));
			}
			if (seen[e->sender][e->mbox] &&
			    e->seq < last[e->sender][e->mbox]) {
				if (fifo++ < 5)
					fprintf(stderr, "soak: out of order: "
					    "receiver %d got sender %u seq %u "
					    "after %u\n", rid, e->sender,
					    e->seq, last[e->sender][e->mbox]);
			}
			seen[e->sender][e->mbox] = true;
			last[e->sender][e->mbox] = e->seq;
		}
	}
	free(v);

	snprintf(detail, sizeof(detail), "%ld of %ld successful sends "
	    "received at least once", ok_sends - lost, ok_sends);
	verdict("loss", lost == 0, detail);
	snprintf(detail, sizeof(detail), "%ld failed sends received", leaked);
	verdict("nothing", leaked == 0, detail);
	snprintf(detail, sizeof(detail), "%ld received twice beyond excuse; "
	    "%ld redeliveries, %ld bindings lost to a call not named", dups,
	    *redelivered, unattributed());
	verdict("duplicates", dups == 0, detail);
	/*
	 * Traffic: every sender's messages reach every mailbox, at a rate
	 * that a daemon that works clears many times over (some 1500 a
	 * second per stream under ASan on 2 loaded cores).
	 */
	low = stream[0][0];
	for (int s = 0; s < NSENDERS; s++)
		for (int m = 0; m < NMAILBOXES; m++)
			if (stream[s][m] < low)
				low = stream[s][m];
	need = FLOOR_PER_S * seconds_run;
	snprintf(detail, sizeof(detail), "at least %ld delivered per sender "
	    "and mailbox, %ld needed", low, need);
	verdict("traffic", low >= need, detail);
	snprintf(detail, sizeof(detail), "%ld receptions out of order", fifo);
	verdict("fifo", fifo == 0, detail);
	snprintf(detail, sizeof(detail), "%ld damaged payloads (%ld records "
	    "torn by a kill)", bad, torn);
	verdict("checksums", bad == 0, detail);
	snprintf(detail, sizeof(detail), "%ld", atomic_load(&sh->unexpected));
	verdict("errors", atomic_load(&sh->unexpected) == 0, detail);
}

/* Was the program at path built with AddressSanitizer? */
static bool
sanitized(const char *path)
{
	static const char mark[] = "__asan_init";
	char buf[65536 + sizeof(mark)];
	size_t have = 0;
	bool found = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	for (int i = 0; fd >= 0 && !found && i < 100000; i++) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - have);

		if (n <= 0)
			break;
		have += (size_t)n;
		found = memmem(buf, have, mark, sizeof(mark) - 1) != NULL;
		/* Keep the tail, which may hold the start of the mark. */
		memmove(buf, buf + have - (sizeof(mark) - 1),
		    sizeof(mark) - 1);
		have = sizeof(mark) - 1;
	}
	if (fd >= 0)
		close(fd);
	return found;
}

static long
clients_count(mbx_t *adm)
{
	char *json = NULL;
	json_t *all;
	long n;

	if (mbx_clients(adm, &json) != 0)
		return -1;
	all = json_loads(json, 0, NULL);
	free(json);
	n = (long)json_array_size(all);
	json_decref(all);
	return n;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mbxd", required_argument, NULL, 'm' },
		{ "seconds", required_argument, NULL, 't' },
		{ "seed", required_argument, NULL, 's' },
		{ "wrapper", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	const char *mbxd = NULL, *wrapper = NULL;
	pid_t senders[NSENDERS];
	long seconds = 60, delivered = 0, redelivered = 0, rss0, rss1;
	int64_t t0, deadline;
	uint64_t rng;
	int ch, fds0, fds1, st, reports;
	bool alive = true;
	char detail[256];
	mbx_t *adm;

	seed = (unsigned long long)time(NULL) ^ (unsigned long long)getpid();
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'm':
			mbxd = optarg;
			break;
		case 't':
			seconds = strtol(optarg, NULL, 10);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 10);
			break;
		case 'w':
			wrapper = optarg;
			break;
		default:
			fprintf(stderr, "usage: mbx-soak --mbxd PATH "
			    "[--seconds "
			    "N] [--seed S] [--wrapper CMD]\n");
			return 2;
		}
	}
	if (mbxd == NULL) {
		fprintf(stderr, "mbx-soak: --mbxd PATH is required\n");
		return 2;
	}
	rng = seed | 1;
	seconds_run = seconds;
	signal(SIGPIPE, SIG_IGN);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (sh == MAP_FAILED) {
		perror("soak: mmap");
		return 1;
	}
	atomic_store(&sh->clock, 1);	/* 0 stands for "never" */
	/*
	 * An ASan build of mbxd keeps freed memory in quarantine, which
	 * would read as growth: none for the memory check.
	 */
	{
		const char *old = getenv("ASAN_OPTIONS");
		char asan[1024];

		snprintf(asan, sizeof(asan), "%s%squarantine_size_mb=0",
		    old != NULL ? old : "", old != NULL && *old != '\0' ?
		    ":" : "");
		setenv("ASAN_OPTIONS", asan, 1);
	}
	if (mbxd_proc_start(&daemon_, mbxd, wrapper, NULL, 20000) < 0)
		return 1;
	printf("soak: mbxd pid %d, %ld s, seed %llu\n", (int)daemon_.pid,
	    seconds, seed);
	fflush(stdout);
	if ((adm = mbx_open(daemon_.sock)) == NULL) {
		perror("soak: mbx_open");
		return 1;
	}
	for (int m = 0; m < NMAILBOXES; m++) {
		struct mbx_attr a;

		mbx_attr_init(&a);
		a.capacity = capacities[m];
		a.mode = 0666;
		if (mbx_create(adm, mailboxes[m], &a) != 0) {
			perror("soak: mbx_create");
			return 1;
		}
	}
	/* The baseline: the daemon with its mailboxes and one client. */
	fds0 = proc_fd_count(daemon_.pid);
	rss0 = proc_rss_kib(daemon_.pid);
	staff(&rng);
	for (int s = 0; s < NSENDERS; s++) {
		pid_t parent = getpid();

		fflush(NULL);
		if ((senders[s] = fork()) == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(1);
			_exit(sender_main(s));
		}
	}

	/* The churn. */
	t0 = proc_now_ms();
	deadline = t0 + seconds * 1000;
	for (long i = 0; proc_now_ms() < deadline && i < 10000000L; i++) {
		poll(NULL, 0, 20 + (int)(xorshift(&rng) % 80));
		reap();
		act(adm, &rng);
		reap();
		staff(&rng);
		if (!mbxd_proc_alive(&daemon_)) {
			alive = false;
			break;
		}
	}

	/* Senders stop; the receivers drain every mailbox. */
	atomic_store(&sh->stop, 1);
	for (int s = 0; s < NSENDERS; s++)
		if (waitpid(senders[s], &st, 0) != senders[s] ||
		    !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "soak: sender %d failed (status "
			    "%#x)\n", s, st);
			atomic_fetch_add(&sh->unexpected, 1);
		}
	for (int i = 0; alive && i < 6000; i++) {
		long standby[16], queued, total = 0;
		size_t ns;

		for (int m = 0; m < NMAILBOXES; m++) {
			mailbox_state(adm, m, standby, &ns, &queued);
			total += queued;
		}
		if (total == 0)
			break;
		reap();
		staff(&rng);
		poll(NULL, 0, 10);
	}
	atomic_store(&sh->drained, 1);
	for (int i = 0; i < nreceivers; i++)
		if (sh->receivers[i].alive) {
			waitpid(sh->receivers[i].pid, &st, 0);
			sh->receivers[i].alive = false;
			sh->receivers[i].end = WIFSIGNALED(st) ? 's' : 'e';
			if (WIFSIGNALED(st) && !sh->receivers[i].killed)
				selfkills++;
		}

	{
		unsigned long attempts = 0;

		for (int s = 0; s < NSENDERS; s++)
			attempts += atomic_load(&sh->nattempts[s]);
		printf("soak: %lu sends attempted, %ld receptions; %ld raw "
		    "and ack receivers killed, %ld lib receivers killed "
		    "themselves, "
		    "%ld rebinds, %ld evictions (%ld of running receivers, "
		    "%ld missed), %d receivers in all\n",
		    attempts, atomic_load(&sh->receptions), kills, selfkills,
		    rebinds, evicts, running_moves, missed, nreceivers);
	}
	account(&delivered, &redelivered);
	snprintf(detail, sizeof(detail), "%ld kills, %ld self-kills, %ld "
	    "bindings moved from running receivers, %ld from stopped ones",
	    kills, selfkills, running_moves, rebinds + evicts - running_moves);
	verdict("churn", kills > 0 && selfkills > 0 && running_moves > 0 &&
	    rebinds + evicts > running_moves, detail);

	/* The daemon: alive, and back where it started. */
	verdict("alive", alive && mbxd_proc_alive(&daemon_), "");
	for (int i = 0; i < 1000 && clients_count(adm) != 1; i++)
		poll(NULL, 0, 10);
	fds1 = proc_fd_count(daemon_.pid);
	rss1 = proc_rss_kib(daemon_.pid);
	snprintf(detail, sizeof(detail), "%d with one client, %d at the start",
	    fds1, fds0);
	/* A /proc read that failed (-1) fails the verdict, never passes it. */
	verdict("fds", fds0 >= 0 && fds1 == fds0, detail);
	snprintf(detail, sizeof(detail), "%ld KiB, %ld KiB at the start", rss1,
	    rss0);
	verdict("memory", rss0 > 0 && rss1 > 0 && rss1 - rss0 < 32 * 1024,
	    detail);
	mbx_close(adm);
	st = mbxd_proc_stop(&daemon_, SIGTERM, 30000);
	verdict("exit", st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "");
	/*
	 * A plain mbxd writes no report whatever it does: the verdict needs
	 * a sanitizer build, or a wrapper such as valgrind, and a log.
	 */
	reports = access(daemon_.log, R_OK) == 0 ?
	    mbxd_proc_log_reports(&daemon_) : -1;
	snprintf(detail, sizeof(detail), "%d reports in %s%s", reports,
	    daemon_.log, wrapper != NULL ? " (wrapped)" : sanitized(mbxd) ?
	    " (ASan build)" : "; mbxd is no sanitizer build: no verdict");
	verdict("sanitizers", reports == 0 && (wrapper != NULL ||
	    sanitized(mbxd)), detail);
	printf("soak: %d passed, %d failed\n", npassed, nfailed);
	if (nfailed == 0)
		mbxd_proc_cleanup(&daemon_);
	else
		printf("soak: seed %llu; the daemon's log is %s\n", seed,
		    daemon_.log);
	return nfailed == 0 ? 0 : 1;
}
