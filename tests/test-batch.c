/*
 * test-batch.c - the calls that save round trips and copies, against a
 * real mbxd: mbx_sendv/mbx_recvv, prefetch (messages held by the library
 * ahead of the caller), credit (sends posted without an answer), and
 * zero-copy messages (sealed and shared memfds).  Each keeps the core
 * guarantees: an error means nothing happened, order is kept, nothing is
 * lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"
#include "mbxd-proc.h"
#include "mbx.h"
#include "proto.h"
#include "raw.h"
#include "suites.h"

static void
mk(mbx_t *c, const char *name, long capacity, size_t max_msg, unsigned mode)
{
	struct mbx_attr a;

	mbx_attr_init(&a);
	a.capacity = capacity;
	if (max_msg != 0)
		a.max_msg = max_msg;
	a.mode = mode;
	ASSERT_OK(mbx_create(c, name, &a));
}

/* Receives one message and checks its text. */
static void
want(mbx_t *c, const char *name, const char *text)
{
	char buf[64];
	ssize_t n = mbx_recv(c, name, buf, sizeof(buf) - 1, NULL, 1000);

	ck_assert_msg(n >= 0, "recv %s: %s", name, strerror(errno));
	buf[n] = '\0';
	ck_assert_str_eq(buf, text);
}

/* Waits (5 s at most) for mbxd to hold n descriptors; true if it does. */
static bool
fd_count_reaches(pid_t pid, int n)
{
	for (int i = 0; i < 500; i++) {
		if (proc_fd_count(pid) == n)
			return true;
		usleep(10 * 1000);
	}
	return false;
}

/*
 * The daemon's descriptors once they stay put for 100 ms (at most 5 s):
 * the memfds a CHANNEL answer carries are closed once it is written,
 * which under valgrind comes well after the client has read it.
 */
static int
fd_count_settled(pid_t pid)
{
	int last = proc_fd_count(pid);

	for (int i = 0; i < 50; i++) {
		int now;

		usleep(100 * 1000);
		if ((now = proc_fd_count(pid)) == last)
			break;
		last = now;
	}
	return last;
}

