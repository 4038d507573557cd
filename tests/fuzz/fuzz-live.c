/*
 * fuzz-live.c - drives a live mbxd (built with ASan+UBSan) over its
 * socket with randomly mutated valid frames, and checks after every batch
 * that it is alive and still answers a fresh client.
 *
 *	fuzz-live --mbxd PATH [--seconds T] [--batches N] [--seed S]
 *	    [--wrapper CMD]
 *
 * A batch opens a handful of raw connections at once (as root, under
 * several uids: the permission and quota paths are reached too), each
 * with a HELLO (now and then a broken one), then a stream of requests of
 * every type with plausible fields (names of existing mailboxes, direct
 * addresses of live clients, timeouts, payloads, memfds).  A third of the
 * connections are hostile and mutate a quarter of their frames (bits
 * flipped, lengths changed, bytes cut, inserted or repeated, types and
 * descriptor counts changed); the others only now and then, so that
 * their requests build real state: queues, bindings, parked calls.
 * Connections read what comes back, acknowledge some messages, and end
 * in every way a client can: a clean close, a close with answers unread,
 * a close half-way through a frame.  Some ask for a channel (CHANNEL)
 * and then write what they like into its consumption word (PROTOCOL.md,
 * "Consumption by a store") and ring its doorbell: the daemon must clamp
 * what it reads there, whatever the value.
 *
 * Frames are built as proto/PROTOCOL.md gives them (SENDV: u32 count,
 * then its entries), so that unmutated ones reach the broker; as root,
 * each connection is made as one of four users (root, two others, a
 * member of the admin group), which the daemon tells apart by the
 * socket's credentials.
 *
 * After each batch a new client must connect and list (mbx_open +
 * mbx_list, under a watchdog) and the daemon must be alive; at the end,
 * once every mailbox is destroyed (queued zero-copy messages hold their
 * memfds, rightly), it must hold the descriptors it held at the start
 * (with as many clients), exit 0 on SIGTERM, and its log must hold no
 * sanitizer report.  The summary counts what reached the broker (sends,
 * SENDV batches answered and accepted, messages delivered, answers per
 * user); a run of 50 batches or more also fails when no SENDV enqueued
 * anything, no channel's consumption word was written or, as root, no
 * other user's request was answered.  Any
 * failure exits 1 with the seed to reproduce it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "mbx.h"
#include "../mbxd-proc.h"
#include "body.h"
#include "channel.h"
#include "proto.h"

#define CONNS_PER_BATCH	8
#define FRAMES_MAX	24
#define WATCHDOG_S	20

static const char config[] =
    "{\n"
    "  \"admin_groups\": [ 65529 ],\n"
    "  \"limits\": {\n"
    "    \"max_memory\": \"16M\", \"max_bytes_per_uid\": \"4M\",\n"
    "    \"max_msg\": \"1M\", \"max_connections\": 256,\n"
    "    \"max_connections_per_uid\": 64, \"max_mailboxes_per_uid\": 16,\n"
    "    \"max_pending_per_connection\": 16,\n"
    "    \"max_standby_per_mailbox\": 4, \"handshake_timeout_ms\": 1000\n"
    "  }\n"
    "}\n";

static struct mbxd_proc daemon_;
static uint64_t rng;
static unsigned long long seed;
static long nframes, nconns, nmutated, nsends_ok, nmsgs;
/* SENDV frames answered, those that enqueued some entries, and those. */
static long nsendv_answered, nsendv_accepted, nsendv_enqueued;
static long nchannels, nstores;

static uint64_t
rnd(void)
{
	/* xorshift64*: small, fast, reproducible from the seed. */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ULL;
}

static unsigned
below(unsigned n)
{
	return n == 0 ? 0 : (unsigned)(rnd() % n);
}

static bool
chance(unsigned percent)
{
	return below(100) < percent;
}

/* Ends the run: what went wrong, why (may be ""), and how to replay. */
static void __attribute__((noreturn))
fail(const char *what, const char *why)
{
	fprintf(stderr, "fuzz-live: %s%s%s (seed %llu; mbxd log %s)\n", what,
	    *why != '\0' ? ": " : "", why, seed, daemon_.log);
	mbxd_proc_log_reports(&daemon_);
	exit(1);
}

static void
on_watchdog(int sig)
{
	static const char msg[] = "fuzz-live: the daemon did not answer a "
	    "fresh client within the watchdog\n";

	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(1);
}

/*
 * Identities (root only): the effective ids a connection is made with.
 */
struct ident {
	uid_t	uid;
	gid_t	gid;
	gid_t	group;
};

static const struct ident idents[] = {
	{ 0, 0, (gid_t)-1 },
	{ 65534, 65534, 65530 },
	{ 65533, 65533, 65530 },
	{ 65531, 65531, 65529 },	/* in the admin group */
};
#define NIDENTS	(sizeof(idents) / sizeof(idents[0]))

