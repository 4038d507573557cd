/*
 * test-posts.c - posts through a channel's tx ring into a real mbxd
 * (PROTOCOL.md, "CHANNEL" and "Version 6"): the CHANNEL handshake and
 * its descriptors, posts taken in order and delivered, a socket request
 * that follows a post queued after it however cold the ring was and
 * however many posts wait, posts of a client that went away, rings a
 * hostile client wrote, and libmbx's own posts waiting for room.
 *
 * Most tests write the ring side here with proto/channel.h, so that they
 * can lie and break rules; the receiving side is libmbx.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "body.h"
#include "channel.h"
#include "harness.h"
#include "proto.h"
#include "raw.h"
#include "suites.h"
#include "users.h"

/* A raw client's end of a channel. */
struct chan {
	int		 sock;
	uint8_t		*client;
	const uint8_t	*daemon;
	int		 doorbell;
	struct channel_tx tx;
	uint64_t	 mailbox_id;	/* the grant posts use */
	unsigned	 left;		/* posts it still covers */
	uint32_t	 next_id;
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Reads one frame with whatever descriptors came with it: the header,
 * then the body; its type, id, body (static, len bytes) and fds.
 */
static void
read_frame_fds(int sock, uint16_t *type, uint32_t *id, uint8_t *body,
    size_t cap, size_t *len, int *fds, int *nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(8 * sizeof(int))];
	} cbuf;
	uint8_t hdr[PROTO_HEADER_SIZE];
	struct proto_header h;
	struct iovec iov = { hdr, sizeof(hdr) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf) };
	struct cmsghdr *cm;
	size_t got = 0;
	ssize_t n;

	*nfds = 0;
	n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	ck_assert_int_eq(n, (ssize_t)sizeof(hdr));
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_RIGHTS) {
			int k = (int)((cm->cmsg_len - CMSG_LEN(0)) /
			    sizeof(int));

			memcpy(fds + *nfds, CMSG_DATA(cm), k * sizeof(int));
			*nfds += k;
		}
	ck_assert_int_eq(proto_header_decode(hdr, sizeof(hdr), PROTO_MAX_BODY,
	    &h), PROTO_DECODE_OK);
	ck_assert_uint_le(h.len, cap);
	while (got < h.len) {
		n = read(sock, body + got, h.len - got);
		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
	*type = h.type;
	*id = h.id;
	*len = h.len;
}