/* Starts a daemon whose configuration allows 64 MiB messages. */
static void
start_big(struct harness *h)
{
	static const char conf[] = "{\"limits\": {\"max_msg\": \"64M\"}}\n";
	char path[HARNESS_PATH_MAX + 16];
	const char *args[] = { "-c", path, NULL };
	FILE *f;

	harness_init(h);
	snprintf(path, sizeof(path), "%s/mbxd.json", h->dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(conf, f);
	fclose(f);
	harness_launch(h, args);
}

START_TEST(sendv_enqueues_a_prefix)
{
	struct harness h;
	struct mbx_smsg v[8];
	struct mbx_rmsg in[10];
	char text[8][16], bufs[10][16];
	mbx_t *c;
	ssize_t n;

	harness_start(&h, NULL);
	c = harness_open(&h);
	mk(c, "b", 5, 0, 0600);
	ASSERT_OK(mbx_bind(c, "b", MBX_BIND_EXCLUSIVE));
	for (int i = 0; i < 8; i++) {
		snprintf(text[i], sizeof(text[i]), "m%d", i);
		v[i] = (struct mbx_smsg){ "b", text[i], strlen(text[i]) };
	}
	/* Five fit: exactly those are enqueued, the rest not at all. */
	ck_assert_int_eq(mbx_sendv(c, v, 8, 0), 5);
	ck_assert_int_eq(harness_mailbox_int(c, "b", "queued"), 5);
	ASSERT_ERR(mbx_sendv(c, v + 5, 3, 0), EAGAIN);
	ASSERT_ERR(mbx_sendv(c, v + 5, 3, 50), ETIMEDOUT);
	ck_assert_int_eq(harness_mailbox_int(c, "b", "queued"), 5);
	for (int i = 0; i < 10; i++)
		in[i] = (struct mbx_rmsg){ .buf = bufs[i], .cap = sizeof(bufs[i]) };
	n = mbx_recvv(c, "b", in, 10, 0);
	ck_assert_int_eq(n, 5);
	for (int i = 0; i < 5; i++) {
		ck_assert_uint_eq(in[i].len, strlen(text[i]));
		ck_assert(memcmp(in[i].buf, text[i], in[i].len) == 0);
		ck_assert_str_eq(in[i].meta.mailbox, "b");
		ck_assert_int_eq(in[i].meta.sender_id, mbx_id(c));
	}
	ASSERT_ERR(mbx_recvv(c, "b", in, 10, 0), EAGAIN);
	ck_assert_int_eq(harness_mailbox_int(c, "b", "received"), 5);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

START_TEST(sendv_to_many_mailboxes)
{
	struct harness h;
	char direct[32];
	mbx_t *s, *r;

	harness_start(&h, NULL);
	s = harness_open(&h);
	r = harness_open(&h);
	mk(s, "x", 10, 0, 0666);
	mk(s, "y", 10, 0, 0666);
	snprintf(direct, sizeof(direct), "@%ld", mbx_id(r));
	{
		struct mbx_smsg v[] = {
			{ "x", "1", 1 }, { direct, "2", 1 }, { "y", "3", 1 },
			{ "x", "4", 1 }, { "nope", "5", 1 }, { "y", "6", 1 },
		};

		/* It stops at the first that cannot go: nope does not exist. */
		ck_assert_int_eq(mbx_sendv(s, v, 6, 0), 4);
		ASSERT_ERR(mbx_sendv(s, v + 4, 2, 0), ENOENT);
	}
	ASSERT_OK(mbx_bind(r, "x", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_bind(r, "y", MBX_BIND_EXCLUSIVE));
	want(r, NULL, "1");
	want(r, NULL, "2");
	want(r, NULL, "3");
	want(r, NULL, "4");
	mbx_close(s);
	mbx_close(r);
	harness_stop(&h);
}
END_TEST

START_TEST(recvv_stops_before_a_message_too_big)
{
	struct harness h;
	struct mbx_rmsg in[4];
	char small[4][4], big[64];
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	mk(c, "r", 10, 0, 0600);
	ASSERT_OK(mbx_bind(c, "r", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_send(c, "r", "ab", 2, 0, 0));
	ASSERT_OK(mbx_send(c, "r", "a longer one", 12, 0, 0));
	for (int i = 0; i < 4; i++)
		in[i] = (struct mbx_rmsg){ .buf = small[i], .cap = 4 };
	ck_assert_int_eq(mbx_recvv(c, "r", in, 4, 0), 1);
	ASSERT_ERR(mbx_recvv(c, "r", in, 4, 0), EMSGSIZE);
	/* It stayed: a big enough buffer gets it. */
	ck_assert_int_eq(mbx_recv(c, "r", big, sizeof(big), NULL, 0), 12);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

START_TEST(prefetched_messages_go_back_when_the_receiver_goes)
{
	struct harness h;
	char text[16];
	mbx_t *s, *r1, *r2;

	harness_start(&h, NULL);
	s = harness_open(&h);
	r1 = harness_open(&h);
	r2 = harness_open(&h);
	mk(s, "p", 100, 0, 0666);
	ASSERT_OK(mbx_bind(r1, "p", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_bind(r2, "p", MBX_BIND_QUEUE));
	for (int i = 0; i < 10; i++) {
		snprintf(text, sizeof(text), "m%d", i);
		ASSERT_OK(mbx_send(s, "p", text, strlen(text), 0, 0));
	}
	/* r1 takes one; the library holds the others ahead of its calls. */
	want(r1, "p", "m0");
	ck_assert_int_eq(harness_mailbox_int(s, "p", "received"), 1);
	want(r1, "p", "m1");
	mbx_close(r1);
	/* What r1 held but never returned goes to r2, in order. */
	for (int i = 2; i < 10; i++) {
		snprintf(text, sizeof(text), "m%d", i);
		want(r2, "p", text);
	}
	ck_assert_int_eq(harness_mailbox_int(s, "p", "received"), 10);
	mbx_close(s);
	mbx_close(r2);
	harness_stop(&h);
}
END_TEST

START_TEST(prefetched_messages_are_revoked_with_the_binding)
{
	struct harness h;
	char buf[16], text[16];
	mbx_t *s, *r1, *r2;

	harness_start(&h, NULL);
	s = harness_open(&h);
	r1 = harness_open(&h);
	r2 = harness_open(&h);
	mk(s, "p", 100, 0, 0666);
	ASSERT_OK(mbx_bind(r1, "p", MBX_BIND_EXCLUSIVE));
	for (int i = 0; i < 5; i++) {
		snprintf(text, sizeof(text), "m%d", i);
		ASSERT_OK(mbx_send(s, "p", text, strlen(text), 0, 0));
	}
	want(r1, "p", "m0");
	ASSERT_OK(mbx_bind(r2, "p", MBX_BIND_REPLACE));
	/* r1 lost the binding: what it held is not its to give any more. */
	ASSERT_ERR(mbx_recv(r1, "p", buf, sizeof(buf), NULL, 0), EPERM);
	for (int i = 1; i < 5; i++) {
		snprintf(text, sizeof(text), "m%d", i);
		want(r2, "p", text);
	}
	ASSERT_ERR(mbx_recv(r2, "p", buf, sizeof(buf), NULL, 0), EAGAIN);
	mbx_close(s);
	mbx_close(r1);
	mbx_close(r2);
	harness_stop(&h);
}
END_TEST

START_TEST(prefetch_can_be_turned_off)
{
	struct harness h;
	mbx_t *s, *r;

	harness_start(&h, NULL);
	s = harness_open(&h);
	r = harness_open(&h);
	ASSERT_ERR(mbx_setopt(r, MBX_OPT_PREFETCH, 0), EINVAL);
	ASSERT_ERR(mbx_setopt(r, 99, 1), EINVAL);
	ASSERT_OK(mbx_setopt(r, MBX_OPT_PREFETCH, 1));
	mk(s, "p", 100, 0, 0666);
	ASSERT_OK(mbx_bind(r, "p", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_send(s, "p", "a", 1, 0, 0));
	ASSERT_OK(mbx_send(s, "p", "b", 1, 0, 0));
	want(r, "p", "a");
	/* One at a time: the second is still queued, not in flight. */
	ck_assert_int_eq(harness_mailbox_int(s, "p", "queued"), 1);
	want(r, "p", "b");
	mbx_close(s);
	mbx_close(r);
	harness_stop(&h);
}
END_TEST

START_TEST(credit_keeps_order_and_capacity)
{
	struct harness h;
	char text[16];
	mbx_t *s, *r;
	int sent = 0;

	harness_start(&h, NULL);
	s = harness_open(&h);
	r = harness_open(&h);
	ASSERT_OK(mbx_setopt(s, MBX_OPT_CREDIT, 1));
	mk(s, "c", 300, 0, 0666);
	ASSERT_OK(mbx_bind(r, "c", MBX_BIND_EXCLUSIVE));
	for (int i = 0; i < 200; i++) {
		snprintf(text, sizeof(text), "c%d", i);
		ASSERT_OK(mbx_send(s, "c", text, strlen(text), 0, 0));
	}
	for (int i = 0; i < 200; i++) {
		snprintf(text, sizeof(text), "c%d", i);
		want(r, "c", text);
	}
	ck_assert_int_eq(harness_mailbox_int(s, "c", "sent"), 200);

	/* Credit never lets a mailbox hold more than its capacity. */
	mk(s, "small", 8, 0, 0666);
	while (mbx_send(s, "small", "x", 1, 0, 0) == 0 && sent < 100)
		sent++;
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(sent, 8);
	ck_assert_int_eq(harness_mailbox_int(s, "small", "queued"), 8);
	mbx_close(s);
	mbx_close(r);
	harness_stop(&h);
}
END_TEST

START_TEST(credit_respects_max_msg_and_sendv_splits_frames)
{
	static char big[10u << 20];
	struct harness h;
	struct mbx_smsg v[3];
	char buf[2048];
	mbx_t *s;

	harness_start(&h, NULL);
	s = harness_open(&h);
	ASSERT_OK(mbx_setopt(s, MBX_OPT_CREDIT, 1));
	mk(s, "small", 100, 100, 0600);
	ASSERT_OK(mbx_send(s, "small", "x", 1, 0, 0));
	/* Credit covers the bytes, but the mailbox takes at most 100. */
	memset(buf, 'b', sizeof(buf));
	ASSERT_ERR(mbx_send(s, "small", buf, 1000, 0, 0), EMSGSIZE);
	ASSERT_OK(mbx_send(s, "small", "y", 1, 0, 0));
	ck_assert_int_eq(harness_mailbox_int(s, "small", "queued"), 2);
	/* 30 MiB in one batch: more than one frame carries, all enqueued. */
	mk(s, "large", 10, 16u << 20, 0600);
	for (int i = 0; i < 3; i++)
		v[i] = (struct mbx_smsg){ "large", big, sizeof(big) };
	ck_assert_int_eq(mbx_sendv(s, v, 3, 0), 3);
	ck_assert_int_eq(harness_mailbox_int(s, "large", "queued"), 3);
	mbx_close(s);
	harness_stop(&h);
}
END_TEST

/*
 * Posts on two handles of one process, alternating: the daemon may read
 * its connections in any order, the library still makes the queue's
 * order the order of the calls, and a third handle sees them all.
 */
START_TEST(credit_keeps_order_across_handles)
{
	enum { N = 300 };
	struct harness h;
	struct mbx_meta meta;
	mbx_t *s[2], *r;
	char buf[32];

	harness_start(&h, NULL);
	r = harness_open(&h);
	mk(r, "o", 2 * N, 0, 0666);
	for (int k = 0; k < 2; k++) {
		s[k] = harness_open(&h);
		ASSERT_OK(mbx_setopt(s[k], MBX_OPT_CREDIT, 1));
	}
	for (int i = 0; i < N; i++) {
		snprintf(buf, sizeof(buf), "m%d", i);
		ASSERT_OK(mbx_send(s[i % 3 != 0], "o", buf, strlen(buf), 0, 0));
	}
	ck_assert_int_eq(harness_mailbox_int(r, "o", "queued"), N);
	ASSERT_OK(mbx_bind(r, "o", MBX_BIND_EXCLUSIVE));
	for (int i = 0; i < N; i++) {
		ssize_t n = mbx_recv(r, "o", buf, sizeof(buf) - 1, &meta, 0);
		char expect[32];

		ck_assert_msg(n >= 0, "recv: %s", strerror(errno));
		buf[n] = '\0';
		snprintf(expect, sizeof(expect), "m%d", i);
		ck_assert_str_eq(buf, expect);
		ck_assert_int_eq(meta.sender_id, mbx_id(s[i % 3 != 0]));
	}
	mbx_close(s[0]);
	mbx_close(s[1]);
	mbx_close(r);
	harness_stop(&h);
}
END_TEST

/*
 * MBX_OPT_ZEROCOPY moves mbx_send() payloads above it into memfds: each
 * one queued holds a descriptor in the daemon, copied ones hold none.
 */
START_TEST(zero_copy_threshold)
{
	struct harness h;
	char buf[64];
	mbx_t *c;
	int fds;

	harness_start(&h, NULL);
	c = harness_open(&h);
	ASSERT_ERR(mbx_setopt(c, MBX_OPT_ZEROCOPY, -1), EINVAL);
	ASSERT_ERR(mbx_setopt(c, MBX_OPT_ZEROCOPY,
	    (long)MBX_MAX_MSG_LIMIT + 1), EINVAL);
	mk(c, "z", 8, 0, 0600);
	/*
	 * Two sends elsewhere first: the second is a post, which opens the
	 * connection's channel, whose two memfds are no message's.
	 */
	mk(c, "warm", 8, 0, 0600);
	ASSERT_OK(mbx_send(c, "warm", "a", 1, 0, 0));
	ASSERT_OK(mbx_send(c, "warm", "b", 1, 0, 0));
	fds = fd_count_settled(h.pid);
	ASSERT_OK(mbx_send(c, "z", "inline", 6, 0, 0));
	ASSERT_OK(mbx_setopt(c, MBX_OPT_ZEROCOPY, 5));
	ASSERT_OK(mbx_send(c, "z", "small", 5, 0, 0));
	ck_assert_int_eq(proc_fd_count(h.pid), fds);
	ASSERT_OK(mbx_send(c, "z", "memfd1", 6, 0, 0));
	ASSERT_OK(mbx_send(c, "z", "memfd2", 6, 0, 0));
	ck_assert_int_eq(proc_fd_count(h.pid), fds + 2);
	ASSERT_OK(mbx_bind(c, "z", MBX_BIND_EXCLUSIVE));
	want(c, "z", "inline");
	want(c, "z", "small");
	want(c, "z", "memfd1");
	want(c, "z", "memfd2");
	ck_assert_int_eq(mbx_recv(c, "z", buf, sizeof(buf), NULL, 0), -1);
	ck_assert(fd_count_reaches(h.pid, fds));
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

START_TEST(credit_ends_with_its_mailbox)
{
	struct harness h;
	mbx_t *s, *admin;

	harness_start(&h, NULL);
	s = harness_open(&h);
	admin = harness_open(&h);
	ASSERT_OK(mbx_setopt(s, MBX_OPT_CREDIT, 1));
	mk(admin, "gone", 100, 0, 0666);
	ASSERT_OK(mbx_send(s, "gone", "a", 1, 0, 0));
	ASSERT_OK(mbx_send(s, "gone", "b", 1, 0, 0));
	ASSERT_OK(mbx_destroy(admin, "gone"));
	/* The daemon said so before the destroy returned: no post into it. */
	ASSERT_ERR(mbx_send(s, "gone", "c", 1, 0, 0), ENOENT);
	/* A new mailbox of the same name is not the old one's credit. */
	mk(admin, "gone", 100, 0, 0666);
	ASSERT_OK(mbx_send(s, "gone", "d", 1, 0, 0));
	ASSERT_OK(mbx_send(s, "gone", "e", 1, 0, 0));
	ck_assert_int_eq(harness_mailbox_int(s, "gone", "queued"), 2);
	mbx_close(s);
	mbx_close(admin);
	harness_stop(&h);
}
END_TEST

/* Sends len bytes of value by zero-copy and receives them in place. */
static void
zero_copy_round(mbx_t *s, mbx_t *r, size_t len, int value, int flags)
{
	struct mbx_meta meta;
	mbx_msg_t *m = mbx_msg_alloc(s, len), *got;
	unsigned char *d;

	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(mbx_msg_len(m), len);
	memset(mbx_msg_data(m), value, len);
	ASSERT_OK(mbx_sendmsg(s, "z", m, flags, -1));
	ASSERT_OK(mbx_recvmsg(r, "z", &got, &meta, 1000));
	ck_assert_uint_eq(mbx_msg_len(got), len);
	ck_assert_uint_eq(meta.len, len);
	d = mbx_msg_data(got);
	ck_assert_int_eq(d[0], value);
	ck_assert_int_eq(d[len / 2], value);
	ck_assert_int_eq(d[len - 1], value);
	mbx_msg_free(got);
}

START_TEST(zero_copy_sealed_and_shared)
{
	struct harness h;
	mbx_t *s, *r;

	start_big(&h);
	s = harness_open(&h);
	r = harness_open(&h);
	mk(s, "z", 4, 32u << 20, 0600);
	ASSERT_OK(mbx_bind(r, "z", MBX_BIND_EXCLUSIVE));
	for (int i = 0; i < 4; i++)
		zero_copy_round(s, r, (1u << 20) + (size_t)i, 'a' + i, 0);
	/* Recycled buffers: the same few go round, each read intact. */
	for (int i = 0; i < 20; i++)
		zero_copy_round(s, r, 1u << 20, 'A' + i, MBX_SHARED);
	zero_copy_round(s, r, 17u << 20, 'q', 0);
	mbx_close(s);
	mbx_close(r);
	harness_stop(&h);
}
END_TEST

START_TEST(zero_copy_meets_the_copying_calls)
{
	struct harness h;
	static char big[20u << 20], out[20u << 20];
	mbx_msg_t *m, *got;
	char small[8];
	mbx_t *s, *r;

	start_big(&h);
	s = harness_open(&h);
	r = harness_open(&h);
	mk(s, "z", 8, 32u << 20, 0600);
	ASSERT_OK(mbx_bind(r, "z", MBX_BIND_EXCLUSIVE));
	/* mbx_send of more than travels inline: zero-copy by itself. */
	memset(big, 'x', sizeof(big));
	ASSERT_OK(mbx_send(s, "z", big, sizeof(big), 0, -1));
	/* A zero-copy message received by copy; too small a buffer first. */
	ASSERT_ERR(mbx_recv(r, "z", small, sizeof(small), NULL, 0), EMSGSIZE);
	ck_assert_int_eq(mbx_recv(r, "z", out, sizeof(out), NULL, 0),
	    (ssize_t)sizeof(out));
	ck_assert(memcmp(big, out, sizeof(out)) == 0);
	/* An inline message received as a message object. */
	ASSERT_OK(mbx_send(s, "z", "inline", 6, 0, 0));
	ASSERT_OK(mbx_recvmsg(r, "z", &got, NULL, 0));
	ck_assert_uint_eq(mbx_msg_len(got), 6);
	ck_assert(memcmp(mbx_msg_data(got), "inline", 6) == 0);
	mbx_msg_free(got);
	/* A failed send leaves the message to the caller. */
	m = mbx_msg_alloc(s, 100);
	ck_assert_ptr_nonnull(m);
	memcpy(mbx_msg_data(m), "kept", 4);
	ASSERT_ERR(mbx_sendmsg(s, "nope", m, 0, 0), ENOENT);
	ASSERT_OK(mbx_sendmsg(s, "z", m, 0, 0));
	ASSERT_OK(mbx_recvmsg(r, "z", &got, NULL, 0));
	ck_assert(memcmp(mbx_msg_data(got), "kept", 4) == 0);
	mbx_msg_free(got);
	mbx_close(s);
	mbx_close(r);
	harness_stop(&h);
}
END_TEST

START_TEST(shared_buffers_stay_within_one_user)
{
	struct harness h;
	mbx_msg_t *m, *got;
	mbx_t *s, *r;

	start_big(&h);
	s = harness_open(&h);
	r = harness_open(&h);
	/* Others could bind this one: a writable buffer must not go there. */
	mk(s, "open", 4, 0, 0644);
	m = mbx_msg_alloc(s, 4096);
	ck_assert_ptr_nonnull(m);
	ASSERT_ERR(mbx_sendmsg(s, "open", m, MBX_SHARED, 0), EPERM);
	ck_assert_int_eq(harness_mailbox_int(s, "open", "queued"), 0);
	/* Sealed, it may go anywhere. */
	ASSERT_OK(mbx_sendmsg(s, "open", m, 0, 0));
	ASSERT_OK(mbx_bind(r, "open", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_recvmsg(r, "open", &got, NULL, 0));
	ck_assert_uint_eq(mbx_msg_len(got), 4096);
	mbx_msg_free(got);
	mbx_close(s);
	mbx_close(r);
	harness_stop(&h);
}
END_TEST

START_TEST(daemon_checks_the_seals)
{
	struct harness h;
	mbx_t *c;
	int sock, fd;

	harness_start(&h, NULL);
	c = harness_open(&h);
	mk(c, "raw", 4, 0, 0600);
	sock = harness_raw_connect(&h);
	harness_raw_hello(sock);
	fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 8192), 0);
	/* Unsealed but claiming to be sealed: refused, nothing queued. */
	raw_send_fd(sock, "raw", 2, PROTO_SEND_FD, fd, 100);
	ck_assert_uint_eq(raw_status(sock, 2), PROTO_EINVAL);
	/* Sealed but smaller than it claims: refused. */
	ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW |
	    F_SEAL_SHRINK | F_SEAL_SEAL), 0);
	raw_send_fd(sock, "raw", 3, PROTO_SEND_FD, fd, 100000);
	ck_assert_uint_eq(raw_status(sock, 3), PROTO_EINVAL);
	ck_assert_int_eq(harness_mailbox_int(c, "raw", "queued"), 0);
	/* Right: accepted. */
	raw_send_fd(sock, "raw", 4, PROTO_SEND_FD, fd, 100);
	ck_assert_uint_eq(raw_status(sock, 4), PROTO_OK);
	ck_assert_int_eq(harness_mailbox_int(c, "raw", "queued"), 1);
	close(fd);
	close(sock);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* A memfd of 64 payload bytes of c, laid out and sealed as libmbx does. */
static int
sealed_memfd(char c, bool sealed)
{
	char data[64];
	int fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	ck_assert_int_ge(fd, 0);
	memset(data, c, sizeof(data));
	ck_assert_int_eq(ftruncate(fd, PROTO_SHARED_HEADER + sizeof(data)), 0);
	ck_assert(pwrite(fd, data, sizeof(data), PROTO_SHARED_HEADER) ==
	    (ssize_t)sizeof(data));
	if (sealed)
		ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE |
		    F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL), 0);
	return fd;
}

/*
 * Reads the REPLY to a SEND with credit: OK and a grant; returns its
 * mailbox id, and whether it covers memfd posts.
 */
static uint64_t
raw_grant(int sock, uint32_t id, bool *zerocopy)
{
	struct proto_reader rd;
	uint8_t *body;
	size_t len;
	uint16_t type;
	uint32_t rid, flags;
	uint64_t mailbox_id;

	ck_assert_int_eq(harness_raw_read(sock, &type, &rid, &flags, &body,
	    &len), 1);
	ck_assert_int_eq(type, PROTO_REPLY);
	ck_assert_uint_eq(rid, id);
	proto_reader_init(&rd, body, len);
	ck_assert_uint_eq(proto_get_u32(&rd), PROTO_OK);
	mailbox_id = proto_get_u64(&rd);
	ck_assert_uint_gt(proto_get_u32(&rd), 1);	/* count */
	proto_get_u64(&rd);				/* bytes */
	proto_get_u64(&rd);				/* max_msg */
	ck_assert(proto_reader_done(&rd));
	free(body);
	*zerocopy = (flags & PROTO_REPLY_ZEROCOPY) != 0;
	return mailbox_id;
}

/*
 * A memfd SEND with credit earns a grant that memfd POSTs may use; a
 * grant earned inline does not cover them (dropped, the descriptor
 * closed); a memfd POST that fails the seal checks closes the connection.
 */
START_TEST(memfd_posts_on_a_zero_copy_grant)
{
	struct harness h;
	bool zerocopy;
	uint64_t id;
	char buf[128];
	long raw_id;
	mbx_t *c;
	int sock, fds;

	harness_start(&h, NULL);
	c = harness_open(&h);
	mk(c, "raw", 16, 0, 0600);
	/*
	 * A first receive opens c's channel (PROTOCOL.md, "Consumption by a
	 * store"), whose doorbell and epoll set mbxd keeps: counted before.
	 */
	ck_assert_int_eq(mbx_recv(c, NULL, buf, sizeof(buf), NULL, 0), -1);
	ck_assert_int_eq(errno, EAGAIN);
	fds = fd_count_settled(h.pid);
	/* Earned inline: no memfd posts. */
	sock = harness_raw_connect(&h);
	raw_id = harness_raw_hello(sock);
	{
		struct proto_writer w;
		size_t start;

		proto_writer_init(&w);
		start = proto_frame_begin(&w);
		proto_put_str(&w, "raw", 3);
		proto_put_i32(&w, 0);
		proto_put_blob(&w, "i", 1);
		proto_frame_end(&w, start, PROTO_SEND, 2, PROTO_SEND_CREDIT, 0);
		ck_assert(harness_raw_write(sock, w.buf, w.len));
		proto_writer_free(&w);
	}
	id = raw_grant(sock, 2, &zerocopy);
	ck_assert(!zerocopy);
	raw_post_fd(sock, 3, id, 0, sealed_memfd('x', true), 64);
	/* Earned by a memfd send: memfd posts queue, in order. */
	raw_send_fd(sock, "raw", 4, PROTO_SEND_FD | PROTO_SEND_CREDIT,
	    sealed_memfd('a', true), 64);
	id = raw_grant(sock, 4, &zerocopy);
	ck_assert(zerocopy);
	raw_post_fd(sock, 5, id, 0, sealed_memfd('b', true), 64);
	raw_post_fd(sock, 6, id, 0, sealed_memfd('c', true), 64);
	ck_assert(harness_wait_mailbox_int(c, "raw", "queued", 4));
	/* Three memfds held: the inline message and the dropped post hold
	 * none. */
	ck_assert(fd_count_reaches(h.pid, fds + 1 + 3));
	/* An unsealed memfd posted as sealed: the connection goes. */
	raw_post_fd(sock, 7, id, 0, sealed_memfd('d', false), 64);
	ck_assert(harness_wait_client_gone(c, raw_id));
	ck_assert_int_eq(harness_mailbox_int(c, "raw", "queued"), 4);
	close(sock);
	ASSERT_OK(mbx_bind(c, "raw", MBX_BIND_EXCLUSIVE));
	want(c, "raw", "i");
	for (char k = 'a'; k <= 'c'; k++) {
		char expect[65];

		memset(expect, k, 64);
		expect[64] = '\0';
		ck_assert_int_eq(mbx_recv(c, "raw", buf, sizeof(buf), NULL, 0),
		    64);
		ck_assert(memcmp(buf, expect, 64) == 0);
	}
	/*
	 * The receives were acknowledged by stores, which mbxd reads before
	 * it handles a request: after this one nothing is held.
	 */
	ck_assert_int_eq(harness_mailbox_int(c, "raw", "queued"), 0);
	ck_assert(fd_count_reaches(h.pid, fds));
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

Suite *
batch_suite(void)
{
	Suite *s = suite_create("batch");
	TCase *tc = tcase_create("batch");

	tcase_set_timeout(tc, harness_tcase_timeout());
	tcase_add_test(tc, sendv_enqueues_a_prefix);
	tcase_add_test(tc, sendv_to_many_mailboxes);
	tcase_add_test(tc, recvv_stops_before_a_message_too_big);
	suite_add_tcase(s, tc);
	tc = tcase_create("prefetch");
	tcase_set_timeout(tc, harness_tcase_timeout());
	tcase_add_test(tc, prefetched_messages_go_back_when_the_receiver_goes);
	tcase_add_test(tc, prefetched_messages_are_revoked_with_the_binding);
	tcase_add_test(tc, prefetch_can_be_turned_off);
	suite_add_tcase(s, tc);
	tc = tcase_create("credit");
	tcase_set_timeout(tc, harness_tcase_timeout());
	tcase_add_test(tc, credit_keeps_order_and_capacity);
	tcase_add_test(tc, credit_ends_with_its_mailbox);
	tcase_add_test(tc, credit_keeps_order_across_handles);
	tcase_add_test(tc, credit_respects_max_msg_and_sendv_splits_frames);
	suite_add_tcase(s, tc);
	tc = tcase_create("zerocopy");
	tcase_set_timeout(tc, harness_tcase_timeout());
	tcase_add_test(tc, zero_copy_sealed_and_shared);
	tcase_add_test(tc, zero_copy_meets_the_copying_calls);
	tcase_add_test(tc, shared_buffers_stay_within_one_user);
	tcase_add_test(tc, daemon_checks_the_seals);
	tcase_add_test(tc, zero_copy_threshold);
	tcase_add_test(tc, memfd_posts_on_a_zero_copy_grant);
	suite_add_tcase(s, tc);
	return s;
}