/* Per identity: connections the daemon greeted, and answers they got. */
static long ngreeted[NIDENTS], nanswers[NIDENTS];

static void
become(const struct ident *id)
{
	gid_t g[1] = { id->group };
	gid_t root = 0;

	if (geteuid() != 0 && getuid() != 0)
		return;
	if (id->uid == 0) {
		if (seteuid(0) < 0 || setegid(0) < 0 || setgroups(1, &root) < 0)
			fail("cannot become root again", strerror(errno));
		return;
	}
	if (setgroups(id->group != (gid_t)-1 ? 1 : 0, g) < 0 ||
	    setegid(id->gid) < 0 || seteuid(id->uid) < 0)
		fail("cannot switch identity", strerror(errno));
}

/*
 * The requests: plausible fields, then perhaps mutated.
 */

static long live_ids[64];
static size_t nlive;
/* The client ids of this batch's connections (0: not greeted). */
static long batch_ids[CONNS_PER_BATCH];

/*
 * A name: usually a mailbox that exists, sometimes anything.  It is
 * written into buf (at least 300 bytes), which the view returned points
 * at.
 */
static struct proto_str
pick_name(char *buf, size_t size)
{
	static const char *const names[] = { "m0", "m1", "m2", "m3", "m4",
	    "rv", "big", "", "bad name", "@0", "@01", "@" };
	unsigned k = below(100);

	if (k < 60) {
		/* m5 and m6 are another user's (setup()). */
		snprintf(buf, size, "m%u", below(7));
	} else if (k < 68 && nlive > 0) {
		snprintf(buf, size, "@%ld", live_ids[below((unsigned)
		    nlive)]);
	} else if (k < 75) {
		/* Another connection of the batch, perhaps another user's. */
		snprintf(buf, size, "@%ld", batch_ids[below(
		    sizeof(batch_ids) / sizeof(batch_ids[0]))]);
	} else if (k < 78) {
		memset(buf, 'n', 256);	/* one byte too long */
		buf[256] = '\0';
	} else {
		snprintf(buf, size, "%s",
		    names[below(sizeof(names) / sizeof(names[0]))]);
	}
	return (struct proto_str){ buf, strlen(buf) };
}

static int32_t
timeout(void)
{
	unsigned k = below(100);

	return k < 50 ? 0 : k < 85 ? (int32_t)below(60) : k < 95 ? -1 :
	    (int32_t)(-2 - (int)below(5));
}

/* The length of a payload: now and then past the daemon's max_msg. */
static size_t
payload_len(void)
{
	return chance(3) ? 70000 + below(1 << 20) : below(2048);
}

/*
 * The payload's bytes, after a _put_head() wrote its length: one letter,
 * written in place rather than built elsewhere and copied.
 */
static void
put_payload_bytes(struct proto_writer *w, size_t len)
{
	uint8_t *p;

	if ((p = proto_put_raw(w, len)) != NULL)
		memset(p, 'a' + (int)below(26), len);
}

/*
 * Builds one request body with proto/body.h; returns its type and sets
 * flags and nfds.  The fields are drawn in the order they travel.
 */
