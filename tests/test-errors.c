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

/* The status of the REPLY to id (the next frame); its body in *rest. */
static uint32_t
raw_status_body(int fd, uint32_t id, uint8_t **rest, size_t *rest_len)
{
	struct proto_reader r;
	uint8_t *body;
	size_t len;
	uint16_t type;
	uint32_t rid, flags, status;

	ck_assert_int_eq(harness_raw_read(fd, &type, &rid, &flags, &body,
	    &len), 1);
	ck_assert_int_eq(type, PROTO_REPLY);
	ck_assert_uint_eq(rid, id);
	proto_reader_init(&r, body, len);
	status = proto_get_u32(&r);
	if (rest != NULL) {
		*rest = body;
		*rest_len = len;
	} else {
		free(body);
	}
	return status;
}

static uint32_t
raw_status(int fd, uint32_t id)
{
	return raw_status_body(fd, id, NULL, NULL);
}

/* True when the daemon closes fd (EOF or reset) within the wait bound. */
static bool
raw_closed(int fd)
{
	uint8_t *body = NULL;
	size_t len;
	uint16_t type;
	uint32_t id, flags;
	int r;

	for (int i = 0; i < 8; i++) {
		r = harness_raw_read(fd, &type, &id, &flags, &body, &len);
		free(body);
		body = NULL;
		if (r != 1)
			return r == 0;
	}
	return false;
}

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

/*
 * The handshake.
 */

/* Frames written after a refused HELLO are never executed. */
START_TEST(test_hello_bad_version_stops)
{
	struct harness h;
	struct proto_writer hello, create, all;
	size_t start;
	json_t *mb;
	mbx_t *c;
	int fd;

	harness_start(&h, NULL);
	fd = harness_raw_connect(&h);
	proto_writer_init(&hello);
	proto_writer_init(&create);
	proto_writer_init(&all);
	proto_put_u32(&hello, PROTO_VERSION + 1);
	start = proto_frame_begin(&all);
	memcpy(proto_put_raw(&all, hello.len), hello.buf, hello.len);
	proto_frame_end(&all, start, PROTO_HELLO, 1, 0, 0);
	proto_put_str(&create, "after.hello", 11);
	proto_put_i64(&create, 4);
	proto_put_u64(&create, 1024);
	proto_put_u32(&create, 0600);
	proto_put_u32(&create, PROTO_ID_NONE);
	start = proto_frame_begin(&all);
	memcpy(proto_put_raw(&all, create.len), create.buf, create.len);
	proto_frame_end(&all, start, PROTO_CREATE, 2, 0, 0);
	ck_assert(!proto_writer_failed(&all));
	/* One write: the daemon reads both frames at once. */
	ck_assert(harness_raw_write(fd, all.buf, all.len));
	ck_assert_uint_eq(raw_status(fd, 1), PROTO_EPROTO);
	ck_assert_msg(raw_closed(fd), "the connection stayed open");
	close(fd);
	c = open_ok(&h);
	mb = harness_mailbox(c, "after.hello");
	ck_assert_msg(mb == NULL, "a CREATE after a refused HELLO was run");
	mbx_close(c);
	proto_writer_free(&hello);
	proto_writer_free(&create);
	proto_writer_free(&all);
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

	tc = tcase_create("handshake");
	tcase_set_timeout(tc, harness_tcase_timeout());
	tcase_add_test(tc, test_hello_bad_version_stops);
	suite_add_tcase(s, tc);
	return s;
}
