/*
 * test-pass.c - mbxd's passes over the channels' tx rings (daemon/pass.c),
 * on page sets in plain memory with a clock the test turns by hand: the
 * merge by stamp, the clamp, the batch limit's cut, failures in the middle
 * of a pass, and the hot list's sleep protocol.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "channel.h"
#include "pass.h"
#include "suites.h"

/* A clock that returns the times the test queued, then the last again. */
static uint64_t	 times[16];
static size_t	 ntimes, tnext;

static uint64_t
fake_clock(void)
{
	uint64_t t = times[tnext < ntimes ? tnext : ntimes - 1];

	if (tnext < ntimes)
		tnext++;
	return t;
}

/* The pass reads t0, then hi. */
static void
clock_pass(uint64_t t0, uint64_t hi)
{
	times[0] = t0;
	times[1] = hi;
	ntimes = 2;
	tnext = 0;
}

struct end {
	uint8_t		*client, *daemon;
	struct channel_tx tx;
	struct pass_source src;
	int		 id;
};

static void
end_init(struct end *e, int id)
{
	e->client = calloc(1, CHANNEL_CLIENT_SIZE);
	e->daemon = calloc(1, CHANNEL_DAEMON_SIZE);
	ck_assert_ptr_nonnull(e->client);
	ck_assert_ptr_nonnull(e->daemon);
	channel_tx_init(&e->tx, e->client + CHANNEL_CLIENT_RING, 0);
	pass_source_init(&e->src, e->client, e->daemon, 0, e);
	e->id = id;
}

static struct pass pass;

static void
end_free(struct end *e)
{
	pass_source_deinit(&pass, &e->src);
	free(e->client);
	free(e->daemon);
}

/* Publishes one record whose body is "id:n" and whose stamp is given. */
static bool
end_post(struct end *e, uint64_t stamp, unsigned n)
{
	uint8_t *b = channel_tx_reserve(&e->tx, channel_load(e->daemon,
	    CHANNEL_DAEMON_TX_HEAD), CHANNEL_POST, 0, stamp, 8);

	if (b == NULL)
		return false;
	memcpy(b, &e->id, 4);
	memcpy(b + 4, &n, 4);
	channel_store(e->client, CHANNEL_CLIENT_TX_TAIL,
	    channel_tx_publish(&e->tx));
	return true;
}

/* What the take callback saw. */
struct seen {
	int		 id;
	unsigned	 n;
	uint64_t	 stamp;
};

static struct seen seen[4096];
static size_t	 nseen;
static int	 fail_at = -1, fail_err;	/* take fails at this call */
static int	 ncalls, nwakes;

static int
take(void *owner, const struct pass_item *it, void *arg)
{
	struct end *e = owner;
	uint8_t b[8];

	(void)arg;
	if (ncalls++ == fail_at)
		return fail_err;
	ck_assert_uint_eq(it->rec.len, 8);
	ck_assert(pass_item_copy(it, 0, b, 8));
	ck_assert(!pass_item_copy(it, 4, b, 8));
	ck_assert_uint_lt(nseen, sizeof(seen) / sizeof(seen[0]));
	memcpy(&seen[nseen].id, b, 4);
	memcpy(&seen[nseen].n, b + 4, 4);
	ck_assert_int_eq(seen[nseen].id, e->id);
	seen[nseen++].stamp = it->stamp;
	return 0;
}

static void
wake(void *owner, void *arg)
{
	(void)owner;
	(void)arg;
	nwakes++;
}

static int	 nbroken, npolls;

static void
poll_(struct pass *p, void *arg)
{
	(void)p;
	(void)arg;
	npolls++;
}

static void
broken(void *owner, void *arg)
{
	(void)owner;
	(void)arg;
	nbroken++;
}

static const struct pass_ops ops = { take, wake, poll_, broken };

static void
setup(void)
{
	nseen = 0;
	ncalls = nwakes = nbroken = npolls = 0;
	fail_at = -1;
	pass_init(&pass, fake_clock, &ops, NULL);
}

static void
teardown(void)
{
	pass_deinit(&pass);
}

START_TEST(merges_sources_by_stamp)
{
	struct end a, b;

	end_init(&a, 1);
	end_init(&b, 2);
	pass_heat(&pass, &a.src);
	pass_heat(&pass, &b.src);
	for (unsigned i = 0; i < 20; i++) {
		ck_assert(end_post(&a, 10 + 2 * i, i));
		ck_assert(end_post(&b, 11 + 2 * i, i));
	}
	clock_pass(1000, 1001);
	ck_assert_int_eq(pass_run(&pass), 40);
	for (size_t i = 0; i < 40; i++) {
		ck_assert_int_eq(seen[i].id, i % 2 ? 2 : 1);
		ck_assert_uint_eq(seen[i].n, i / 2);
		ck_assert_uint_eq(seen[i].stamp, 10 + i);
	}
	/* The heads were given back to the writers. */
	ck_assert_uint_eq(channel_load(a.daemon, CHANNEL_DAEMON_TX_HEAD),
	    a.tx.tail);
	ck_assert_uint_eq(channel_load(b.daemon, CHANNEL_DAEMON_TX_HEAD),
	    b.tx.tail);
	end_free(&a);
	end_free(&b);
}
END_TEST