static uint16_t
build(struct proto_writer *b, uint32_t *flags, uint16_t *nfds,
    uint64_t last_msg)
{
	/* Weighted: mostly traffic, now and then the state changes. */
	static const uint16_t types[] = { PROTO_SEND, PROTO_SEND, PROTO_SEND,
	    PROTO_SEND, PROTO_SEND, PROTO_SEND, PROTO_RECV, PROTO_RECV,
	    PROTO_RECV, PROTO_RECV, PROTO_ACK, PROTO_ACK, PROTO_BIND,
	    PROTO_BIND, PROTO_SENDV, PROTO_SENDV, PROTO_CREATE, PROTO_UNBIND,
	    PROTO_REBIND, PROTO_LIST, PROTO_CLIENTS, PROTO_CHMOD, PROTO_CHOWN,
	    PROTO_POST, PROTO_PURGE, PROTO_DESTROY, PROTO_NACK,
	    PROTO_CHANNEL };
	uint16_t type = types[below(sizeof(types) / sizeof(types[0]))];
	char nb[300], nb2[300];

	*flags = 0;
	*nfds = 0;
	switch (type) {
	case PROTO_CREATE: {
		struct body_create c;

		c.name = pick_name(nb, sizeof(nb));
		c.capacity = (int64_t)below(6) - 1;
		c.max_msg = chance(90) ? 65536 : rnd();
		c.mode = chance(80) ? 0666 : below(01000);
		c.gid = chance(80) ? PROTO_ID_NONE : 65530;
		/* Work queues now and then: short timeouts, dead letters. */
		c.max_attempts = chance(70) ? 0 : below(4);
		c.ack_timeout_ms = chance(70) ? 0 : below(50);
		c.dead_letter = chance(60) ? (struct proto_str){ "", 0 } :
		    pick_name(nb2, sizeof(nb2));
		/* Durable now and then: the logs stay in the run's directory. */
		c.durable = chance(10);
		body_create_put(b, &c);
		break;
	}
	case PROTO_DESTROY:
	case PROTO_PURGE:
	case PROTO_UNBIND: {
		struct body_name n;

		n.name = pick_name(nb, sizeof(nb));
		body_name_put(b, &n);
		if (type == PROTO_UNBIND)
			*flags = chance(50) ? PROTO_UNBIND_EVICT : 0;
		break;
	}
	case PROTO_BIND: {
		struct body_bind bd;

		bd.name = pick_name(nb, sizeof(nb));
		bd.how = below(4);
		body_bind_put(b, &bd);
		break;
	}
	case PROTO_SEND: {
		struct body_send sd = { .payload = { NULL, 0 } };

		sd.name = pick_name(nb, sizeof(nb));
		sd.timeout_ms = timeout();
		*flags = chance(20) ? PROTO_SEND_SYNC : 0;
		/* Grants, for the posts below to use now and then. */
		if (chance(30))
			*flags |= PROTO_SEND_CREDIT;
		sd.has_fd = chance(10);
		if (sd.has_fd) {
			*flags |= PROTO_SEND_FD |
			    (chance(20) ? PROTO_SEND_SHARED : 0);
			*nfds = 1;
			sd.size = below(8192);
			body_send_put(b, &sd);
		} else {
			sd.payload.len = payload_len();
			body_send_put_head(b, &sd);
			put_payload_bytes(b, sd.payload.len);
		}
		break;
	}
	case PROTO_RECV: {
		struct body_recv rv;

		rv.name = pick_name(nb, sizeof(nb));
		rv.timeout_ms = timeout();
		rv.cap = chance(90) ? 1 << 20 : below(64);
		rv.max_count = below(70);
		rv.budget = chance(90) ? 1 << 20 : rnd();
		body_recv_put(b, &rv);
		*flags = chance(50) ? PROTO_RECV_ACK : 0;
		break;
	}
	case PROTO_CHANNEL:
		break;		/* an empty body */
	case PROTO_NACK: {
		struct body_nack n = { chance(70) ? last_msg : below(64),
		    chance(50) ? 0 : below(100), false };

		body_nack_put(b, &n);
		*flags = chance(20) ? PROTO_ACK_REPLY : 0;
		break;
	}
	case PROTO_ACK: {
		uint64_t ids[3];
		struct body_ack a = { 1 + below(3), ids, NULL };

		for (size_t i = 0; i < a.count; i++)
			ids[i] = chance(70) ? last_msg : below(64);
		body_ack_put(b, &a);
		*flags = chance(20) ? PROTO_ACK_REPLY : 0;
		break;
	}
	case PROTO_REBIND: {
		struct body_rebind rb;

		rb.name = pick_name(nb, sizeof(nb));
		rb.client_id = nlive > 0 && chance(80) ?
		    (uint64_t)live_ids[below((unsigned)nlive)] : rnd();
		body_rebind_put(b, &rb);
		break;
	}
	case PROTO_LIST:
	case PROTO_CLIENTS:
		break;
	case PROTO_CHMOD: {
		struct body_chmod cm;

		cm.name = pick_name(nb, sizeof(nb));
		cm.mode = chance(90) ? 0666 : below(010000);
		body_chmod_put(b, &cm);
		break;
	}
	case PROTO_CHOWN: {
		struct body_chown co;

		co.name = pick_name(nb, sizeof(nb));
		co.uid = chance(50) ? PROTO_ID_NONE : 65534;
		co.gid = chance(50) ? PROTO_ID_NONE : 65530;
		body_chown_put(b, &co);
		break;
	}
	case PROTO_SENDV: {
		/*
		 * As PROTOCOL.md gives it: u32 count (1 to 1024), entries;
		 * now and then a count out of bounds, with at most 8
		 * entries whatever it says.
		 */
		struct body_sendv v = { .count = chance(95) ? 1 + below(8) :
		    chance(50) ? 0 : 1025 };

		body_sendv_put(b, &v);
		for (unsigned i = 0; i < v.count && i < 8; i++) {
			struct body_sendv_item it;

			it.name = pick_name(nb, sizeof(nb));
			it.payload = (struct proto_str){ NULL, payload_len() };
			body_sendv_item_put_head(b, &it);
			put_payload_bytes(b, it.payload.len);
		}
		break;
	}
	default: {	/* PROTO_POST, inline or memfd */
		struct body_post po = { .payload = { NULL, 0 } };

		po.mailbox_id = below(16);
		po.has_fd = chance(30);
		if (po.has_fd) {
			*flags = PROTO_POST_FD |
			    (chance(20) ? PROTO_POST_SHARED : 0);
			*nfds = 1;
			po.size = below(8192);
			body_post_put(b, &po);
		} else {
			po.payload.len = payload_len();
			body_post_put_head(b, &po);
			put_payload_bytes(b, po.payload.len);
		}
		break;
	}
	}
	return type;
}

