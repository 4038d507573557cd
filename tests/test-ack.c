/*
 * test-ack.c - work queues (issue 12): explicit acknowledgement
 * (MBX_OPT_ACK, mbx_ack(), mbx_nack()), redelivery with an attempt
 * count, acknowledgement timeouts and dead-letter mailboxes, against a
 * real mbxd, through libmbx and mbxctl.
 *
 * "At once" is checked without a clock: the mailboxes here have no
 * acknowledgement timeout unless the test is about it, so a message that
 * comes back at all came back because its holder went.  Delays are
 * checked from below only (a NACK's delay is the least time before the
 * message returns).
 */
#include <check.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "mbx.h"
#include "suites.h"

/* A mailbox with explicit-ack attributes; dl NULL: none. */
static void
create_wq(mbx_t *c, const char *name, long max_attempts, const char *dl,
    long ack_timeout_ms)
{
	struct mbx_attr a;

	mbx_attr_init(&a);
	a.capacity = MBX_UNBOUNDED;
	a.max_attempts = max_attempts;
	a.dead_letter = dl;
	a.ack_timeout_ms = ack_timeout_ms;
	ASSERT_OK(mbx_create(c, name, &a));
}

/* A handle that acknowledges explicitly, n at most, bound to name. */
static mbx_t *
worker(const struct harness *h, const char *name, long n, int how)
{
	mbx_t *c = harness_open(h);

	ASSERT_OK(mbx_setopt(c, MBX_OPT_ACK, n));
	ASSERT_OK(mbx_bind(c, name, how));
	return c;
}

/*
 * worker() for a forked helper, which may not assert: NULL (with errno)
 * when the handle cannot be opened, set up or bound to "jobs".
 */
static mbx_t *
child_worker(const struct harness *h, long n, int how)
{
	mbx_t *c = mbx_open(h->sock);

	if (c != NULL && (mbx_setopt(c, MBX_OPT_ACK, n) != 0 ||
	    mbx_bind(c, "jobs", how) != 0)) {
		int err = errno;

		mbx_close(c);
		errno = err;
		return NULL;
	}
	return c;
}

/* Receives want from name; m gets its meta. */
static void
expect(mbx_t *c, const char *name, int timeout, const char *want,
    struct mbx_meta *m)
{
	char buf[256];
	ssize_t n;

	memset(m, 0, sizeof(*m));
	errno = 0;
	n = mbx_recv(c, name, buf, sizeof(buf), m, timeout);
	ck_assert_msg(n >= 0, "mbx_recv(%s): -1 (%s), expected \"%s\"", name,
	    harness_errname(errno), want);
	ck_assert_msg((size_t)n == strlen(want) && memcmp(buf, want,
	    (size_t)n) == 0, "mbx_recv(%s): got \"%.*s\", expected \"%s\"",
	    name, (int)n, buf, want);
}

static long
mbint(mbx_t *c, const char *name, const char *key)
{
	return harness_mailbox_int(c, name, key);
}

/* A helper that receives three messages, reports their ids, and waits. */
static int
hold_three(const struct harness *h, void *arg)
{
	mbx_t *c = child_worker(h, 8, MBX_BIND_EXCLUSIVE);
	struct mbx_meta m;
	char buf[64];

	(void)arg;
	CHILD_REQUIRE(c != NULL);
	for (int i = 0; i < 3; i++) {
		CHILD_REQUIRE(mbx_recv(c, "jobs", buf, sizeof(buf), &m, 5000)
		    == 2);
		CHILD_REQUIRE(m.attempt == 1);
		harness_report((long)m.id);
	}
	pause();
	return 0;
}

/*
 * A receiver killed with messages held: all of them go to the standby at
 * once, in order, with attempt 2 and the ids they had.
 */
