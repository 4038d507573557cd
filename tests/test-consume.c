/*
 * test-consume.c - consumption by a store (PROTOCOL.md, "Consumption by a
 * store"; issue 11): a receive on the defaults writes no ACK frame, and
 * every guarantee of a receive still holds, against a real mbxd.
 *
 * Each test is built so that it fails if one of the daemon's reads of the
 * consumption word is missing: before a takeback (a rebind), at a close,
 * and when a send waits for room that only a store frees (the watch word).
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

static void
mk(mbx_t *c, const char *name, long capacity)
{
	struct mbx_attr a;

	mbx_attr_init(&a);
	a.capacity = capacity;
	ASSERT_OK(mbx_create(c, name, &a));
}

/*
 * A rebind takes what the old receiver holds: the message its receive
 * returned stays received (mbxd read the store first), the ones held
 * ahead go to the new receiver, and the old one hands none of them out.
 */
START_TEST(test_rebind_reads_the_store)
{
	struct harness h;
	char buf[64];
	mbx_t *c, *a, *b;

	harness_start(&h, NULL);
	c = harness_open(&h);
	mk(c, "q", MBX_UNBOUNDED);
	a = harness_open(&h);
	b = harness_open(&h);
	ASSERT_OK(mbx_bind(a, "q", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_bind(b, "q", MBX_BIND_QUEUE));
	harness_put(c, "q", "m1");
	harness_put(c, "q", "m2");
	harness_put(c, "q", "m3");
	/* One batch: m1 returned, m2 and m3 held by a's library. */
	harness_expect(a, "q", 0, "m1");
	ASSERT_OK(mbx_rebind(c, "q", mbx_id(b)));
	harness_expect(b, "q", 5000, "m2");
	harness_expect(b, "q", 0, "m3");
	ASSERT_ERR(mbx_recv(b, "q", buf, sizeof(buf), NULL, 0), EAGAIN);
	/* a's held ones were taken: it is told before it hands one out. */
	errno = 0;
	ck_assert_int_eq(mbx_recv(a, "q", buf, sizeof(buf), NULL, 0), -1);
	ck_assert_int_eq(errno, EPERM);
	ck_assert(harness_wait_mailbox_int(c, "q", "received", 3));
	ck_assert_int_eq(harness_mailbox_int(c, "q", "queued"), 0);
	mbx_close(a);
	mbx_close(b);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* A helper that receives one message of "q", says so, and waits. */
static int
receive_one_and_wait(const struct harness *h, void *arg)
{
	mbx_t *c = mbx_open(h->sock);
	char buf[64];

	(void)arg;
	CHILD_REQUIRE(c != NULL);
	CHILD_REQUIRE(mbx_bind(c, "q", MBX_BIND_EXCLUSIVE) == 0);
	CHILD_REQUIRE(mbx_recv(c, "q", buf, sizeof(buf), NULL, 5000) == 2);
	CHILD_REQUIRE(memcmp(buf, "m1", 2) == 0);
	harness_report(1);
	pause();
	return 0;
}

/*
 * A receiver killed right after its receive returned: that message was
 * received (the store is in memory mbxd still maps, read at the close);
 * the one its library held ahead goes to the next receiver.
 */
START_TEST(test_killed_after_receive)
{
	struct harness h;
	struct harness_child ch;
	char buf[64];
	mbx_t *c, *b;

	harness_start(&h, NULL);
	c = harness_open(&h);
	mk(c, "q", MBX_UNBOUNDED);
	harness_put(c, "q", "m1");
	harness_put(c, "q", "m2");
	harness_child_start(&ch, &h, receive_one_and_wait, NULL);
	ck_assert_int_eq(harness_child_read(&ch), 1);
	ck_assert_int_eq(kill(ch.pid, SIGKILL), 0);
	ck_assert_int_eq(harness_child_join(&ch), 128 + SIGKILL);
	b = harness_open(&h);
	ASSERT_OK(mbx_bind(b, "q", MBX_BIND_QUEUE));
	harness_expect(b, "q", 5000, "m2");
	ASSERT_ERR(mbx_recv(b, "q", buf, sizeof(buf), NULL, 0), EAGAIN);
	ck_assert_int_eq(harness_mailbox_int(c, "q", "received"), 2);
	mbx_close(b);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* A helper that sends c then d into the full "q", reporting each result. */
static int
send_two_blocking(const struct harness *h, void *arg)
{
	mbx_t *c = mbx_open(h->sock);

	(void)arg;
	CHILD_REQUIRE(c != NULL);
	harness_report(mbx_send(c, "q", "c", 1, 0, 10000) == 0 ? 0 : errno);
	harness_report(-1);	/* about to block */
	harness_report(mbx_send(c, "q", "d", 1, 0, 10000) == 0 ? 0 : errno);
	mbx_close(c);
	return 0;
}

/*
 * A send parked for room that only a store frees: the store must wake
 * mbxd (the watch word), or the send times out.  The receiver takes its
 * message from what its library held, so nothing else reaches mbxd.
 */
START_TEST(test_store_wakes_a_parked_send)
{
	struct harness h;
	struct harness_child ch;
	char buf[64];
	mbx_t *c, *r;

	harness_start(&h, NULL);
	c = harness_open(&h);
	mk(c, "q", 2);
	r = harness_open(&h);
	ASSERT_OK(mbx_bind(r, "q", MBX_BIND_EXCLUSIVE));
	harness_put(c, "q", "a");
	harness_put(c, "q", "b");
	/* a returned (stored), b held: two in the mailbox still. */
	harness_expect(r, "q", 0, "a");
	harness_child_start(&ch, &h, send_two_blocking, NULL);
	/* c fits once mbxd has read the store of a. */
	ck_assert_int_eq(harness_child_read(&ch), 0);
	ck_assert_int_eq(harness_child_read(&ch), -1);
	harness_wait_blocked(c, &ch);
	ck_assert_int_eq(harness_mailbox_int(c, "q", "queued"), 2);
	/* b from the library's hold: a store, and a doorbell. */
	harness_expect(r, "q", 0, "b");
	ck_assert_int_eq(harness_child_read(&ch), 0);
	ck_assert_int_eq(harness_child_join(&ch), 0);
	harness_expect(r, "q", 5000, "c");
	harness_expect(r, "q", 5000, "d");
	ASSERT_ERR(mbx_recv(r, "q", buf, sizeof(buf), NULL, 0), EAGAIN);
	mbx_close(r);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * A receive by name that takes a message past an older held one cannot
 * say so by the store: it writes an ACK.  The older one, never handed
 * out, is not received: it goes to the next receiver.
 */
START_TEST(test_receive_past_a_held_one)
{
	struct harness h;
	char buf[64];
	mbx_t *c, *a, *b;

	harness_start(&h, NULL);
	c = harness_open(&h);
	mk(c, "x", MBX_UNBOUNDED);
	mk(c, "y", MBX_UNBOUNDED);
	a = harness_open(&h);
	ASSERT_OK(mbx_bind(a, "x", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_bind(a, "y", MBX_BIND_EXCLUSIVE));
	harness_put(c, "x", "x1");
	harness_put(c, "y", "y1");
	harness_put(c, "x", "x2");
	/* Any: x1 returned, y1 and x2 held in that order. */
	harness_expect(a, NULL, 0, "x1");
	harness_expect(a, "x", 0, "x2");
	ck_assert(harness_wait_mailbox_int(c, "x", "received", 2));
	ck_assert_int_eq(harness_mailbox_int(c, "y", "received"), 0);
	mbx_close(a);
	b = harness_open(&h);
	ASSERT_OK(mbx_bind(b, "y", MBX_BIND_EXCLUSIVE));
	harness_expect(b, "y", 5000, "y1");
	ASSERT_OK(mbx_bind(b, "x", MBX_BIND_EXCLUSIVE));
	ASSERT_ERR(mbx_recv(b, "x", buf, sizeof(buf), NULL, 0), EAGAIN);
	mbx_close(b);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * Exactly once across rebinds of running receivers.  Two helpers receive
 * from "q" as fast as they can and count every message in shared memory;
 * the test moves the binding between them again and again.  A receive
 * whose store came after mbxd's takeback read must find out (its check)
 * and hand nothing out: no message may be counted twice, none missed.
 */
#define STORM_MSGS	4000

struct storm {
	_Atomic unsigned counts[STORM_MSGS];
	_Atomic unsigned total;
	_Atomic long	 ids[2];
	_Atomic bool	 stop;		/* the test gave up waiting */
};

static int
storm_receiver(const struct harness *h, void *arg)
{
	struct storm *st = arg;
	mbx_t *c = mbx_open(h->sock);
	unsigned idx;
	int me = -1;

	CHILD_REQUIRE(c != NULL);
	if (mbx_bind(c, "q", MBX_BIND_EXCLUSIVE) == 0)
		me = 0;
	else
		CHILD_REQUIRE(mbx_bind(c, "q", MBX_BIND_QUEUE) == 0);
	atomic_store(&st->ids[me == 0 ? 0 : 1], mbx_id(c));
	while (atomic_load(&st->total) < STORM_MSGS &&
	    !atomic_load(&st->stop)) {
		ssize_t n = mbx_recv(c, "q", &idx, sizeof(idx), NULL, 50);

		if (n == (ssize_t)sizeof(idx)) {
			CHILD_REQUIRE(idx < STORM_MSGS);
			atomic_fetch_add(&st->counts[idx], 1);
			atomic_fetch_add(&st->total, 1);
			/* Slow enough that the binding moves under load. */
			usleep(20);
			continue;
		}
		CHILD_REQUIRE(n == -1);
		/* Rebound away: stand by again. */
		if (errno == EPERM)
			CHILD_REQUIRE(mbx_bind(c, "q", MBX_BIND_QUEUE) == 0);
		else
			CHILD_REQUIRE(errno == ETIMEDOUT);
	}
	mbx_close(c);
	return 0;
}

START_TEST(test_rebind_storm_exactly_once)
{
	struct harness h;
	struct harness_child ch[2];
	struct storm *st;
	int64_t deadline;
	unsigned rebinds = 0, dup = 0, missing = 0;
	mbx_t *c;

	st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert(st != MAP_FAILED);
	memset(st, 0, sizeof(*st));
	harness_start(&h, NULL);
	c = harness_open(&h);
	mk(c, "q", MBX_UNBOUNDED);
	harness_child_start(&ch[0], &h, storm_receiver, st);
	while (atomic_load(&st->ids[0]) == 0)
		usleep(1000);
	harness_child_start(&ch[1], &h, storm_receiver, st);
	while (atomic_load(&st->ids[1]) == 0)
		usleep(1000);
	for (unsigned i = 0; i < STORM_MSGS; i++)
		ASSERT_OK(mbx_send(c, "q", &i, sizeof(i), 0, -1));
	deadline = harness_now_ms() + (int64_t)(harness_tcase_timeout() * 500);
	while (atomic_load(&st->total) < STORM_MSGS &&
	    harness_now_ms() < deadline) {
		long to = atomic_load(&st->ids[(rebinds + 1) % 2]);

		/* The other may not stand by yet: then try again. */
		if (mbx_rebind(c, "q", to) == 0)
			rebinds++;
		usleep(300);
	}
	atomic_store(&st->stop, true);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(harness_child_join(&ch[i]), 0);
	for (unsigned i = 0; i < STORM_MSGS; i++) {
		unsigned n = atomic_load(&st->counts[i]);

		dup += n > 1;
		missing += n == 0;
	}
	ck_assert_msg(dup == 0 && missing == 0,
	    "%u duplicated, %u missing, over %u rebinds", dup, missing,
	    rebinds);
	ck_assert_uint_gt(rebinds, 20);
	ck_assert_int_eq(harness_mailbox_int(c, "q", "received"), STORM_MSGS);
	mbx_close(c);
	harness_stop(&h);
	munmap(st, sizeof(*st));
}
END_TEST

Suite *
consume_suite(void)
{
	Suite *s = suite_create("consume");
	TCase *tc = tcase_create("consume");

	tcase_set_timeout(tc, harness_tcase_timeout() * 2);
	tcase_add_test(tc, test_rebind_reads_the_store);
	tcase_add_test(tc, test_killed_after_receive);
	tcase_add_test(tc, test_store_wakes_a_parked_send);
	tcase_add_test(tc, test_receive_past_a_held_one);
	tcase_add_test(tc, test_rebind_storm_exactly_once);
	suite_add_tcase(s, tc);
	return s;
}