/* Damages a whole frame (header and body) in one of several ways. */
static void
mutate(struct proto_writer *f)
{
	unsigned n = 1 + below(4);

	nmutated++;
	for (unsigned k = 0; k < n && f->len > 0; k++) {
		size_t at = below((unsigned)f->len);
		unsigned how = below(8);

		switch (how) {
		case 0:		/* flip bits */
			f->buf[at] ^= (uint8_t)(1u << below(8));
			break;
		case 1:		/* a new length in the header */
			if (f->len >= 4) {
				uint32_t v = chance(50) ? (uint32_t)rnd() :
				    (uint32_t)(f->len - PROTO_HEADER_SIZE) +
				    below(8) - 4;

				memcpy(f->buf, &v, 4);
			}
			break;
		case 2:		/* another type */
			if (f->len >= 6) {
				f->buf[4] = (uint8_t)below(80);
				f->buf[5] = (uint8_t)(chance(90) ? 0 : rnd());
			}
			break;
		case 3:		/* descriptors announced */
			if (f->len >= 8)
				f->buf[6] = (uint8_t)below(6);
			break;
		case 4:		/* cut */
			f->len = at;
			break;
		case 5:		/* random bytes inserted */
		case 6: {	/* a run of one byte */
			size_t add = 1 + below(64);
			size_t old = f->len;
			uint8_t c = (uint8_t)rnd();

			if (proto_put_raw(f, add) == NULL)
				break;
			memmove(f->buf + at + add, f->buf + at, old - at);
			for (size_t i = 0; i < add; i++)
				f->buf[at + i] = how == 5 ? (uint8_t)rnd() : c;
			break;
		}
		default:	/* an inner length field */
			if (f->len > PROTO_HEADER_SIZE + 2)
				f->buf[PROTO_HEADER_SIZE + below(
				    (unsigned)(f->len - PROTO_HEADER_SIZE))] =
				    0xff;
			break;
		}
	}
}

static int
make_fd(void)
{
	static const uint8_t data[64];
	int fd = memfd_create("fuzz-live", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	unsigned seals = chance(80) ? F_SEAL_WRITE | F_SEAL_GROW |
	    F_SEAL_SHRINK | F_SEAL_SEAL : F_SEAL_GROW | F_SEAL_SHRINK;
	size_t len = chance(50) ? sizeof(data) : 4096 + sizeof(data);

	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)len) < 0 ||
	    (chance(90) && fcntl(fd, F_ADD_SEALS, seals) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Connections
 */

struct conn {
	int		 fd;
	uint32_t	 next_id;
	uint64_t	 last_msg;	/* msg_id of the last MSG seen */
	uint16_t	 sent_type[64];	/* request type by id % 64, 0 if
					 * mutated */
	unsigned	 who;		/* index in idents */
	bool		 hostile;	/* mutates a quarter of it */
	uint8_t		 in[1 << 16];
	size_t		 in_len;
	size_t		 skip;		/* rest of a frame too big to hold */
	bool		 dead;
	uint8_t		*client;	/* its channel's client set, mapped */
	int		 doorbell;	/* and its doorbell, or -1 */
};

static struct conn conns[CONNS_PER_BATCH];

static int
connect_raw(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);

	if (fd < 0)
		fail("socket", strerror(errno));
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", daemon_.sock);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 &&
	    errno != EAGAIN && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Writes what the socket takes now; the rest is dropped (a cut frame). */
static void
conn_write(struct conn *c, const uint8_t *p, size_t len, int fd)
{
	union proto_fd_control cbuf;

	for (int i = 0; i < 64 && len > 0 && !c->dead; i++) {
		struct iovec iov = { (void *)(uintptr_t)p, len };
		struct msghdr mh = { 0 };
		struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
		ssize_t n;

		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		if (fd >= 0)
			proto_attach_fd(&mh, &cbuf, fd);
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			fd = -1;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			c->dead = true;
			return;
		}
		/* Full: the daemon may have stopped reading us; read. */
		poll(&pfd, 1, 5);
	}
}