START_TEST(test_killed_holder_returns_all)
{
	struct harness h;
	struct harness_child ch;
	struct mbx_meta m;
	long ids[3];
	mbx_t *c, *standby;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create_wq(c, "jobs", 0, NULL, 0);
	harness_put(c, "jobs", "m1");
	harness_put(c, "jobs", "m2");
	harness_put(c, "jobs", "m3");
	harness_put(c, "jobs", "m4");
	harness_child_start(&ch, &h, hold_three, NULL);
	for (int i = 0; i < 3; i++)
		ids[i] = harness_child_read(&ch);
	ck_assert_int_eq(mbint(c, "jobs", "inflight"), 3);
	standby = worker(&h, "jobs", 8, MBX_BIND_QUEUE);
	ck_assert(harness_wait_standby_count(c, "jobs", 1));

	kill(ch.pid, SIGKILL);
	ck_assert_int_eq(harness_child_join(&ch), 128 + SIGKILL);
	expect(standby, "jobs", 5000, "m1", &m);
	ck_assert_uint_eq(m.attempt, 2);
	ck_assert(m.id == (uint64_t)ids[0]);
	expect(standby, "jobs", 0, "m2", &m);
	ck_assert_uint_eq(m.attempt, 2);
	ck_assert(m.id == (uint64_t)ids[1]);
	expect(standby, "jobs", 0, "m3", &m);
	ck_assert_uint_eq(m.attempt, 2);
	ck_assert(m.id == (uint64_t)ids[2]);
	expect(standby, "jobs", 0, "m4", &m);
	ck_assert_uint_eq(m.attempt, 1);
	ck_assert_int_eq(mbint(c, "jobs", "redelivered"), 3);
	mbx_close(standby);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* A helper that acknowledges one message and dies the same instant. */
static int
ack_and_die(const struct harness *h, void *arg)
{
	mbx_t *c = child_worker(h, 1, MBX_BIND_EXCLUSIVE);
	struct mbx_meta m;
	char buf[64];

	(void)arg;
	CHILD_REQUIRE(c != NULL);
	CHILD_REQUIRE(mbx_recv(c, "jobs", buf, sizeof(buf), &m, 5000) == 2);
	CHILD_REQUIRE(mbx_ack(c, &m) == 0);
	raise(SIGKILL);
	return 1;
}

/* Acknowledged, then killed at once: the message never comes back. */
START_TEST(test_ack_then_kill)
{
	struct harness h;
	struct harness_child ch;
	struct mbx_meta m;
	mbx_t *c, *next;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create_wq(c, "jobs", 0, NULL, 0);
	for (int round = 0; round < 20; round++) {
		harness_put(c, "jobs", "m1");
		harness_put(c, "jobs", "m2");
		harness_child_start(&ch, &h, ack_and_die, NULL);
		ck_assert_int_eq(harness_child_join(&ch), 128 + SIGKILL);
		ck_assert(harness_wait_mailbox_int(c, "jobs", "receiver", 0));
		/* m1 is gone: the next receiver gets m2 first. */
		next = worker(&h, "jobs", 1, MBX_BIND_EXCLUSIVE);
		expect(next, "jobs", 0, "m2", &m);
		ck_assert_uint_eq(m.attempt, 1);
		ASSERT_OK(mbx_ack(next, &m));
		mbx_close(next);
		ck_assert(harness_wait_mailbox_int(c, "jobs", "queued", 0));
		ck_assert(harness_wait_mailbox_int(c, "jobs", "receiver", 0));
	}
	ck_assert_int_eq(mbint(c, "jobs", "received"), 40);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* NACK without a delay: back at the head, attempt 2, same id. */
START_TEST(test_nack_now)
{
	struct harness h;
	struct mbx_meta m, again;
	mbx_t *c, *w;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create_wq(c, "jobs", 0, NULL, 0);
	harness_put(c, "jobs", "m1");
	harness_put(c, "jobs", "m2");
	/* Room for many: still, what goes back is at the head. */
	w = worker(&h, "jobs", 16, MBX_BIND_EXCLUSIVE);
	expect(w, "jobs", 0, "m1", &m);
	ck_assert_uint_eq(m.attempt, 1);
	ck_assert(m.id != 0);
	ASSERT_OK(mbx_nack(w, &m, 0));
	/* A message given back is no longer this handle's. */
	ASSERT_ERR(mbx_ack(w, &m), ESTALE);
	ASSERT_ERR(mbx_nack(w, &m, 0), ESTALE);
	expect(w, "jobs", 0, "m1", &again);
	ck_assert_uint_eq(again.attempt, 2);
	ck_assert(again.id == m.id);
	ASSERT_OK(mbx_ack(w, &again));
	ASSERT_ERR(mbx_ack(w, &again), ESTALE);
	expect(w, "jobs", 0, "m2", &m);
	ASSERT_OK(mbx_ack(w, &m));
	/* The acks went without an answer: the daemon reads them soon. */
	ck_assert(harness_wait_mailbox_int(c, "jobs", "received", 2));
	ck_assert_int_eq(mbint(c, "jobs", "queued"), 0);
	ck_assert_int_eq(mbint(c, "jobs", "redelivered"), 1);
	mbx_close(w);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* NACK with a delay: the others go first, it comes back after it. */
START_TEST(test_nack_delay)
{
	struct harness h;
	struct mbx_meta m, m2;
	char buf[64];
	int64_t t0;
	mbx_t *c, *w;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create_wq(c, "jobs", 0, NULL, 0);
	harness_put(c, "jobs", "m1");
	harness_put(c, "jobs", "m2");
	w = worker(&h, "jobs", 1, MBX_BIND_EXCLUSIVE);
	expect(w, "jobs", 0, "m1", &m);
	t0 = harness_now_ms();
	ASSERT_OK(mbx_nack(w, &m, 600));
	ck_assert(harness_wait_mailbox_int(c, "jobs", "delayed", 1));
	expect(w, "jobs", 0, "m2", &m2);
	ASSERT_OK(mbx_ack(w, &m2));
	/* Delayed: neither queued nor held, but still counted. */
	ck_assert(harness_wait_mailbox_int(c, "jobs", "received", 1));
	ck_assert_int_eq(mbint(c, "jobs", "queued"), 1);
	ck_assert_int_eq(mbint(c, "jobs", "inflight"), 0);
	if (harness_now_ms() - t0 < 500)
		ASSERT_ERR(mbx_recv(w, "jobs", buf, sizeof(buf), NULL, 0),
		    EAGAIN);
	expect(w, "jobs", 5000, "m1", &m);
	ck_assert_msg(harness_now_ms() - t0 >= 600, "back after %lld ms",
	    (long long)(harness_now_ms() - t0));
	ck_assert_uint_eq(m.attempt, 2);
	ASSERT_OK(mbx_ack(w, &m));
	ck_assert(harness_wait_mailbox_int(c, "jobs", "queued", 0));
	mbx_close(w);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * The acknowledgement timeout: a message not acknowledged in time goes
 * back to the head, a late ack fails with ESTALE, and the next delivery
 * (attempt 2) can be acknowledged.
 */
START_TEST(test_ack_timeout)
{
	struct harness h;
	struct mbx_meta m, again;
	mbx_t *c, *w;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create_wq(c, "jobs", 0, NULL, 200);
	ck_assert_int_eq(mbint(c, "jobs", "ack_timeout_ms"), 200);
	harness_put(c, "jobs", "m1");
	harness_put(c, "jobs", "m2");
	w = worker(&h, "jobs", 1, MBX_BIND_EXCLUSIVE);
	expect(w, "jobs", 0, "m1", &m);
	ck_assert_int_eq(mbint(c, "jobs", "inflight"), 1);
	ck_assert(harness_wait_mailbox_int(c, "jobs", "inflight", 0));
	ck_assert_int_eq(mbint(c, "jobs", "redelivered"), 1);
	ASSERT_ERR(mbx_ack(w, &m), ESTALE);
	/* Back at the head, before m2. */
	expect(w, "jobs", 0, "m1", &again);
	ck_assert_uint_eq(again.attempt, 2);
	ck_assert(again.id == m.id);
	ASSERT_OK(mbx_ack(w, &again));
	expect(w, "jobs", 0, "m2", &m);
	ASSERT_OK(mbx_ack(w, &m));
	ck_assert(harness_wait_mailbox_int(c, "jobs", "queued", 0));
	mbx_close(w);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* A handle that consumes is never timed out: the timeout is the ack's. */
START_TEST(test_ack_timeout_spares_consumers)
{
	struct harness h;
	mbx_t *c, *w;
	char buf[64];
	struct mbx_meta m;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create_wq(c, "jobs", 0, NULL, 100);
	harness_put(c, "jobs", "m1");
	harness_put(c, "jobs", "m2");
	w = harness_open(&h);
	ASSERT_OK(mbx_bind(w, "jobs", MBX_BIND_EXCLUSIVE));
	/* m2 waits in the library (prefetch), in flight at the daemon. */
	ck_assert_int_eq(mbx_recv(w, "jobs", buf, sizeof(buf), &m, 0), 2);
	ck_assert_uint_eq(m.attempt, 1);
	usleep(300 * 1000);
	ck_assert_int_eq(mbint(c, "jobs", "redelivered"), 0);
	ck_assert_int_eq(mbx_recv(w, "jobs", buf, sizeof(buf), &m, 0), 2);
	ck_assert(memcmp(buf, "m2", 2) == 0);
	ck_assert_uint_eq(m.attempt, 1);
	ASSERT_ERR(mbx_ack(w, &m), EINVAL);
	mbx_close(w);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * max_attempts: the message delivered that many times that comes back
 * goes to the dead-letter mailbox, whole: same id, payload and sender,
 * with where it came from and its attempts there.
 */
START_TEST(test_dead_letter)
{
	struct harness h;
	struct mbx_meta m;
	char buf[64];
	mbx_t *c, *w, *dw;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create_wq(c, "jobs", 2, "jobs.dead", 0);
	create_wq(c, "jobs.dead", 0, NULL, 0);
	harness_put(c, "jobs", "poison");
	harness_put(c, "jobs", "fine");
	w = worker(&h, "jobs", 1, MBX_BIND_EXCLUSIVE);
	expect(w, "jobs", 0, "poison", &m);
	ck_assert_uint_eq(m.attempt, 1);
	ASSERT_OK(mbx_nack(w, &m, 0));
	expect(w, "jobs", 0, "poison", &m);
	ck_assert_uint_eq(m.attempt, 2);
	ASSERT_OK(mbx_nack(w, &m, 0));
	expect(w, "jobs", 0, "fine", &m);
	ASSERT_OK(mbx_ack(w, &m));
	ASSERT_ERR(mbx_recv(w, "jobs", buf, sizeof(buf), NULL, 0), EAGAIN);
	ck_assert(harness_wait_mailbox_int(c, "jobs", "dead", 1));
	ck_assert_int_eq(mbint(c, "jobs.dead", "queued"), 1);

	dw = harness_open(&h);
	ASSERT_OK(mbx_bind(dw, "jobs.dead", MBX_BIND_EXCLUSIVE));
	expect(dw, "jobs.dead", 0, "poison", &m);
	ck_assert_str_eq(m.mailbox, "jobs.dead");
	ck_assert_str_eq(m.origin, "jobs");
	ck_assert_uint_eq(m.origin_attempts, 2);
	ck_assert_uint_eq(m.attempt, 1);
	ck_assert_int_eq(m.sender_id, mbx_id(c));
	ck_assert_int_eq(m.pid, getpid());
	mbx_close(dw);
	mbx_close(w);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * A dead-letter mailbox that does not exist: the message stays at the
 * head and keeps being delivered, until the mailbox is there.
 */
START_TEST(test_dead_letter_missing)
{
	struct harness h;
	struct mbx_meta m;
	mbx_t *c, *w;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create_wq(c, "jobs", 1, "nowhere", 0);
	harness_put(c, "jobs", "poison");
	w = worker(&h, "jobs", 1, MBX_BIND_EXCLUSIVE);
	for (unsigned i = 1; i <= 3; i++) {
		expect(w, "jobs", 0, "poison", &m);
		ck_assert_uint_eq(m.attempt, i);
		ASSERT_OK(mbx_nack(w, &m, 0));
	}
	ck_assert(harness_wait_mailbox_int(c, "jobs", "redelivered", 3));
	ck_assert_int_eq(mbint(c, "jobs", "dead"), 0);
	ck_assert_int_eq(mbint(c, "jobs", "queued"), 1);
	create_wq(c, "nowhere", 0, NULL, 0);
	expect(w, "jobs", 0, "poison", &m);
	ck_assert_uint_eq(m.attempt, 4);
	ASSERT_OK(mbx_nack(w, &m, 0));
	ck_assert(harness_wait_mailbox_int(c, "jobs", "dead", 1));
	ck_assert_int_eq(mbint(c, "jobs", "queued"), 0);
	ck_assert_int_eq(mbint(c, "nowhere", "queued"), 1);
	mbx_close(w);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* A full dead-letter mailbox: the same, nothing is dropped. */
START_TEST(test_dead_letter_full)
{
	struct harness h;
	struct mbx_attr a;
	struct mbx_meta m;
	mbx_t *c, *w;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create_wq(c, "jobs", 1, "dead", 0);
	mbx_attr_init(&a);
	a.capacity = 1;
	ASSERT_OK(mbx_create(c, "dead", &a));
	harness_put(c, "dead", "full");
	harness_put(c, "jobs", "poison");
	w = worker(&h, "jobs", 1, MBX_BIND_EXCLUSIVE);
	expect(w, "jobs", 0, "poison", &m);
	ASSERT_OK(mbx_nack(w, &m, 0));
	expect(w, "jobs", 0, "poison", &m);
	ck_assert_uint_eq(m.attempt, 2);
	ASSERT_OK(mbx_ack(w, &m));
	ck_assert(harness_wait_mailbox_int(c, "jobs", "queued", 0));
	ck_assert_int_eq(mbint(c, "dead", "queued"), 1);
	ck_assert_int_eq(mbint(c, "jobs", "dead"), 0);
	mbx_close(w);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * Rebind and evict with messages held: they go back at once, in order,
 * to the new receiver, and the old holder's acks fail with ESTALE.
 */
START_TEST(test_rebind_with_held)
{
	struct harness h;
	struct mbx_meta m1, m2, m;
	mbx_t *c, *a, *b;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create_wq(c, "jobs", 0, NULL, 0);
	harness_put(c, "jobs", "m1");
	harness_put(c, "jobs", "m2");
	harness_put(c, "jobs", "m3");
	a = worker(&h, "jobs", 2, MBX_BIND_EXCLUSIVE);
	b = worker(&h, "jobs", 8, MBX_BIND_QUEUE);
	expect(a, "jobs", 0, "m1", &m1);
	expect(a, "jobs", 0, "m2", &m2);
	ASSERT_OK(mbx_rebind(c, "jobs", mbx_id(b)));
	ASSERT_ERR(mbx_ack(a, &m1), ESTALE);
	ASSERT_ERR(mbx_nack(a, &m2, 0), ESTALE);
	expect(b, "jobs", 0, "m1", &m);
	ck_assert_uint_eq(m.attempt, 2);
	ck_assert(m.id == m1.id);
	expect(b, "jobs", 0, "m2", &m);
	ck_assert_uint_eq(m.attempt, 2);
	ASSERT_OK(mbx_ack(b, &m));
	expect(b, "jobs", 0, "m3", &m);
	ck_assert_uint_eq(m.attempt, 1);

	/* Evicted with m1 and m3 held: both back, for the next receiver. */
	ASSERT_OK(mbx_bind(a, "jobs", MBX_BIND_QUEUE));
	ASSERT_OK(mbx_evict(c, "jobs"));
	ASSERT_ERR(mbx_ack(b, &m), ESTALE);
	expect(a, "jobs", 5000, "m1", &m);
	ck_assert_uint_eq(m.attempt, 3);
	ASSERT_OK(mbx_ack(a, &m));
	expect(a, "jobs", 0, "m3", &m);
	ck_assert_uint_eq(m.attempt, 2);
	ASSERT_OK(mbx_ack(a, &m));
	ck_assert(harness_wait_mailbox_int(c, "jobs", "queued", 0));
	mbx_close(b);
	mbx_close(a);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* MBX_OPT_ACK's bounds, and its argument checks. */
START_TEST(test_ack_limits)
{
	struct harness h;
	struct mbx_meta m1, m2, m;
	struct mbx_rmsg v[4];
	char bufs[4][64];
	mbx_msg_t *msg;
	mbx_t *c, *w;

	memset(v, 0, sizeof(v));
	for (int i = 0; i < 4; i++) {
		v[i].buf = bufs[i];
		v[i].cap = sizeof(bufs[i]);
	}
	harness_start(&h, NULL);
	c = harness_open(&h);
	create_wq(c, "jobs", 0, NULL, 0);
	for (int i = 0; i < 6; i++)
		harness_put(c, "jobs", "mm");
	ASSERT_ERR(mbx_setopt(c, MBX_OPT_ACK, -1), EINVAL);
	ASSERT_ERR(mbx_setopt(c, MBX_OPT_ACK, MBX_ACK_LIMIT + 1), EINVAL);
	ASSERT_ERR(mbx_ack(c, &m1), EINVAL);
	ASSERT_ERR(mbx_nack(c, &m1, 0), EINVAL);

	w = worker(&h, "jobs", 2, MBX_BIND_EXCLUSIVE);
	ASSERT_ERR(mbx_ack(w, NULL), EINVAL);
	expect(w, "jobs", 0, "mm", &m1);
	/* Nothing is held ahead of the caller with MBX_OPT_ACK. */
	ck_assert_int_eq(mbint(c, "jobs", "inflight"), 1);
	expect(w, "jobs", 0, "mm", &m2);
	ck_assert_int_eq(mbint(c, "jobs", "inflight"), 2);
	/* Full: EBUSY at once, even for a receive that would wait. */
	ASSERT_ERR(mbx_recv(w, "jobs", bufs[0], 64, &m, -1), EBUSY);
	ASSERT_ERR(mbx_recvmsg(w, "jobs", &msg, &m, -1), EBUSY);
	ASSERT_ERR(mbx_recvv(w, "jobs", v, 1, -1), EBUSY);
	ASSERT_ERR(mbx_setopt(w, MBX_OPT_ACK, 1), EBUSY);
	ASSERT_ERR(mbx_setopt(w, MBX_OPT_ACK, 0), EBUSY);
	ASSERT_ERR(mbx_nack(w, &m1, -1), EINVAL);
	ASSERT_ERR(mbx_nack(w, &m1, 86400001), EINVAL);
	ASSERT_OK(mbx_ack(w, &m1));
	ASSERT_OK(mbx_ack(w, &m2));

	/* mbx_recvv stops at the bound; mbx_recvmsg holds one too. */
	ASSERT_OK(mbx_setopt(w, MBX_OPT_ACK, 3));
	ck_assert_int_eq(mbx_recvv(w, "jobs", v, 4, 0), 3);
	ASSERT_ERR(mbx_recvmsg(w, "jobs", &msg, &m, 0), EBUSY);
	for (int i = 0; i < 3; i++)
		ASSERT_OK(mbx_ack(w, &v[i].meta));
	ASSERT_OK(mbx_recvmsg(w, "jobs", &msg, &m, 0));
	ck_assert_uint_eq(mbx_msg_len(msg), 2);
	ASSERT_OK(mbx_ack(w, &m));
	mbx_msg_free(msg);
	ck_assert(harness_wait_mailbox_int(c, "jobs", "queued", 0));
	ASSERT_OK(mbx_setopt(w, MBX_OPT_ACK, 0));
	mbx_close(w);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* The attributes: checked at creation, shown by LIST. */
START_TEST(test_attrs_checked)
{
	struct harness h;
	struct mbx_attr a;
	json_t *mb;
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	mbx_attr_init(&a);
	ck_assert_int_eq(a.max_attempts, 0);
	ck_assert_ptr_null(a.dead_letter);
	ck_assert_int_eq(a.ack_timeout_ms, 0);
	a.max_attempts = 3;
	ASSERT_ERR(mbx_create(c, "jobs", &a), EINVAL);
	a.dead_letter = "jobs";
	ASSERT_ERR(mbx_create(c, "jobs", &a), EINVAL);
	a.dead_letter = "bad name";
	ASSERT_ERR(mbx_create(c, "jobs", &a), EINVAL);
	a.dead_letter = "@1";
	ASSERT_ERR(mbx_create(c, "jobs", &a), EINVAL);
	a.dead_letter = "jobs.dead";
	a.max_attempts = -1;
	ASSERT_ERR(mbx_create(c, "jobs", &a), EINVAL);
	a.max_attempts = 3;
	a.ack_timeout_ms = -1;
	ASSERT_ERR(mbx_create(c, "jobs", &a), EINVAL);
	a.ack_timeout_ms = 1500;
	ASSERT_OK(mbx_create(c, "jobs", &a));
	mb = harness_mailbox(c, "jobs");
	ck_assert_int_eq(json_integer_value(json_object_get(mb,
	    "max_attempts")), 3);
	ck_assert_int_eq(json_integer_value(json_object_get(mb,
	    "ack_timeout_ms")), 1500);
	ck_assert_str_eq(json_string_value(json_object_get(mb,
	    "dead_letter")), "jobs.dead");
	ck_assert_int_eq(json_integer_value(json_object_get(mb, "inflight")),
	    0);
	ck_assert_int_eq(json_integer_value(json_object_get(mb,
	    "redelivered")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(mb, "dead")), 0);
	json_decref(mb);
	/* A dead letter without a limit is allowed: nothing goes there. */
	a.max_attempts = 0;
	ASSERT_OK(mbx_create(c, "other", &a));
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * mbxctl: create with the attributes, list with INFLIGHT, recv --ack that
 * acknowledges what it printed, and --json with id and attempt.
 */
START_TEST(test_ctl_ack)
{
	struct harness h;
	struct harness_ctl r;
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	ck_assert_int_eq(harness_ctl(&h, NULL, &r, "create", "jobs",
	    "--max-attempts", "3", "--dead-letter", "jobs.dead",
	    "--ack-timeout", "5000", NULL), 0);
	ck_assert_msg(r.status == 0, "create: %s", r.err);
	harness_ctl_free(&r);
	ck_assert_int_eq(mbint(c, "jobs", "max_attempts"), 3);
	ck_assert_int_eq(mbint(c, "jobs", "ack_timeout_ms"), 5000);
	ck_assert_int_eq(harness_ctl(&h, NULL, &r, "create", "x",
	    "--max-attempts", "3", NULL), 0);
	ck_assert_int_eq(r.status, 1);
	ck_assert_ptr_nonnull(strstr(r.err, "EINVAL"));
	harness_ctl_free(&r);
	ck_assert_int_eq(harness_ctl(&h, NULL, &r, "send", "jobs", "--ack",
	    "m", NULL), 0);
	ck_assert_int_eq(r.status, 2);
	harness_ctl_free(&r);

	harness_put(c, "jobs", "one");
	harness_put(c, "jobs", "two");
	ck_assert_int_eq(harness_ctl(&h, NULL, &r, "recv", "jobs", "--ack",
	    "--json", "--timeout", "0", NULL), 0);
	ck_assert_msg(r.status == 0, "recv --ack: %s", r.err);
	ck_assert_ptr_nonnull(strstr(r.out, "\"data\":\"one\""));
	ck_assert_ptr_nonnull(strstr(r.out, "\"attempt\":1"));
	ck_assert_ptr_nonnull(strstr(r.out, "\"id\":"));
	harness_ctl_free(&r);
	ck_assert(harness_wait_mailbox_int(c, "jobs", "receiver", 0));
	ck_assert_int_eq(mbint(c, "jobs", "queued"), 1);
	ck_assert_int_eq(mbint(c, "jobs", "received"), 1);

	ck_assert_int_eq(harness_ctl(&h, NULL, &r, "list", NULL), 0);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "INFLIGHT"));
	harness_ctl_free(&r);
	ck_assert_int_eq(harness_ctl(&h, NULL, &r, "list", "--json", NULL), 0);
	ck_assert_int_eq(r.status, 0);
	{
		json_t *all = json_loads(r.out, 0, NULL), *o;

		ck_assert_ptr_nonnull(all);
		o = json_array_get(all, 0);
		ck_assert_str_eq(json_string_value(json_object_get(o, "name")),
		    "jobs");
		ck_assert(json_is_integer(json_object_get(o, "inflight")));
		ck_assert_int_eq(json_integer_value(json_object_get(o,
		    "redelivered")), 0);
		ck_assert_int_eq(json_integer_value(json_object_get(o,
		    "dead")), 0);
		json_decref(all);
	}
	harness_ctl_free(&r);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * The soak of the issue, bounded for make check: workers that are
 * SIGKILLed at random while they process, every message acknowledged
 * exactly once in the end, and every repeat delivery marked by its
 * attempt count.
 */
#define SOAK_MSGS	600
#define SOAK_WORKERS	3

struct soak {
	atomic_int	 seen[SOAK_MSGS];	/* deliveries a worker saw */
	atomic_int	 acking[SOAK_MSGS];	/* mbx_ack() was called */
	atomic_int	 acked[SOAK_MSGS];	/* mbx_ack() returned 0 */
	atomic_int	 unmarked;		/* a repeat with a low attempt */
	atomic_int	 bad;			/* anything else wrong */
};

static int
soak_worker(const struct harness *h, void *arg)
{
	struct soak *s = arg;
	mbx_t *c = child_worker(h, 4, MBX_BIND_QUEUE);
	struct mbx_meta m;
	char buf[32];
	ssize_t n;

	CHILD_REQUIRE(c != NULL);
	for (;;) {
		long i;
		int seen;

		n = mbx_recv(c, "jobs", buf, sizeof(buf) - 1, &m, 5000);
		if (n < 0) {
			if (errno == ETIMEDOUT)
				continue;
			atomic_fetch_add(&s->bad, 1);
			return 1;
		}
		buf[n] = '\0';
		i = strtol(buf, NULL, 10);
		if (i < 0 || i >= SOAK_MSGS) {
			atomic_fetch_add(&s->bad, 1);
			return 1;
		}
		seen = atomic_fetch_add(&s->seen[i], 1) + 1;
		/* Every delivery a worker sees counts; the daemon's may be
		 * more (prefetched by a worker that died), never fewer. */
		if (m.attempt < (unsigned)seen)
			atomic_fetch_add(&s->unmarked, 1);
		/* A kill between the ack and the count loses the count only. */
		atomic_fetch_add(&s->acking[i], 1);
		if (mbx_ack(c, &m) == 0)
			atomic_fetch_add(&s->acked[i], 1);
		else if (errno != ESTALE)
			atomic_fetch_add(&s->bad, 1);
	}
}

START_TEST(test_soak_killed_workers)
{
	struct harness h;
	struct harness_child w[SOAK_WORKERS];
	struct soak *s;
	char buf[16];
	int64_t t0;
	mbx_t *c;
	long done = 0;
	unsigned seed = 12345;

	s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert(s != MAP_FAILED);
	memset(s, 0, sizeof(*s));
	harness_start(&h, NULL);
	c = harness_open(&h);
	create_wq(c, "jobs", 0, NULL, 0);
	for (int i = 0; i < SOAK_MSGS; i++) {
		int len = snprintf(buf, sizeof(buf), "%d", i);

		ASSERT_OK(mbx_send(c, "jobs", buf, (size_t)len, 0, 0));
	}
	for (int k = 0; k < SOAK_WORKERS; k++)
		harness_child_start(&w[k], &h, soak_worker, s);
	t0 = harness_now_ms();
	while (harness_now_ms() - t0 < 15000 &&
	    (done = mbint(c, "jobs", "received")) < SOAK_MSGS) {
		usleep((useconds_t)(2000 + rand_r(&seed) % 8000));
		/* One of them, whatever it is doing. */
		int k = (int)(rand_r(&seed) % SOAK_WORKERS);
		kill(w[k].pid, SIGKILL);
		(void)harness_child_join(&w[k]);
		harness_child_start(&w[k], &h, soak_worker, s);
	}
	for (int k = 0; k < SOAK_WORKERS; k++) {
		kill(w[k].pid, SIGKILL);
		(void)harness_child_join(&w[k]);
	}
	/*
	 * Zero lost and each acknowledged once: the daemon counted exactly
	 * one acknowledgement per message and holds none.  Every mbx_ack()
	 * that returned 0 was of a message not acknowledged before; one
	 * whose worker died between mbx_ack() and its count has none.
	 */
	ck_assert_msg(done == SOAK_MSGS, "%ld of %d acknowledged; the "
	    "mailbox: queued %ld, inflight %ld", done, SOAK_MSGS,
	    mbint(c, "jobs", "queued"), mbint(c, "jobs", "inflight"));
	ck_assert_int_eq(mbint(c, "jobs", "queued"), 0);
	for (int i = 0; i < SOAK_MSGS; i++) {
		int acked = atomic_load(&s->acked[i]);

		ck_assert_msg(acked == 1 || (acked == 0 &&
		    atomic_load(&s->acking[i]) > 0), "message %d: mbx_ack() "
		    "returned 0 %d times", i, acked);
	}
	ck_assert_int_eq(atomic_load(&s->unmarked), 0);
	ck_assert_int_eq(atomic_load(&s->bad), 0);
	mbx_close(c);
	harness_stop(&h);
	munmap(s, sizeof(*s));
}
END_TEST

/*
 * mbxd.json(5): a declared work queue takes the three keys; a limit on
 * attempts without dead letters, or a mailbox its own dead letters, is a
 * configuration error.
 */
START_TEST(test_config_work_queue)
{
	static const char good[] = "{ \"mailboxes\": [ { \"name\": \"wq\", "
	    "\"mode\": \"0666\", \"max_attempts\": 2, \"dead_letter\": "
	    "\"wq.dead\", \"ack_timeout_ms\": 700 }, { \"name\": "
	    "\"wq.dead\", \"mode\": \"0666\" } ] }\n";
	static const char *const bad[] = {
		"{ \"mailboxes\": [ { \"name\": \"wq\", \"max_attempts\": 2 } ] }",
		"{ \"mailboxes\": [ { \"name\": \"wq\", \"dead_letter\": \"wq\" } ] }",
		"{ \"mailboxes\": [ { \"name\": \"wq\", \"dead_letter\": \"@3\" } ] }",
		"{ \"mailboxes\": [ { \"name\": \"wq\", \"ack_timeout_ms\": -1 } ] }",
	};
	char path[HARNESS_PATH_MAX];
	struct harness h;
	json_t *mb;
	mbx_t *c;

	harness_init(&h);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *const args[] = { "-c", path, "--check-config",
		    NULL };
		int st;

		harness_write_file(&h, "bad.json", bad[i], path, sizeof(path));
		st = harness_run_mbxd(&h, args);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 0,
		    "mbxd --check-config accepted %s", bad[i]);
	}
	harness_write_file(&h, "mbxd.json", good, path, sizeof(path));
	{
		const char *const args[] = { "-c", path, NULL };

		harness_launch(&h, args);
	}
	c = harness_open(&h);
	mb = harness_mailbox(c, "wq");
	ck_assert_ptr_nonnull(mb);
	ck_assert_int_eq(json_integer_value(json_object_get(mb,
	    "max_attempts")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(mb,
	    "ack_timeout_ms")), 700);
	ck_assert_str_eq(json_string_value(json_object_get(mb,
	    "dead_letter")), "wq.dead");
	json_decref(mb);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

Suite *
ack_suite(void)
{
	Suite *s = suite_create("ack");
	TCase *tc = tcase_create("ack");

	tcase_set_timeout(tc, harness_tcase_timeout());
	tcase_add_test(tc, test_killed_holder_returns_all);
	tcase_add_test(tc, test_ack_then_kill);
	tcase_add_test(tc, test_nack_now);
	tcase_add_test(tc, test_nack_delay);
	tcase_add_test(tc, test_ack_timeout);
	tcase_add_test(tc, test_ack_timeout_spares_consumers);
	tcase_add_test(tc, test_dead_letter);
	tcase_add_test(tc, test_dead_letter_missing);
	tcase_add_test(tc, test_dead_letter_full);
	tcase_add_test(tc, test_rebind_with_held);
	tcase_add_test(tc, test_ack_limits);
	tcase_add_test(tc, test_attrs_checked);
	tcase_add_test(tc, test_ctl_ack);
	tcase_add_test(tc, test_config_work_queue);
	tcase_add_test(tc, test_soak_killed_workers);
	suite_add_tcase(s, tc);
	return s;
}
