/*
 * test-errors.c - hostile clients (issue 9): charges and errors,
 * against a real mbxd.
 *
 * What a limit reached, a timeout of 0 or a bad version does to the call
 * and to the connection; names, payloads and command names that no
 * well-behaved client has, and where they may (not) end up: mbxd's log,
 * mbxctl's tables.  Where a test reads mbxd's log, the daemon runs with
 * -v and its stderr goes to a file in the test's directory.
 */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "proto.h"
#include "suites.h"
#include "users.h"

#define MiB	(1024u * 1024)

static mbx_t *
open_ok(const struct harness *h)
{
	return harness_open(h);
}

static void
create(mbx_t *c, const char *name, long capacity, size_t max_msg,
    unsigned mode)
{
	struct mbx_attr a;

	mbx_attr_init(&a);
	a.capacity = capacity;
	if (max_msg != 0)
		a.max_msg = max_msg;
	a.mode = mode;
	ASSERT_OK(mbx_create(c, name, &a));
}

/*
 * Charges.
 */

/*
 * An inline message is charged once: 1.5 MiB from a user whose share of a
 * 4 MiB daemon is 2 MiB goes through (its frame and its message were both
 * counted, 3 MiB).  A frame over the share is answered ENOBUFS, and the
 * connection serves on.
 */
START_TEST(test_charge_once)
{
	struct harness h;
	mbx_t *root, *o;
	char *big = malloc(3 * MiB);
	char *got = malloc(3 * MiB);
	struct mbx_meta meta;

	if (!is_root()) {
		skip("charge_once", "needs root for a second identity");
		free(big);
		free(got);
		return;
	}
	ck_assert(big != NULL && got != NULL);
	for (size_t i = 0; i < 3 * MiB; i++)
		big[i] = (char)(i * 7 + 1);
	daemon_start(&h, "{\"limits\": {\"max_memory\": 4194304}}");
	root = open_ok(&h);
	create(root, "charge", 8, 4 * MiB, 0666);
	ASSERT_OK(mbx_bind(root, "charge", MBX_BIND_EXCLUSIVE));
	o = open_as(&h, &OTHER);

	ASSERT_OK(mbx_send(o, "charge", big, 3 * MiB / 2, 0, -1));
	ck_assert_int_eq(mbx_recv(root, "charge", got, 3 * MiB, &meta, 0),
	    3 * MiB / 2);
	ck_assert(memcmp(got, big, 3 * MiB / 2) == 0);

	/* Over the share: an answer, not a hang-up; nothing was queued. */
	ASSERT_ERR(mbx_send(o, "charge", big, 3 * MiB, 0, -1), ENOBUFS);
	ASSERT_ERR(mbx_send(o, "charge", big, 3 * MiB, 0, 0), ENOBUFS);
	ASSERT_OK(mbx_send(o, "charge", "after", 5, 0, -1));
	ck_assert_int_eq(mbx_recv(root, "charge", got, 3 * MiB, &meta, 0), 5);
	ck_assert(memcmp(got, "after", 5) == 0);
	ASSERT_ERR(mbx_recv(root, "charge", got, 3 * MiB, &meta, 0), EAGAIN);
	ck_assert_int_eq(harness_mailbox_int(root, "charge", "bytes"), 0);

	/* A batch over the share: ENOBUFS, none sent, still connected. */
	{
		struct mbx_smsg v[2] = {
			{ "charge", big, 3 * MiB / 2 },
			{ "charge", big, 3 * MiB / 2 },
		};

		errno = 0;
		ck_assert_int_eq(mbx_sendv(o, v, 2, 0), -1);
		ck_assert_int_eq(errno, ENOBUFS);
	}
	ASSERT_OK(mbx_send(o, "charge", "again", 5, 0, -1));
	ck_assert_int_eq(mbx_recv(root, "charge", got, 3 * MiB, &meta, 0), 5);
	ASSERT_ERR(mbx_recv(root, "charge", got, 3 * MiB, &meta, 0), EAGAIN);

	mbx_close(o);
	mbx_close(root);
	free(big);
	free(got);
	harness_stop(&h);
}
END_TEST

Suite *
errors_suite(void)
{
	Suite *s = suite_create("errors");
	TCase *tc = tcase_create("charges");

	tcase_set_timeout(tc, harness_tcase_timeout());
	tcase_add_test(tc, test_charge_once);
	suite_add_tcase(s, tc);
	return s;
}