/* Counts an answer: greetings, sends, batches, per identity. */
static void
reply_seen(struct conn *c, const struct proto_header *h, const uint8_t *body)
{
	struct body_reply_hello rh;
	struct body_reply_sendv rs;
	uint32_t status;

	if (!body_reply_status(body, h->len, &status))
		return;
	nanswers[c->who]++;
	switch (c->sent_type[h->id % 64]) {
	case PROTO_HELLO:
		if (status != PROTO_OK || h->id != 1 ||
		    !body_reply_hello_get(body, h->len, h->flags, &rh))
			break;
		ngreeted[c->who]++;
		batch_ids[c - conns] = (long)rh.client_id;
		break;
	case PROTO_SEND:
		if (status == PROTO_OK)
			nsends_ok++;
		break;
	case PROTO_SENDV:
		if (!body_reply_sendv_get(body, h->len, h->flags, &rs))
			break;
		nsendv_answered++;
		if (rs.enqueued > 0) {
			nsendv_accepted++;
			nsendv_enqueued += rs.enqueued;
		}
		break;
	}
}

/*
 * Descriptors that came: a CHANNEL answer's three (client set, daemon
 * set, doorbell) give the connection its channel, to scribble on; every
 * other one is closed.
 */
static void
conn_fds(struct conn *c, struct cmsghdr *cm)
{
	size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	int fds[8];
	struct stat st;
	void *p;

	if (n > 8)
		n = 8;
	memcpy(fds, CMSG_DATA(cm), n * sizeof(int));
	if (n == 3 && c->client == NULL && fstat(fds[0], &st) == 0 &&
	    st.st_size == CHANNEL_CLIENT_SIZE) {
		p = mmap(NULL, CHANNEL_CLIENT_SIZE, PROT_READ | PROT_WRITE,
		    MAP_SHARED, fds[0], 0);
		if (p != MAP_FAILED) {
			c->client = p;
			c->doorbell = fds[2];
			fds[2] = -1;
			nchannels++;
		}
	}
	for (size_t j = 0; j < n; j++)
		if (fds[j] >= 0)
			close(fds[j]);
}

/* The consumption word gets any value; the doorbell rings now and then. */
static void
conn_scribble(struct conn *c)
{
	static const uint64_t odd[] = { 0, 1, 2, UINT64_MAX, UINT64_MAX - 1,
	    1ull << 63 };
	uint64_t v = channel_load(c->client, CHANNEL_CLIENT_CONSUMED);

	if (chance(50))
		v += below(8);
	else if (chance(50))
		v = odd[below(sizeof(odd) / sizeof(odd[0]))];
	else
		v = rnd();
	channel_store(c->client, CHANNEL_CLIENT_CONSUMED, v);
	nstores++;
	if (chance(50))
		(void)eventfd_write(c->doorbell, 1);
}

/* Unmaps and closes what conn_fds() kept. */
static void
conn_drop_channel(struct conn *c)
{
	if (c->client != NULL)
		munmap(c->client, CHANNEL_CLIENT_SIZE);
	if (c->doorbell >= 0)
		close(c->doorbell);
	c->client = NULL;
	c->doorbell = -1;
}

/* Reads what is there; notes the last MSG id; closes passed fds. */
static void
conn_read(struct conn *c)
{
	for (int k = 0; k < 64 && !c->dead; k++) {
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(int) * 8)];
		} cbuf;
		struct iovec iov = { c->in + c->in_len,
		    sizeof(c->in) - c->in_len };
		struct msghdr mh = { 0 };
		struct cmsghdr *cm;
		ssize_t n;

		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = sizeof(cbuf.buf);
		n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			c->dead = true;
			return;
		}
		if (n < 0)
			return;
		for (cm = CMSG_FIRSTHDR(&mh); cm != NULL;
		    cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_type == SCM_RIGHTS)
				conn_fds(c, cm);
		/* The rest of a big frame passes unread, over several reads. */
		if (c->skip > 0) {
			size_t drop = c->skip < (size_t)n ? c->skip : (size_t)n;

			memmove(c->in + c->in_len, c->in + c->in_len + drop,
			    (size_t)n - drop);
			n -= (ssize_t)drop;
			c->skip -= drop;
		}
		c->in_len += (size_t)n;
		/* Frames the daemon sent: the header must be sane. */
		for (;;) {
			struct proto_header h;
			enum proto_decode d = proto_header_decode(c->in,
			    c->in_len, PROTO_MAX_BODY, &h);

			if (d == PROTO_DECODE_MALFORMED)
				fail("the daemon sent a malformed frame", "");
			if (d == PROTO_DECODE_MORE)
				break;
			if (h.len > sizeof(c->in) - PROTO_HEADER_SIZE) {
				/* A big message: skip all of it, not just what
				 * has come, or its middle reads as a header. */
				c->skip = PROTO_HEADER_SIZE + h.len - c->in_len;
				c->in_len = 0;
				break;
			}
			if (c->in_len < PROTO_HEADER_SIZE + h.len)
				break;
			if (h.type == PROTO_MSG && h.len >= 8) {
				memcpy(&c->last_msg, c->in + PROTO_HEADER_SIZE,
				    8);
				nmsgs++;
			}
			if (h.type == PROTO_REPLY)
				reply_seen(c, &h, c->in + PROTO_HEADER_SIZE);
			memmove(c->in, c->in + PROTO_HEADER_SIZE + h.len,
			    c->in_len - PROTO_HEADER_SIZE - h.len);
			c->in_len -= PROTO_HEADER_SIZE + h.len;
		}
		if (c->in_len == sizeof(c->in))
			c->in_len = 0;
	}
}