/*
 * A record stamped at or after t0 waits for the next pass; one stamped
 * past the look (a liar) is lowered to just before it and waits one pass
 * at most; one stamped before the source's floor is raised to it.
 */
START_TEST(stamps_are_clamped)
{
	struct end a, b;

	end_init(&a, 1);
	end_init(&b, 2);
	pass_heat(&pass, &a.src);
	pass_heat(&pass, &b.src);
	ck_assert(end_post(&a, 150, 0));
	ck_assert(end_post(&b, UINT64_MAX, 0));
	clock_pass(100, 200);
	ck_assert_int_eq(pass_run(&pass), 0);
	clock_pass(300, 301);
	ck_assert_int_eq(pass_run(&pass), 2);
	ck_assert_uint_eq(seen[0].stamp, 150);
	ck_assert_uint_eq(seen[1].stamp, 199);
	/* Both are empty now: their floor is 300. */
	clock_pass(400, 401);
	ck_assert_int_eq(pass_run(&pass), 0);
	ck_assert(end_post(&a, 5, 1));		/* a liar, or a slow writer */
	ck_assert(end_post(&b, 350, 1));	/* before a's floor too */
	clock_pass(500, 501);
	ck_assert_int_eq(pass_run(&pass), 2);
	ck_assert_uint_eq(seen[2].stamp, 400);
	ck_assert_uint_eq(seen[3].stamp, 400);
	/* A stamp above the floor stands, and orders. */
	ck_assert(end_post(&b, 560, 2));
	ck_assert(end_post(&a, 570, 2));
	clock_pass(600, 601);
	ck_assert_int_eq(pass_run(&pass), 2);
	ck_assert_int_eq(seen[4].id, 2);
	ck_assert_uint_eq(seen[4].stamp, 560);
	ck_assert_int_eq(seen[5].id, 1);
	end_free(&a);
	end_free(&b);
}
END_TEST

/*
 * A source that has more than a batch leaves records behind; nothing
 * stamped at or after the first of those is handed over in that pass.
 */
START_TEST(batch_limit_cuts_the_merge)
{
	struct end a, b;
	uint64_t prev = 0;

	end_init(&a, 1);
	end_init(&b, 2);
	pass_heat(&pass, &a.src);
	pass_heat(&pass, &b.src);
	for (unsigned i = 0; i < 100; i++)
		ck_assert(end_post(&a, 1 + i, i));
	ck_assert(end_post(&b, 70, 0));
	clock_pass(1000, 1001);
	ck_assert_int_eq(pass_run(&pass), PASS_SOURCE_BATCH);
	for (size_t i = 0; i < nseen; i++)
		ck_assert_int_eq(seen[i].id, 1);
	for (int k = 0; k < 3; k++) {
		clock_pass(1000, 1001);
		pass_run(&pass);
	}
	ck_assert_uint_eq(nseen, 101);
	for (size_t i = 0; i < nseen; i++) {
		ck_assert_uint_ge(seen[i].stamp, prev);
		prev = seen[i].stamp;
	}
	ck_assert_int_eq(seen[70].id, 2);
	end_free(&a);
	end_free(&b);
}
END_TEST

/*
 * A take that cannot be done now stops the pass: it and everything after
 * it in the merged order are taken by a later pass, in the same order.
 */
START_TEST(failed_take_keeps_the_rest)
{
	struct end a, b;

	end_init(&a, 1);
	end_init(&b, 2);
	pass_heat(&pass, &a.src);
	pass_heat(&pass, &b.src);
	for (unsigned i = 0; i < 5; i++) {
		ck_assert(end_post(&a, 10 + 2 * i, i));
		ck_assert(end_post(&b, 11 + 2 * i, i));
	}
	fail_at = 3;
	fail_err = -ENOMEM;
	clock_pass(1000, 1001);
	ck_assert_int_eq(pass_run(&pass), 3);
	ck_assert_uint_eq(nseen, 3);
	clock_pass(1100, 1101);
	ck_assert_int_eq(pass_run(&pass), 7);
	for (size_t i = 0; i < 10; i++) {
		ck_assert_int_eq(seen[i].id, i % 2 ? 2 : 1);
		ck_assert_uint_eq(seen[i].n, i / 2);
	}
	/* Nothing handed over at all: the failure itself is the answer. */
	ck_assert(end_post(&a, 1200, 9));
	fail_at = ncalls;
	clock_pass(1300, 1301);
	ck_assert_int_eq(pass_run(&pass), -ENOMEM);
	clock_pass(1300, 1301);
	ck_assert_int_eq(pass_run(&pass), 1);
	end_free(&a);
	end_free(&b);
}
END_TEST