/* CHANNEL on sock: the answer's status, and on OK the channel mapped. */
static uint32_t
chan_ask(struct chan *c)
{
	struct body_reply_channel rc;
	uint8_t body[64];
	uint16_t type;
	uint32_t id;
	size_t len;
	int fds[8], nfds;
	struct stat st;
	void *p;

	raw_frame(c->sock, PROTO_CHANNEL, c->next_id, 0, 0, NULL);
	read_frame_fds(c->sock, &type, &id, body, sizeof(body), &len, fds,
	    &nfds);
	ck_assert_int_eq(type, PROTO_REPLY);
	ck_assert_uint_eq(id, c->next_id);
	c->next_id++;
	ck_assert(body_reply_channel_get(body, len, 0, &rc));
	if (rc.status != PROTO_OK) {
		ck_assert_int_eq(nfds, 0);
		return rc.status;
	}
	ck_assert_int_eq(nfds, 3);
	ck_assert_uint_eq(rc.ring_size, CHANNEL_RING_SIZE);
	ck_assert_int_eq(fstat(fds[0], &st), 0);
	ck_assert_int_eq(st.st_size, CHANNEL_CLIENT_SIZE);
	ck_assert_int_eq(fstat(fds[1], &st), 0);
	ck_assert_int_eq(st.st_size, CHANNEL_DAEMON_SIZE);
	p = mmap(NULL, CHANNEL_CLIENT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
	    fds[0], 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	c->client = p;
	/* The daemon's set: read-only, whatever the client asks. */
	ck_assert_ptr_eq(mmap(NULL, CHANNEL_DAEMON_SIZE, PROT_READ |
	    PROT_WRITE, MAP_SHARED, fds[1], 0), MAP_FAILED);
	p = mmap(NULL, CHANNEL_DAEMON_SIZE, PROT_READ, MAP_SHARED, fds[1], 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	c->daemon = p;
	close(fds[0]);
	close(fds[1]);
	c->doorbell = fds[2];
	channel_tx_init(&c->tx, c->client + CHANNEL_CLIENT_RING, 0);
	return PROTO_OK;
}

static void
chan_open(const struct harness *h, struct chan *c)
{
	memset(c, 0, sizeof(*c));
	c->doorbell = -1;
	c->next_id = 2;
	c->sock = harness_raw_connect(h);
	ck_assert_int_gt(harness_raw_hello(c->sock), 0);
	ck_assert_uint_eq(chan_ask(c), PROTO_OK);
}

static void
chan_close(struct chan *c)
{
	if (c->client != NULL)
		munmap(c->client, CHANNEL_CLIENT_SIZE);
	if (c->daemon != NULL)
		munmap((void *)(uintptr_t)c->daemon, CHANNEL_DAEMON_SIZE);
	if (c->doorbell >= 0)
		close(c->doorbell);
	if (c->sock >= 0)
		close(c->sock);
	c->client = NULL;
	c->daemon = NULL;
	c->doorbell = c->sock = -1;
}

/*
 * A SEND on the socket that asks for credit: its status; the grant it
 * earned, if any, replaces the channel's.  Every post published before
 * is taken first (the daemon's pass before a request), so the count the
 * answer gives is exact.
 */
static uint32_t
chan_send(struct chan *c, const char *name, const void *data, size_t len)
{
	uint8_t *body;
	size_t blen;
	uint32_t status, id = c->next_id++;
	struct body_reply_send rs;

	raw_send(c->sock, id, name, strlen(name), data, len,
	    PROTO_SEND_CREDIT, -1);
	status = raw_status_body(c->sock, id, &body, &blen);
	if (status == PROTO_OK) {
		ck_assert(body_reply_send_get(body, blen, 0, &rs));
		if (rs.has_grant) {
			c->mailbox_id = rs.mailbox_id;
			c->left = rs.count;
		}
	}
	free(body);
	return status;
}

/*
 * One post, published, with the doorbell rung if mbxd sleeps: the
 * writer's half of the wake-up protocol (publish, fence, look).
 */
static void
chan_post_stamped(struct chan *c, const void *data, size_t len,
    uint64_t stamp)
{
	struct body_post b = { c->mailbox_id, false, 0, { data, len } };
	struct proto_writer w;
	uint8_t *at;

	proto_writer_init(&w);
	body_post_put(&w, &b);
	ck_assert(!proto_writer_failed(&w));
	at = channel_tx_reserve(&c->tx, channel_load(c->daemon,
	    CHANNEL_DAEMON_TX_HEAD), CHANNEL_POST, 0, stamp, w.len);
	ck_assert_ptr_nonnull(at);
	memcpy(at, w.buf, w.len);
	proto_writer_free(&w);
	channel_store(c->client, CHANNEL_CLIENT_TX_TAIL,
	    channel_tx_publish(&c->tx));
	channel_fence();
	if (channel_load(c->daemon, CHANNEL_DAEMON_SLEEP) & CHANNEL_WANT_DATA)
		ck_assert_int_eq(eventfd_write(c->doorbell, 1), 0);
}

static void
chan_post(struct chan *c, const void *data, size_t len)
{
	ck_assert_uint_gt(c->left, 0);
	c->left--;
	chan_post_stamped(c, data, len, now_ns());
}

static void
start(struct harness *h)
{
	daemon_start(h, NULL);
}

static mbx_t *
receiver(const struct harness *h, const char *name)
{
	mbx_t *c = harness_open(h);
	struct mbx_attr a;

	ck_assert_ptr_nonnull(c);
	mbx_attr_init(&a);
	a.capacity = 1 << 20;
	a.mode = 0666;
	ck_assert_int_eq(mbx_create(c, name, &a), 0);
	ck_assert_int_eq(mbx_bind(c, name, MBX_BIND_EXCLUSIVE), 0);
	return c;
}

/* The next message on name, which must be want. */
static void
expect(mbx_t *c, const char *name, const char *want)
{
	char buf[256];
	ssize_t n = mbx_recv(c, name, buf, sizeof(buf) - 1, NULL,
	    bound_ms(5000));

	ck_assert_msg(n >= 0, "recv: %s", strerror(errno));
	buf[n] = '\0';
	ck_assert_str_eq(buf, want);
}

START_TEST(channel_handshake)
{
	struct harness h;
	struct chan c;

	start(&h);
	chan_open(&h, &c);
	/* One per connection. */
	ck_assert_uint_eq(chan_ask(&c), PROTO_EEXIST);
	/* Nothing seals can be undone or the sets resized: see test-rings. */
	chan_close(&c);
	harness_stop(&h);
}
END_TEST

/* Waits (5 s at most) until mbxd counts n clients; true if it does. */
static bool
clients_settle(mbx_t *adm, size_t n)
{
	for (int i = 0; i < 500; i++) {
		json_t *list = harness_clients(adm);
		size_t have = json_array_size(list);

		json_decref(list);
		if (have == n)
			return true;
		usleep(10 * 1000);
	}
	return false;
}

/*
 * mbxd keeps nothing of a channel once its connection is gone: not the
 * rings, not the doorbell, and not the set it watches doorbells with
 * (which the first channel creates and the last one closes).
 */
START_TEST(channel_leaves_no_descriptor)
{
	struct harness h;
	struct chan c;
	mbx_t *adm;
	int fds;

	start(&h);
	ck_assert_ptr_nonnull(adm = harness_open(&h));
	/* The baseline: this client alone (the harness's probe gone). */
	ck_assert(clients_settle(adm, 1));
	fds = harness_proc_fd_count(h.pid);
	for (int i = 0; i < 3; i++) {
		chan_open(&h, &c);
		ck_assert_int_gt(harness_proc_fd_count(h.pid), fds);
		chan_close(&c);
		ck_assert(clients_settle(adm, 1));
		ck_assert_int_eq(harness_proc_fd_count(h.pid), fds);
	}
	mbx_close(adm);
	harness_stop(&h);
}
END_TEST

/* Posts come out in the order they were published, payloads intact. */
START_TEST(posts_arrive_in_order)
{
	struct harness h;
	struct chan c;
	mbx_t *r;
	char msg[64];
	int n = scaled(3000), sent = 0;

	start(&h);
	r = receiver(&h, "posts");
	chan_open(&h, &c);
	ck_assert_uint_eq(chan_send(&c, "posts", "m0", 2), PROTO_OK);
	sent = 1;
	while (sent < n) {
		if (c.left == 0) {
			snprintf(msg, sizeof(msg), "m%d", sent++);
			ck_assert_uint_eq(chan_send(&c, "posts", msg,
			    strlen(msg)), PROTO_OK);
			continue;
		}
		snprintf(msg, sizeof(msg), "m%d", sent++);
		chan_post(&c, msg, strlen(msg));
	}
	ck_assert_uint_ne(c.mailbox_id, 0);
	for (int i = 0; i < n; i++) {
		snprintf(msg, sizeof(msg), "m%d", i);
		expect(r, "posts", msg);
	}
	chan_close(&c);
	mbx_close(r);
	harness_stop(&h);
}
END_TEST

/*
 * A socket request that follows a post is queued after it, whatever the
 * ring's state: here a post, then a plain mbx_send on another connection
 * of the same process, alternating, with pauses long enough for mbxd to
 * cool the ring and sleep, so that the post reaches it through the
 * doorbell while the send comes through the socket.
 */
START_TEST(socket_send_after_post_is_after)
{
	struct harness h;
	struct chan c;
	mbx_t *r, *s;
	int n = scaled(400), nwant = 0;
	char (*want)[32] = calloc((size_t)(3 * n + 2), sizeof(*want));

	ck_assert_ptr_nonnull(want);
	start(&h);
	r = receiver(&h, "mixed");
	s = harness_open(&h);
	chan_open(&h, &c);
	snprintf(want[nwant++], sizeof(want[0]), "first");
	ck_assert_uint_eq(chan_send(&c, "mixed", "first", 5), PROTO_OK);
	for (int i = 0; i < n; i++) {
		if (c.left == 0) {
			snprintf(want[nwant], sizeof(want[0]), "refill %d", i);
			ck_assert_uint_eq(chan_send(&c, "mixed", want[nwant],
			    strlen(want[nwant])), PROTO_OK);
			nwant++;
		}
		snprintf(want[nwant], sizeof(want[0]), "post %d", i);
		chan_post(&c, want[nwant], strlen(want[nwant]));
		nwant++;
		snprintf(want[nwant], sizeof(want[0]), "send %d", i);
		ck_assert_int_eq(mbx_send(s, "mixed", want[nwant],
		    strlen(want[nwant]), 0, -1), 0);
		nwant++;
		if (i % 4 == 0)
			usleep(200);	/* past SESSION_SPIN_NS: it sleeps */
	}
	for (int i = 0; i < nwant; i++)
		expect(r, "mixed", want[i]);
	free(want);
	chan_close(&c);
	mbx_close(s);
	mbx_close(r);
	harness_stop(&h);
}
END_TEST

/* What a client published before it went is delivered. */
START_TEST(posts_of_a_client_that_went)
{
	struct harness h;
	struct chan c;
	mbx_t *r;
	char msg[64];
	int n;

	start(&h);
	r = receiver(&h, "gone");
	chan_open(&h, &c);
	ck_assert_uint_eq(chan_send(&c, "gone", "m", 1), PROTO_OK);
	n = (int)c.left;
	ck_assert_int_gt(n, 1);
	for (int i = 0; i < n; i++) {
		snprintf(msg, sizeof(msg), "p%d", i);
		chan_post(&c, msg, strlen(msg));
	}
	chan_close(&c);
	expect(r, "gone", "m");
	for (int i = 0; i < n; i++) {
		snprintf(msg, sizeof(msg), "p%d", i);
		expect(r, "gone", msg);
	}
	mbx_close(r);
	harness_stop(&h);
}
END_TEST

/*
 * A stamp far in the future is the client's lie: its post is still
 * delivered (held one pass at most), and mbxd does not spin on it.
 */
START_TEST(future_stamp_does_not_stall)
{
	struct harness h;
	struct chan c;
	mbx_t *r;
	long cpu;

	start(&h);
	r = receiver(&h, "liar");
	chan_open(&h, &c);
	ck_assert_uint_eq(chan_send(&c, "liar", "m", 1), PROTO_OK);
	expect(r, "liar", "m");
	c.left--;
	chan_post_stamped(&c, "late", 4, UINT64_MAX);
	c.left--;
	chan_post_stamped(&c, "later", 5, UINT64_MAX - 1);
	expect(r, "liar", "late");
	expect(r, "liar", "later");
	cpu = harness_proc_cpu_ms(h.pid);
	usleep(500 * 1000);
	ck_assert_int_lt(harness_proc_cpu_ms(h.pid) - cpu, 100);
	chan_close(&c);
	mbx_close(r);
	harness_stop(&h);
}
END_TEST

/*
 * A ring that breaks the rules closes that connection only: a tail
 * that runs past the ring, a record of an unknown kind, a record whose
 * body is no POST.  Another client's posts and sends go on.
 */
START_TEST(hostile_rings_close_their_connection)
{
	struct harness h;
	struct chan bad, good;
	mbx_t *r;

	start(&h);
	r = receiver(&h, "hostile");
	chan_open(&h, &good);
	ck_assert_uint_eq(chan_send(&good, "hostile", "g0", 2), PROTO_OK);
	expect(r, "hostile", "g0");
	for (int k = 0; k < 3; k++) {
		uint8_t *at;

		chan_open(&h, &bad);
		ck_assert_uint_eq(chan_send(&bad, "hostile", "b", 1),
		    PROTO_OK);
		expect(r, "hostile", "b");
		switch (k) {
		case 0:
			channel_store(bad.client, CHANNEL_CLIENT_TX_TAIL,
			    3 * CHANNEL_RING_SIZE);
			break;
		case 1:
			at = channel_tx_reserve(&bad.tx, 0, CHANNEL_MSG, 0,
			    now_ns(), 8);
			memset(at, 0, 8);
			channel_store(bad.client, CHANNEL_CLIENT_TX_TAIL,
			    channel_tx_publish(&bad.tx));
			break;
		default:
			at = channel_tx_reserve(&bad.tx, 0, CHANNEL_POST, 0,
			    now_ns(), 5);
			memcpy(at, "short", 5);
			channel_store(bad.client, CHANNEL_CLIENT_TX_TAIL,
			    channel_tx_publish(&bad.tx));
			break;
		}
		ck_assert_int_eq(eventfd_write(bad.doorbell, 1), 0);
		ck_assert(raw_closed(bad.sock, 4));
		chan_close(&bad);
		/* The other client is served as before. */
		chan_post(&good, "g1", 2);
		expect(r, "hostile", "g1");
		if (good.left == 0) {
			ck_assert_uint_eq(chan_send(&good, "hostile", "g", 1),
			    PROTO_OK);
			expect(r, "hostile", "g");
		}
	}
	chan_close(&good);
	mbx_close(r);
	harness_stop(&h);
}
END_TEST

/*
 * n posts "PREFIX i" on the grant of mailbox_id, all published by one
 * store of the tail (a batch mbxd finds whole), without ringing.
 */
static void
chan_post_many(struct chan *c, uint64_t mailbox_id, const char *prefix,
    int n)
{
	for (int i = 0; i < n; i++) {
		char msg[32];
		int len = snprintf(msg, sizeof(msg), "%s %d", prefix, i);
		struct body_post b = { mailbox_id, false, 0,
		    { msg, (size_t)len } };
		struct proto_writer w;
		uint8_t *at;

		proto_writer_init(&w);
		body_post_put(&w, &b);
		ck_assert(!proto_writer_failed(&w));
		at = channel_tx_reserve(&c->tx, channel_load(c->daemon,
		    CHANNEL_DAEMON_TX_HEAD), CHANNEL_POST, 0, now_ns(), w.len);
		ck_assert_ptr_nonnull(at);
		memcpy(at, w.buf, w.len);
		proto_writer_free(&w);
	}
	channel_store(c->client, CHANNEL_CLIENT_TX_TAIL,
	    channel_tx_publish(&c->tx));
}

/* Waits (bounded) until mbxd's state is st ('T': stopped). */
static void
daemon_state_wait(const struct harness *h, char st)
{
	int64_t end = harness_now_ms() + bound_ms(5000);

	while (harness_proc_state(h->pid) != st && harness_now_ms() < end)
		usleep(1000);
	ck_assert_int_eq(harness_proc_state(h->pid), st);
}

/*
 * More posts than one pass takes from a ring (PASS_SOURCE_BATCH), then a
 * socket request: every post is queued before it, not only the first
 * pass's.  mbxd is stopped while the client writes, so that it finds the
 * posts and the request at once: 64 posts to "b" first, then 64 to "a",
 * then a SEND to "a", which must come after all of them.
 */
START_TEST(request_after_more_posts_than_a_pass_takes)
{
	struct harness h;
	struct chan c;
	mbx_t *r;
	uint64_t id_b;
	unsigned left_b;
	char msg[32];
	uint32_t sid;

	start(&h);
	r = receiver(&h, "a");
	{
		struct mbx_attr a;

		mbx_attr_init(&a);
		a.capacity = 1 << 20;
		a.mode = 0666;
		ck_assert_int_eq(mbx_create(r, "b", &a), 0);
	}
	chan_open(&h, &c);
	ck_assert_uint_eq(chan_send(&c, "b", "b first", 7), PROTO_OK);
	id_b = c.mailbox_id;
	left_b = c.left;
	ck_assert_uint_eq(chan_send(&c, "a", "a first", 7), PROTO_OK);
	ck_assert_uint_eq(left_b, 64);
	ck_assert_uint_eq(c.left, 64);
	ck_assert_uint_ne(c.mailbox_id, id_b);

	ck_assert_int_eq(kill(h.pid, SIGSTOP), 0);
	daemon_state_wait(&h, 'T');
	chan_post_many(&c, id_b, "b", 64);
	chan_post_many(&c, c.mailbox_id, "a", 64);
	ck_assert_int_eq(eventfd_write(c.doorbell, 1), 0);
	sid = c.next_id++;
	raw_send(c.sock, sid, "a", 1, "a last", 6, 0, -1);
	ck_assert_int_eq(kill(h.pid, SIGCONT), 0);
	ck_assert_uint_eq(raw_status(c.sock, sid), PROTO_OK);

	expect(r, "a", "a first");
	for (int i = 0; i < 64; i++) {
		snprintf(msg, sizeof(msg), "a %d", i);
		expect(r, "a", msg);
	}
	expect(r, "a", "a last");
	ck_assert_int_eq(mbx_bind(r, "b", MBX_BIND_EXCLUSIVE), 0);
	expect(r, "b", "b first");
	for (int i = 0; i < 64; i++) {
		snprintf(msg, sizeof(msg), "b %d", i);
		expect(r, "b", msg);
	}
	chan_close(&c);
	mbx_close(r);
	harness_stop(&h);
}
END_TEST

/*
 * libmbx's own posts (MBX_OPT_CREDIT) through its channel: with mbxd
 * stopped, two grants of 64 slots of 4 KiB take more than the 256 KiB
 * ring, so the sender must wait for room, asleep, until mbxd drains the
 * ring and wakes it (WAKE); then every message arrives whole, in order.
 */
#define ROOM_LEN	4096

struct room_arg {
	int	n;		/* posts per mailbox after the first send */
};

static void
room_fill(char *buf, const char *mb, int i)
{
	memset(buf, 'a' + i % 26, ROOM_LEN);
	snprintf(buf, 16, "%s%d", mb, i);
}

static int
child_room(const struct harness *h, void *arg)
{
	const struct room_arg *a = arg;
	char path[HARNESS_PATH_MAX + 16], buf[ROOM_LEN], b;
	struct pollfd p;
	mbx_t *c;
	int gate;

	snprintf(path, sizeof(path), "%s/gate", h->dir);
	CHILD_REQUIRE((gate = open(path, O_RDONLY | O_NONBLOCK |
	    O_CLOEXEC)) >= 0);
	CHILD_REQUIRE((c = mbx_open(h->sock)) != NULL);
	CHILD_REQUIRE(mbx_setopt(c, MBX_OPT_CREDIT, 1) == 0);
	room_fill(buf, "x", 0);
	CHILD_REQUIRE(mbx_send(c, "x", buf, ROOM_LEN, 0, -1) == 0);
	room_fill(buf, "y", 0);
	CHILD_REQUIRE(mbx_send(c, "y", buf, ROOM_LEN, 0, -1) == 0);
	harness_report(1);
	p = (struct pollfd){ .fd = gate, .events = POLLIN };
	CHILD_REQUIRE(poll(&p, 1, bound_ms(10000)) == 1);
	CHILD_REQUIRE(read(gate, &b, 1) == 1);
	for (int i = 1; i <= a->n; i++) {
		room_fill(buf, "x", i);
		CHILD_REQUIRE(mbx_send(c, "x", buf, ROOM_LEN, 0, -1) == 0);
		room_fill(buf, "y", i);
		CHILD_REQUIRE(mbx_send(c, "y", buf, ROOM_LEN, 0, -1) == 0);
	}
	harness_report(2);
	mbx_close(c);
	close(gate);
	return 0;
}

START_TEST(library_posts_wait_for_room)
{
	struct harness h;
	struct harness_child kid;
	struct room_arg a = { 63 };
	char path[HARNESS_PATH_MAX + 16], buf[ROOM_LEN], want[ROOM_LEN];
	struct mbx_attr at;
	mbx_t *r;
	int gate;

	start(&h);
	r = receiver(&h, "x");
	mbx_attr_init(&at);
	at.capacity = 1 << 20;
	at.mode = 0666;
	ck_assert_int_eq(mbx_create(r, "y", &at), 0);
	snprintf(path, sizeof(path), "%s/gate", h.dir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	harness_child_start(&kid, &h, child_room, &a);
	ck_assert_int_eq(harness_child_read(&kid), 1);
	ck_assert_int_ge(gate = open(path, O_WRONLY | O_CLOEXEC), 0);

	ck_assert_int_eq(kill(h.pid, SIGSTOP), 0);
	daemon_state_wait(&h, 'T');
	ck_assert_int_eq(write(gate, "g", 1), 1);
	/* The ring fills and the sender sleeps, waiting for room. */
	usleep(300 * 1000);
	ck_assert(harness_child_running(&kid));
	ck_assert_int_eq(harness_proc_state(kid.pid), 'S');
	ck_assert_int_eq(kill(h.pid, SIGCONT), 0);
	ck_assert_int_eq(harness_child_read(&kid), 2);
	ck_assert_int_eq(harness_child_join(&kid), 0);

	ck_assert_int_eq(mbx_bind(r, "y", MBX_BIND_EXCLUSIVE), 0);
	for (int m = 0; m < 2; m++)
		for (int i = 0; i <= a.n; i++) {
			const char *mb = m == 0 ? "x" : "y";
			ssize_t n = mbx_recv(r, mb, buf, sizeof(buf), NULL,
			    bound_ms(5000));

			ck_assert_int_eq(n, ROOM_LEN);
			room_fill(want, mb, i);
			ck_assert_msg(memcmp(buf, want, ROOM_LEN) == 0,
			    "%s: message %d is not what was sent", mb, i);
		}
	close(gate);
	mbx_close(r);
	harness_stop(&h);
}
END_TEST

/* The next frame on sock is a MSG flagged PROTO_MSG_STORE carrying want. */
static void
raw_expect_stored(int sock, uint32_t req, const char *want)
{
	struct body_msg m;
	uint16_t type;
	uint32_t id, flags;
	uint8_t *body;
	size_t len;

	ck_assert_int_eq(harness_raw_read(sock, &type, &id, &flags, &body,
	    &len), 1);
	ck_assert_uint_eq(type, PROTO_MSG);
	ck_assert_uint_eq(id, req);
	ck_assert_uint_eq(flags & PROTO_MSG_STORE, PROTO_MSG_STORE);
	ck_assert(body_msg_get(body, len, flags, &m));
	ck_assert_uint_eq(m.payload.len, strlen(want));
	ck_assert(memcmp(m.payload.ptr, want, m.payload.len) == 0);
	free(body);
}

/*
 * The consumption word is the client's: a store past what was handed to
 * the connection acknowledges only what was handed (clamped), and one
 * that goes backwards undoes nothing.  What was never delivered stays
 * queued for the next receiver.
 */
START_TEST(hostile_consumption_word)
{
	struct harness h;
	struct chan r;
	mbx_t *adm;

	start(&h);
	adm = harness_open(&h);
	chan_open(&h, &r);
	raw_create(r.sock, r.next_id, "q", 1, 64);
	ck_assert_uint_eq(raw_status(r.sock, r.next_id++), PROTO_OK);
	raw_bind_ok(r.sock, r.next_id++, "q");
	channel_store(r.client, CHANNEL_CLIENT_CONSUMED, UINT64_MAX);
	for (int i = 1; i <= 3; i++) {
		char m[16];

		snprintf(m, sizeof(m), "m%d", i);
		ck_assert_int_eq(mbx_send(adm, "q", m, 2, 0, 0), 0);
	}
	raw_recv(r.sock, r.next_id, "q", 1, 0, 64);
	raw_expect_stored(r.sock, r.next_id++, "m1");
	/* The word says "everything": only m1 was handed over. */
	ck_assert(harness_wait_mailbox_int(adm, "q", "received", 1));
	ck_assert_int_eq(harness_mailbox_int(adm, "q", "queued"), 2);
	raw_recv(r.sock, r.next_id, "q", 1, 0, 64);
	raw_expect_stored(r.sock, r.next_id++, "m2");
	ck_assert(harness_wait_mailbox_int(adm, "q", "received", 2));
	channel_store(r.client, CHANNEL_CLIENT_CONSUMED, 0);
	raw_sync(r.sock, r.next_id++);
	ck_assert_int_eq(harness_mailbox_int(adm, "q", "received"), 2);
	ck_assert_int_eq(harness_mailbox_int(adm, "q", "queued"), 1);
	chan_close(&r);
	ck_assert_int_eq(mbx_bind(adm, "q", MBX_BIND_QUEUE), 0);
	expect(adm, "q", "m3");
	mbx_close(adm);
	harness_stop(&h);
}
END_TEST

Suite *
posts_suite(void)
{
	Suite *s = suite_create("posts");
	TCase *tc = tcase_create("ring posts");

	tcase_set_timeout(tc, harness_tcase_timeout());
	tcase_add_test(tc, channel_handshake);
	tcase_add_test(tc, channel_leaves_no_descriptor);
	tcase_add_test(tc, posts_arrive_in_order);
	tcase_add_test(tc, socket_send_after_post_is_after);
	tcase_add_test(tc, posts_of_a_client_that_went);
	tcase_add_test(tc, future_stamp_does_not_stall);
	tcase_add_test(tc, hostile_rings_close_their_connection);
	tcase_add_test(tc, request_after_more_posts_than_a_pass_takes);
	tcase_add_test(tc, library_posts_wait_for_room);
	tcase_add_test(tc, hostile_consumption_word);
	suite_add_tcase(s, tc);
	return s;
}