static void
conn_open(struct conn *c)
{
	struct body_hello hb;
	struct proto_writer w;
	size_t start;

	memset(c, 0, sizeof(*c));
	c->doorbell = -1;
	/* As root, most connections are another user's. */
	if (geteuid() == 0 || getuid() == 0)
		c->who = below(NIDENTS);
	become(&idents[c->who]);
	c->fd = connect_raw();
	become(&idents[0]);
	c->hostile = chance(30);
	if (c->fd < 0) {
		c->dead = true;
		return;
	}
	nconns++;
	c->next_id = 1;
	proto_writer_init(&w);
	start = proto_frame_begin(&w);
	hb.version = chance(97) ? PROTO_VERSION : (uint32_t)rnd();
	body_hello_put(&w, &hb);
	c->sent_type[c->next_id % 64] = PROTO_HELLO;
	proto_frame_end(&w, start, PROTO_HELLO, c->next_id++, 0, 0);
	if (chance(5)) {
		mutate(&w);
		c->sent_type[1] = 0;
	}
	if (!chance(2))		/* and sometimes nothing at all */
		conn_write(c, w.buf, w.len, -1);
	proto_writer_free(&w);
}

static void
conn_request(struct conn *c)
{
	struct proto_writer b, f;
	uint32_t flags;
	uint16_t nfds, type;
	size_t start;
	int fd = -1;

	proto_writer_init(&b);
	proto_writer_init(&f);
	type = build(&b, &flags, &nfds, c->last_msg);
	start = proto_frame_begin(&f);
	if (b.len > 0)
		memcpy(proto_put_raw(&f, b.len), b.buf, b.len);
	c->sent_type[c->next_id % 64] = type;
	proto_frame_end(&f, start, type, c->next_id, flags, nfds);
	if (chance(c->hostile ? 25 : 1)) {
		mutate(&f);
		c->sent_type[c->next_id % 64] = 0;
	}
	c->next_id++;
	if (c->client != NULL && chance(40))
		conn_scribble(c);
	if (nfds > 0 || chance(2))
		fd = make_fd();
	if (!proto_writer_failed(&f))
		conn_write(c, f.buf, f.len, fd);
	if (fd >= 0)
		close(fd);
	nframes++;
	proto_writer_free(&f);
	proto_writer_free(&b);
}

static void
batch(void)
{
	memset(batch_ids, 0, sizeof(batch_ids));
	for (int i = 0; i < CONNS_PER_BATCH; i++)
		conn_open(&conns[i]);
	for (int round = 0; round < FRAMES_MAX; round++) {
		for (int i = 0; i < CONNS_PER_BATCH; i++) {
			struct conn *c = &conns[i];

			if (c->dead || chance(30))
				continue;
			conn_request(c);
			conn_read(c);
		}
	}
	/* The ends: clean, abrupt, or after reading what came. */
	for (int i = 0; i < CONNS_PER_BATCH; i++) {
		struct conn *c = &conns[i];

		if (c->fd < 0)
			continue;
		if (!c->dead && chance(50)) {
			struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

			poll(&pfd, 1, (int)below(5));
			conn_read(c);
		}
		close(c->fd);
		c->fd = -1;
		conn_drop_channel(c);
	}
}

/*
 * A fresh client must get in and list.  With keep, it stays open and its
 * direct address joins those the frames use.
 */
static mbx_t *
health(bool keep)
{
	char *json = NULL;
	mbx_t *c;

	alarm(WATCHDOG_S);
	c = mbx_open(daemon_.sock);
	if (c == NULL)
		fail("a fresh client could not connect", strerror(errno));
	if (mbx_list(c, &json) != 0)
		fail("a fresh client could not list", strerror(errno));
	free(json);
	alarm(0);
	if (!mbxd_proc_alive(&daemon_))
		fail("the daemon died", "");
	if (keep) {
		if (nlive == sizeof(live_ids) / sizeof(live_ids[0]))
			nlive = 0;
		live_ids[nlive++] = mbx_id(c);
		return c;
	}
	mbx_close(c);
	return NULL;
}

/*
 * Destroys every mailbox, so that the descriptors of queued zero-copy
 * messages go with them, and takes what waits at c's own direct address
 * (the fuzzed clients send there too); c runs as root or as the only uid.
 */