/* A record the owner refuses breaks its source only. */
START_TEST(refused_record_breaks_its_source)
{
	struct end a, b;

	end_init(&a, 1);
	end_init(&b, 2);
	pass_heat(&pass, &a.src);
	pass_heat(&pass, &b.src);
	ck_assert(end_post(&a, 10, 0));
	ck_assert(end_post(&a, 12, 1));
	ck_assert(end_post(&b, 11, 0));
	fail_at = 0;
	fail_err = -EPROTO;
	clock_pass(1000, 1001);
	ck_assert_int_eq(pass_run(&pass), 1);
	ck_assert(a.src.broken);
	ck_assert(!a.src.hot);
	ck_assert(!b.src.broken);
	ck_assert_int_eq(nbroken, 1);
	ck_assert_int_eq(npolls, 1);
	ck_assert_int_eq(seen[0].id, 2);
	/* A broken source does not come back. */
	pass_heat(&pass, &a.src);
	ck_assert(!a.src.hot);
	end_free(&a);
	end_free(&b);
}
END_TEST

START_TEST(bad_tail_breaks_its_source)
{
	struct end a;

	end_init(&a, 1);
	pass_heat(&pass, &a.src);
	channel_store(a.client, CHANNEL_CLIENT_TX_TAIL, 2 * CHANNEL_RING_SIZE);
	clock_pass(1000, 1001);
	ck_assert_int_eq(pass_run(&pass), 0);
	ck_assert(a.src.broken);
	ck_assert(pass_idle(&pass));
	ck_assert_int_eq(nbroken, 1);
	end_free(&a);
}
END_TEST

/*
 * Cooling sets the daemon's sleep flag and looks once more; heating
 * clears it.  A record published before the look keeps the source hot.
 */
START_TEST(cool_looks_once_more)
{
	struct end a;

	end_init(&a, 1);
	pass_heat(&pass, &a.src);
	ck_assert(end_post(&a, 10, 0));
	ck_assert(!pass_cool(&pass, &a.src));
	ck_assert(a.src.hot);
	ck_assert_uint_eq(channel_load(a.daemon, CHANNEL_DAEMON_SLEEP), 0);
	clock_pass(1000, 1001);
	ck_assert_int_eq(pass_run(&pass), 1);
	ck_assert(pass_cool(&pass, &a.src));
	ck_assert(pass_idle(&pass));
	ck_assert_uint_eq(channel_load(a.daemon, CHANNEL_DAEMON_SLEEP),
	    CHANNEL_WANT_DATA);
	pass_heat(&pass, &a.src);
	ck_assert_uint_eq(channel_load(a.daemon, CHANNEL_DAEMON_SLEEP), 0);
	ck_assert(!pass_idle(&pass));
	end_free(&a);
}
END_TEST

/* A writer waiting for room is woken once half the ring is free. */
START_TEST(writer_waiting_for_room_is_woken)
{
	struct end a;
	unsigned n = 0;

	end_init(&a, 1);
	pass_heat(&pass, &a.src);
	while (end_post(&a, 10, n))
		n++;
	ck_assert_uint_gt(n, 2 * PASS_SOURCE_BATCH);
	channel_store(a.client, CHANNEL_CLIENT_SLEEP, CHANNEL_WANT_ROOM);
	clock_pass(1000, 1001);
	ck_assert_int_eq(pass_run(&pass), PASS_SOURCE_BATCH);
	ck_assert_int_eq(nwakes, 0);		/* not yet half free */
	while (nwakes == 0 && nseen < n) {
		clock_pass(1000, 1001);
		ck_assert_int_gt(pass_run(&pass), 0);
	}
	ck_assert_int_eq(nwakes, 1);
	ck_assert(channel_room_wake(a.tx.tail, channel_load(a.daemon,
	    CHANNEL_DAEMON_TX_HEAD)));
	end_free(&a);
}
END_TEST

Suite *
pass_suite(void)
{
	Suite *s = suite_create("pass");
	TCase *tc = tcase_create("passes");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, merges_sources_by_stamp);
	tcase_add_test(tc, stamps_are_clamped);
	tcase_add_test(tc, batch_limit_cuts_the_merge);
	tcase_add_test(tc, failed_take_keeps_the_rest);
	tcase_add_test(tc, refused_record_breaks_its_source);
	tcase_add_test(tc, bad_tail_breaks_its_source);
	tcase_add_test(tc, cool_looks_once_more);
	tcase_add_test(tc, writer_waiting_for_room_is_woken);
	suite_add_tcase(s, tc);
	return s;
}