static void
destroy_all(mbx_t *c)
{
	json_t *all;
	char *json = NULL;
	mbx_msg_t *m;
	size_t i, waited = 0;

	while (mbx_recvmsg(c, NULL, &m, NULL, 0) == 0) {
		mbx_msg_free(m);
		waited++;
	}
	if (errno != EAGAIN)
		fail("receive at the direct address", strerror(errno));
	if (waited > 0)
		fprintf(stderr, "fuzz-live: %zu messages waited at the "
		    "keeper's direct address\n", waited);

	if (mbx_list(c, &json) != 0)
		fail("list", strerror(errno));
	if ((all = json_loads(json, 0, NULL)) == NULL)
		fail("list", "not JSON");
	for (i = 0; i < json_array_size(all); i++) {
		const char *name = json_string_value(json_object_get(
		    json_array_get(all, i), "name"));

		if (name == NULL || mbx_destroy(c, name) != 0)
			fail("destroy", name == NULL ? "no name" :
			    strerror(errno));
	}
	json_decref(all);
	free(json);
}

/*
 * Did the frames reach what they are for?  Valid batches must have been
 * enqueued, and as root, requests of other users must have been
 * answered: a fuzzer whose frames all fail to parse, or whose other
 * users cannot connect, tests nothing behind the decoder.  Only for runs
 * long enough that they cannot miss by chance.
 */
static bool
reached(long batches)
{
	long others = 0;
	bool ok = true;

	if (batches < 50)
		return true;
	for (size_t i = 1; i < NIDENTS; i++)
		others += ngreeted[i] > 0 && nanswers[i] > ngreeted[i];
	if (nsendv_accepted == 0) {
		fprintf(stderr, "fuzz-live: no SENDV enqueued anything (seed "
		    "%llu)\n", seed);
		ok = false;
	}
	if (nstores == 0) {
		fprintf(stderr, "fuzz-live: no channel's consumption word was "
		    "written (seed %llu)\n", seed);
		ok = false;
	}
	if ((geteuid() == 0 || getuid() == 0) && others == 0) {
		fprintf(stderr, "fuzz-live: no request of another user than "
		    "root was answered (seed %llu)\n", seed);
		ok = false;
	}
	return ok;
}

/* What a leak is made of, for the report. */
static void
print_fds(pid_t pid)
{
	char path[64], target[256];

	for (int fd = 0; fd < 1024; fd++) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
		if ((n = readlink(path, target, sizeof(target) - 1)) < 0)
			continue;
		target[n] = '\0';
		fprintf(stderr, "fuzz-live:   fd %d -> %s\n", fd, target);
	}
}

/*
 * The mailboxes the frames name, with a few modes and capacities; as
 * root, m5 and m6 belong to another user (idents[1]): m5 with no group or
 * other bit takes its owner's shared buffers, nobody else's.
 */
static void
setup(mbx_t *c)
{
	static const struct { const char *name; long cap; unsigned mode; }
	    boxes[] = { { "m0", 16, 0666 }, { "m1", 0, 0666 },
	    { "m2", MBX_UNBOUNDED, 0622 }, { "m3", 4, 0600 },
	    { "m4", 64, 0644 }, { "m5", 32, 0600 }, { "m6", 8, 0666 } };
	mbx_t *other;

	become(&idents[1]);
	other = mbx_open(daemon_.sock);
	become(&idents[0]);
	if (other == NULL)
		fail("setup: connect as another user", strerror(errno));
	for (size_t i = 0; i < sizeof(boxes) / sizeof(boxes[0]); i++) {
		struct mbx_attr a;

		mbx_attr_init(&a);
		a.capacity = boxes[i].cap;
		a.mode = boxes[i].mode;
		if (mbx_create(i >= 5 ? other : c, boxes[i].name, &a) != 0 &&
		    errno != EEXIST)
			fail("setup: create", strerror(errno));
	}
	mbx_close(other);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mbxd", required_argument, NULL, 'm' },
		{ "seconds", required_argument, NULL, 't' },
		{ "batches", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 's' },
		{ "wrapper", required_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	const char *mbxd = NULL, *wrapper = NULL;
	long seconds = 30, batches = -1, done = 0;
	int64_t t0, deadline;
	mbx_t *keep[4] = { NULL };
	int ch, st, fds0, fds1;

	seed = (unsigned long long)time(NULL) ^ (unsigned long long)getpid();
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'm':
			mbxd = optarg;
			break;
		case 't':
			seconds = strtol(optarg, NULL, 10);
			break;
		case 'n':
			batches = strtol(optarg, NULL, 10);
			break;
		case 's':
			seed = strtoull(optarg, NULL, 10);
			break;
		case 'w':
			wrapper = optarg;
			break;
		default:
			fprintf(stderr, "usage: fuzz-live --mbxd PATH "
			    "[--seconds "
			    "T] [--batches N] [--seed S] [--wrapper CMD]\n");
			return 2;
		}
	}
	if (mbxd == NULL) {
		fprintf(stderr, "fuzz-live: --mbxd PATH is required\n");
		return 2;
	}
	rng = seed * 2 + 1;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_watchdog);
	if (mbxd_proc_start(&daemon_, mbxd, wrapper, config, 20000) < 0)
		return 1;
	/* Other users must reach the socket (not list, not write). */
	if (geteuid() == 0 && chmod(daemon_.dir, 0711) < 0)
		fail("chmod", strerror(errno));
	fprintf(stderr, "fuzz-live: mbxd pid %d, seed %llu, %ld s\n",
	    (int)daemon_.pid, seed, seconds);
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		keep[i] = health(true);
	/*
	 * keep[0] receives at the end (destroy_all()), which gives it a
	 * channel (PROTOCOL.md, "Consumption by a store"): its doorbell and
	 * the daemon's epoll set of doorbells belong in the baseline.
	 */
	if (mbx_recv(keep[0], NULL, NULL, 0, NULL, 0) != -1 || errno != EAGAIN)
		fail("a first receive at the keeper's address", strerror(errno));
	/*
	 * The first durable mailbox opens and locks the state directory for
	 * the daemon's life (mbxd(8)): that descriptor belongs in the
	 * baseline too, and the log of one that is destroyed does not.
	 */
	{
		struct mbx_attr a;

		mbx_attr_init(&a);
		a.durable = 1;
		if (mbx_create(keep[0], "durable0", &a) != 0 ||
		    mbx_destroy(keep[0], "durable0") != 0)
			fail("a durable mailbox made and destroyed",
			    strerror(errno));
	}
	/* The baseline, with these clients; at the end there is only one
	 * (keep[0]) and one descriptor per client less.  Before setup(),
	 * whose other user's client may not be gone yet (mailboxes hold no
	 * descriptor). */
	fds0 = proc_fd_count(daemon_.pid) - (int)(sizeof(keep) /
	    sizeof(keep[0])) + 1;
	setup(keep[0]);

	t0 = proc_now_ms();
	deadline = t0 + seconds * 1000;
	for (; batches < 0 ? proc_now_ms() < deadline : done < batches;
	    done++) {
		batch();
		health(false);
		if (done % 64 == 63 && mbxd_proc_log_reports(&daemon_) > 0)
			fail("a sanitizer report in the daemon's log", "");
	}

	/* Everyone but keep[0] gone: back to the descriptors of the start. */
	for (size_t i = 1; i < sizeof(keep) / sizeof(keep[0]); i++)
		mbx_close(keep[i]);
	{
		mbx_t *c = keep[0];
		int64_t until = proc_now_ms() + 10000;

		for (int i = 0; i < 10000; i++) {
			json_t *all;
			char *json = NULL;
			size_t n;

			if (mbx_clients(c, &json) != 0)
				fail("clients", strerror(errno));
			all = json_loads(json, 0, NULL);
			n = json_array_size(all);
			json_decref(all);
			free(json);
			if (n == 1 || proc_now_ms() > until)
				break;
			poll(NULL, 0, 10);
		}
		destroy_all(c);
		fds1 = proc_fd_count(daemon_.pid);
		if (fds1 != fds0)
			print_fds(daemon_.pid);
		mbx_close(c);
	}
	if (fds1 != fds0)
		fprintf(stderr, "fuzz-live: mbxd holds %d descriptors with one "
		    "client, %d at the start\n", fds1, fds0);
	st = mbxd_proc_stop(&daemon_, SIGTERM, 20000);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail("the daemon did not exit cleanly on SIGTERM", "");
	if (mbxd_proc_log_reports(&daemon_) > 0)
		fail("a sanitizer report in the daemon's log", "");
	fprintf(stderr, "fuzz-live: %ld batches, %ld connections, %ld frames "
	    "(%ld mutated; %ld sends answered OK, %ld SENDV answered, %ld of "
	    "them accepted with %ld entries enqueued, %ld messages delivered; "
	    "%ld channels, %ld consumption words written) in %lld s: mbxd "
	    "answered after every batch and exited cleanly\n",
	    done, nconns, nframes, nmutated, nsends_ok, nsendv_answered,
	    nsendv_accepted, nsendv_enqueued, nmsgs, nchannels, nstores,
	    (long long)(proc_now_ms() - t0) / 1000);
	for (size_t i = 0; i < NIDENTS; i++)
		fprintf(stderr, "fuzz-live: uid %u: %ld connections greeted, "
		    "%ld answers\n", (unsigned)idents[i].uid, ngreeted[i],
		    nanswers[i]);
	if (!reached(done))
		return 1;
	if (fds1 != fds0) {
		fprintf(stderr, "fuzz-live: descriptors leaked (seed %llu)\n",
		    seed);
		return 1;
	}
	mbxd_proc_cleanup(&daemon_);
	return 0;
}
