/*
 * test-e2e.c - libmbx against a real mbxd: one test per rule of the core
 * issue and of the design decisions (names, capacities, blocking and
 * timed calls, sync sends, bindings, rebind, direct addresses, destroy,
 * shutdown, concurrency, hostile frames).
 *
 * Every test starts its own daemon (harness_start) and stops it
 * (harness_stop, which also asserts that it exits 0).  Concurrency uses
 * forked helpers with their own connections; when the order of events
 * matters the test first observes the state it needs: a binding or a
 * standby list through mbx_list(), a helper asleep in its call through
 * harness_wait_blocked().  Nothing sleeps.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>
#include <jansson.h>

#include "harness.h"
#include "mbxd-proc.h"
#include "mbx.h"
#include "proto.h"
#include "raw.h"
#include "suites.h"
#include "users.h"

#define NOBIND		(-1)

/*
 * Helpers of the tests
 */

static void
create(mbx_t *c, const char *name, long capacity, size_t max_msg)
{
	struct mbx_attr a;

	mbx_attr_init(&a);
	a.capacity = capacity;
	if (max_msg != 0)
		a.max_msg = max_msg;
	ASSERT_OK(mbx_create(c, name, &a));
}

/* Sends a string that must be accepted at once. */
/* Receives and checks one message; meta, when not NULL, gets its meta. */
static void
expect(mbx_t *c, const char *name, int timeout, const char *want,
    struct mbx_meta *meta)
{
	char buf[4096];
	struct mbx_meta m;
	ssize_t n;

	memset(&m, 0, sizeof(m));
	errno = 0;
	n = mbx_recv(c, name, buf, sizeof(buf), &m, timeout);
	ck_assert_msg(n >= 0, "mbx_recv(%s): -1 (%s), expected \"%s\"",
	    name ? name : "NULL", harness_errname(errno), want);
	ck_assert_msg((size_t)n == strlen(want) && memcmp(buf, want,
	    (size_t)n) == 0, "mbx_recv(%s): got \"%.*s\", expected \"%s\"",
	    name ? name : "NULL", (int)n, buf, want);
	ck_assert_uint_eq(m.len, (size_t)n);
	if (meta != NULL)
		*meta = m;
}

/* A receive whose outcome is only its status (the buffer is ample). */
static ssize_t
try_recv(mbx_t *c, const char *name, int timeout)
{
	char buf[4096];

	return mbx_recv(c, name, buf, sizeof(buf), NULL, timeout);
}

static void
assert_elapsed(int64_t t0, int timeout)
{
	int64_t el = harness_now_ms() - t0;

	ck_assert_msg(el >= timeout, "returned after %lld ms, before its %d "
	    "ms timeout", (long long)el, timeout);
}

static long
mbint(mbx_t *c, const char *name, const char *key)
{
	return harness_mailbox_int(c, name, key);
}

static void
assert_standby(mbx_t *c, const char *name, const char *want)
{
	char buf[512];

	harness_standby(c, name, buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, want) == 0, "%s: standby [%s], expected "
	    "[%s]", name, buf, want);
}

static char *
idlist(char *buf, size_t len, long a, long b)
{
	if (b > 0)
		snprintf(buf, len, "%ld,%ld", a, b);
	else if (a > 0)
		snprintf(buf, len, "%ld", a);
	else
		buf[0] = '\0';
	return buf;
}

static void
direct_name(char *buf, size_t len, long id)
{
	snprintf(buf, len, "@%ld", id);
}

/*
 * One libmbx call in a forked helper: open, optionally bind, report the
 * client id, make the call and check its outcome; then optionally a second
 * call that must fail with then_err.
 */
struct op {
	const char	*name;		/* mailbox (NULL: receive-any) */
	int		 bind;		/* MBX_BIND_* first, or NOBIND */
	const char	*data;		/* send: payload; recv: expected */
	int		 flags;		/* mbx_send() flags */
	int		 timeout;
	int		 err;		/* expected errno; 0: success */
	int		 then_err;	/* a second call's errno; 0: none */
};

static int
child_send(const struct harness *h, void *arg)
{
	const struct op *op = arg;
	mbx_t *c = mbx_open(h->sock);
	int r;

	CHILD_REQUIRE(c != NULL);
	if (op->bind != NOBIND)
		CHILD_REQUIRE(mbx_bind(c, op->name, op->bind) == 0);
	harness_report(mbx_id(c));
	r = mbx_send(c, op->name, op->data, strlen(op->data), op->flags,
	    op->timeout);
	/* When the call returned, for tests that bound a wake-up. */
	harness_report((long)harness_now_ms());
	if (op->err == 0)
		CHILD_REQUIRE(r == 0);
	else
		CHILD_REQUIRE(r == -1 && errno == op->err);
	if (op->then_err != 0) {
		r = mbx_send(c, op->name, "x", 1, 0, 0);
		CHILD_REQUIRE(r == -1 && errno == op->then_err);
	}
	mbx_close(c);
	return 0;
}

static int
child_recv(const struct harness *h, void *arg)
{
	const struct op *op = arg;
	mbx_t *c = mbx_open(h->sock);
	struct mbx_meta m;
	char buf[1024];
	ssize_t n;

	CHILD_REQUIRE(c != NULL);
	if (op->bind != NOBIND)
		CHILD_REQUIRE(mbx_bind(c, op->name, op->bind) == 0);
	harness_report(mbx_id(c));
	n = mbx_recv(c, op->name, buf, sizeof(buf), &m, op->timeout);
	harness_report((long)harness_now_ms());
	if (op->err == 0) {
		CHILD_REQUIRE(n >= 0);
		CHILD_REQUIRE((size_t)n == strlen(op->data));
		CHILD_REQUIRE(memcmp(buf, op->data, (size_t)n) == 0);
		CHILD_REQUIRE(m.len == (size_t)n);
	} else {
		CHILD_REQUIRE(n == -1 && errno == op->err);
	}
	if (op->then_err != 0) {
		n = mbx_recv(c, op->name, buf, sizeof(buf), NULL, 0);
		CHILD_REQUIRE(n == -1 && errno == op->then_err);
	}
	mbx_close(c);
	return 0;
}

/*
 * Starts a helper whose call must block, and returns its client id once
 * the daemon holds its call.  Fails if the call returned at once.
 */
static long
start_blocked(struct harness_child *ch, const struct harness *h, mbx_t *c,
    harness_child_fn fn, struct op *op)
{
	long id;

	harness_child_start(ch, h, fn, op);
	id = harness_child_read(ch);
	ck_assert_msg(id > 0, "helper's client id %ld", id);
	harness_wait_blocked(c, ch);
	if (!harness_child_running(ch))
		ck_abort_msg("the helper's call on %s returned at once (helper "
		    "exit %d) instead of waiting", op->name ? op->name :
		    "NULL", harness_child_join(ch));
	return id;
}

static void
join_ok(struct harness_child *ch)
{
	int code = harness_child_join(ch);

	ck_assert_msg(code == 0, "helper %d failed: exit %d (its message is "
	    "on stderr)", (int)ch->pid, code);
}

/*
 * Raw frames, for what libmbx never sends (tests/raw.h has the
 * writers and readers every suite shares).
 */

/*
 * Reads the MSG answering request id; returns its msg_id and flags and
 * checks its payload, inline or in a memfd (a sender with MBX_ZEROCOPY).
 */
static uint64_t
raw_msg(int fd, uint32_t id, const char *want, uint32_t *flags)
{
	struct proto_reader rd;
	struct proto_str payload;
	char shared[64];
	uint8_t *body;
	size_t len;
	uint16_t type;
	uint32_t rid;
	uint64_t msg_id;
	int memfd;

	ck_assert_int_eq(harness_raw_read_fd(fd, &type, &rid, flags, &body,
	    &len, &memfd), 1);
	ck_assert_int_eq(type, PROTO_MSG);
	ck_assert_uint_eq(rid, id);
	proto_reader_init(&rd, body, len);
	msg_id = proto_get_u64(&rd);
	proto_get_str(&rd);		/* mailbox */
	proto_get_u64(&rd);		/* sender_id */
	proto_get_u32(&rd);		/* pid */
	proto_get_u32(&rd);		/* uid */
	proto_get_u32(&rd);		/* attempt */
	proto_get_str(&rd);		/* origin */
	proto_get_u32(&rd);		/* origin_attempts */
	if (*flags & PROTO_MSG_FD) {
		payload.len = proto_get_u64(&rd);
		ck_assert(memfd >= 0 && payload.len < sizeof(shared));
		ck_assert(pread(memfd, shared, payload.len,
		    PROTO_SHARED_HEADER) == (ssize_t)payload.len);
		payload.ptr = shared;
		close(memfd);
	} else {
		ck_assert_int_eq(memfd, -1);
		payload = proto_get_blob(&rd);
	}
	ck_assert(proto_reader_done(&rd));
	ck_assert_msg(payload.len == strlen(want) && memcmp(payload.ptr,
	    want, payload.len) == 0, "MSG payload \"%.*s\", expected \"%s\"",
	    (int)payload.len, payload.ptr, want);
	free(body);
	return msg_id;
}

/*
 * Connections, handshake, admin views
 */

static void
read_comm(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/comm", "r");

	ck_assert(f != NULL);
	ck_assert(fgets(buf, (int)len, f) != NULL);
	buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

START_TEST(test_open_ids)
{
	struct harness h;
	mbx_t *c[4];
	long ids[4];
	char path[HARNESS_PATH_MAX + 16], comm[64];
	json_t *o;

	harness_start(&h, NULL);
	for (int i = 0; i < 3; i++) {
		c[i] = harness_open(&h);
		ids[i] = mbx_id(c[i]);
		ck_assert_int_ge(mbx_fd(c[i]), 0);
		for (int j = 0; j < i; j++)
			ck_assert_int_ne(ids[i], ids[j]);
	}
	/* Ids are never reused while the daemon lives. */
	mbx_close(c[0]);
	ck_assert(harness_wait_client_gone(c[1], ids[0]));
	c[3] = harness_open(&h);
	ids[3] = mbx_id(c[3]);
	for (int j = 0; j < 3; j++)
		ck_assert_int_ne(ids[3], ids[j]);

	/* The daemon knows who we are from SO_PEERCRED. */
	o = harness_client(c[1], ids[1]);
	ck_assert_msg(o != NULL, "client %ld not listed", ids[1]);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "pid")),
	    getpid());
	ck_assert_int_eq(json_integer_value(json_object_get(o, "uid")),
	    getuid());
	ck_assert_int_eq(json_integer_value(json_object_get(o, "gid")),
	    getgid());
	read_comm(comm, sizeof(comm));
	ck_assert_str_eq(json_string_value(json_object_get(o, "comm")), comm);
	ck_assert(json_is_array(json_object_get(o, "bound")));
	ck_assert_uint_eq(json_array_size(json_object_get(o, "bound")), 0);
	ck_assert(json_is_array(json_object_get(o, "standby")));
	json_decref(o);

	/* NULL means $MBX_SOCKET. */
	ck_assert_int_eq(setenv("MBX_SOCKET", h.sock, 1), 0);
	c[0] = mbx_open(NULL);
	ck_assert_msg(c[0] != NULL, "mbx_open(NULL) with MBX_SOCKET: %s",
	    harness_errname(errno));
	ck_assert_ptr_nonnull(o = harness_client(c[1], mbx_id(c[0])));
	json_decref(o);
	mbx_close(c[0]);

	/* No daemon there. */
	snprintf(path, sizeof(path), "%s/none.sock", h.dir);
	errno = 0;
	ck_assert_ptr_null(mbx_open(path));
	ck_assert_msg(errno == ENOENT || errno == ECONNREFUSED,
	    "mbx_open without a daemon: %s", harness_errname(errno));
	ck_assert_int_eq(setenv("MBX_SOCKET", path, 1), 0);
	errno = 0;
	ck_assert_ptr_null(mbx_open(NULL));
	ck_assert_msg(errno == ENOENT || errno == ECONNREFUSED,
	    "mbx_open(NULL) without a daemon: %s", harness_errname(errno));

	for (int i = 1; i < 4; i++)
		mbx_close(c[i]);
	mbx_close(NULL);
	harness_stop(&h);
}
END_TEST

/* A version mismatch is answered with an error, then the daemon closes. */
START_TEST(test_handshake_version)
{
	struct harness h;
	struct proto_writer b;
	mbx_t *c;
	int fd;

	harness_start(&h, NULL);
	fd = harness_raw_connect(&h);
	proto_writer_init(&b);
	proto_put_u32(&b, PROTO_VERSION + 1);
	raw_frame(fd, PROTO_HELLO, 7, 0, 0, &b);
	proto_writer_free(&b);
	ck_assert_uint_eq(raw_status(fd, 7), PROTO_EPROTO);
	ck_assert_msg(raw_closed(fd, 8), "the daemon kept the connection open "
	    "after a version mismatch");
	close(fd);

	/* The right version works, raw and through libmbx. */
	fd = harness_raw_connect(&h);
	ck_assert_int_gt(harness_raw_hello(fd), 0);
	close(fd);
	c = harness_open(&h);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* A malformed frame closes that connection only; the daemon serves on. */
START_TEST(test_malformed_frame)
{
	static const struct {
		bool		hello;		/* handshake first */
		uint8_t		bytes[24];
		size_t		len;
	} bad[] = {
		/* garbage instead of HELLO */
		{ false, { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, 16 },
		/* an unknown frame type after the handshake */
		{ true, { 0, 0, 0, 0, 0x34, 0x12, 0, 0, 2, 0, 0, 0,
		    0, 0, 0, 0 }, 16 },
		/* a length above the maximum */
		{ true, { 0xff, 0xff, 0xff, 0x7f, PROTO_SEND, 0, 0, 0, 2, 0,
		    0, 0, 0, 0, 0, 0 }, 16 },
		/* SEND whose name claims 1000 bytes of a 4-byte body */
		{ true, { 4, 0, 0, 0, PROTO_SEND, 0, 0, 0, 2, 0, 0, 0,
		    0, 0, 0, 0, 0xe8, 0x03, 'a', 'b' }, 20 },
	};
	struct harness h;
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create(c, "ok", 4, 0);
	ASSERT_OK(mbx_bind(c, "ok", MBX_BIND_EXCLUSIVE));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int fd = harness_raw_connect(&h);
		long id = 0;

		if (bad[i].hello)
			id = harness_raw_hello(fd);
		ck_assert(harness_raw_write(fd, bad[i].bytes, bad[i].len));
		ck_assert_msg(raw_closed(fd, 8), "case %zu: the connection "
		    "stayed open", i);
		close(fd);
		if (id > 0)
			ck_assert(harness_wait_client_gone(c, id));
		/* The other client is unaffected. */
		harness_put(c, "ok", "still here");
		expect(c, "ok", 0, "still here", NULL);
	}
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

START_TEST(test_list_json)
{
	static const char *const keys[] = { "name", "capacity", "max_msg",
	    "queued", "bytes", "receiver", "standby", "sent", "received" };
	static const struct {
		const char	*name;
		long		 capacity;
		long		 max_msg;
	} want[] = {
		{ "a", 5, 100 },
		{ "b", MBX_DEFAULT_CAPACITY, MBX_DEFAULT_MAX_MSG },
		{ "c", -1, MBX_DEFAULT_MAX_MSG },
		{ "r", 0, MBX_DEFAULT_MAX_MSG },
	};
	struct harness h;
	mbx_t *c;
	json_t *all, *o;
	size_t i;

	harness_start(&h, NULL);
	c = harness_open(&h);
	all = harness_list(c);
	ck_assert_uint_eq(json_array_size(all), 0);
	json_decref(all);

	/* Created out of order, listed sorted by name. */
	ASSERT_OK(mbx_create(c, "b", NULL));
	create(c, "r", 0, 0);
	create(c, "a", 5, 100);
	create(c, "c", MBX_UNBOUNDED, 0);
	all = harness_list(c);
	ck_assert_uint_eq(json_array_size(all), 4);
	json_array_foreach(all, i, o) {
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			ck_assert_msg(json_object_get(o, keys[k]) != NULL,
			    "LIST entry %zu has no key %s", i, keys[k]);
		ck_assert_str_eq(json_string_value(json_object_get(o, "name")),
		    want[i].name);
		ck_assert_int_eq(json_integer_value(json_object_get(o,
		    "capacity")), want[i].capacity);
		ck_assert_int_eq(json_integer_value(json_object_get(o,
		    "max_msg")), want[i].max_msg);
		ck_assert(json_is_null(json_object_get(o, "receiver")));
		ck_assert_uint_eq(json_array_size(json_object_get(o,
		    "standby")), 0);
		ck_assert_int_eq(json_integer_value(json_object_get(o,
		    "queued")), 0);
		ck_assert_int_eq(json_integer_value(json_object_get(o,
		    "bytes")), 0);
		ck_assert_int_eq(json_integer_value(json_object_get(o,
		    "sent")), 0);
		ck_assert_int_eq(json_integer_value(json_object_get(o,
		    "received")), 0);
	}
	json_decref(all);

	/* Counters: sent counts accepted, received counts acknowledged. */
	harness_put(c, "b", "hello");
	harness_put(c, "b", "xy");
	ASSERT_OK(mbx_bind(c, "b", MBX_BIND_EXCLUSIVE));
	expect(c, "b", 0, "hello", NULL);
	ck_assert_int_eq(mbint(c, "b", "queued"), 1);
	ck_assert_int_eq(mbint(c, "b", "bytes"), 2);
	ck_assert_int_eq(mbint(c, "b", "sent"), 2);
	ck_assert_int_eq(mbint(c, "b", "received"), 1);
	ck_assert_int_eq(mbint(c, "b", "receiver"), mbx_id(c));
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

START_TEST(test_clients_json)
{
	struct harness h;
	mbx_t *c1, *c2;
	json_t *all, *o, *v;
	long prev = 0;
	size_t i;

	harness_start(&h, NULL);
	c1 = harness_open(&h);
	c2 = harness_open(&h);
	create(c1, "x", 4, 0);
	create(c1, "y", 4, 0);
	ASSERT_OK(mbx_bind(c1, "x", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_bind(c1, "y", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_bind(c2, "x", MBX_BIND_QUEUE));

	all = harness_clients(c1);
	ck_assert_uint_eq(json_array_size(all), 2);
	json_array_foreach(all, i, o) {
		long id = (long)json_integer_value(json_object_get(o, "id"));

		ck_assert_msg(id > prev, "clients not sorted by id");
		prev = id;
	}
	json_decref(all);

	o = harness_client(c1, mbx_id(c1));
	ck_assert_ptr_nonnull(o);
	v = json_object_get(o, "bound");
	ck_assert_uint_eq(json_array_size(v), 2);
	ck_assert(strcmp(json_string_value(json_array_get(v, 0)), "x") == 0 ||
	    strcmp(json_string_value(json_array_get(v, 1)), "x") == 0);
	ck_assert(strcmp(json_string_value(json_array_get(v, 0)), "y") == 0 ||
	    strcmp(json_string_value(json_array_get(v, 1)), "y") == 0);
	ck_assert_uint_eq(json_array_size(json_object_get(o, "standby")), 0);
	json_decref(o);

	o = harness_client(c1, mbx_id(c2));
	ck_assert_ptr_nonnull(o);
	ck_assert_uint_eq(json_array_size(json_object_get(o, "bound")), 0);
	v = json_object_get(o, "standby");
	ck_assert_uint_eq(json_array_size(v), 1);
	ck_assert_str_eq(json_string_value(json_array_get(v, 0)), "x");
	json_decref(o);

	mbx_close(c2);
	mbx_close(c1);
	harness_stop(&h);
}
END_TEST

/*
 * Names and attributes
 */

START_TEST(test_create_destroy)
{
	struct harness h;
	mbx_t *c;
	json_t *o;

	harness_start(&h, NULL);
	c = harness_open(&h);
	ASSERT_OK(mbx_create(c, "jobs", NULL));
	ASSERT_ERR(mbx_create(c, "jobs", NULL), EEXIST);
	harness_put(c, "jobs", "old");
	ASSERT_OK(mbx_destroy(c, "jobs"));
	o = harness_mailbox(c, "jobs");
	ck_assert_ptr_null(o);
	ASSERT_ERR(mbx_destroy(c, "jobs"), ENOENT);
	/* A new mailbox of the same name starts empty. */
	ASSERT_OK(mbx_create(c, "jobs", NULL));
	ck_assert_int_eq(mbint(c, "jobs", "queued"), 0);
	ASSERT_OK(mbx_bind(c, "jobs", MBX_BIND_EXCLUSIVE));
	ASSERT_ERR(try_recv(c, "jobs", 0), EAGAIN);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

START_TEST(test_names)
{
	static const char *const bad[] = { "", "has space", "semi;colon",
	    "star*", "tab\there", "new\nline", "caf\xc3\xa9", "@", "@1",
	    "@abc", "@0", "back\\slash", "q\"uote" };
	char n255[MBX_NAME_MAX + 1], n256[MBX_NAME_MAX + 2], self[32];
	struct harness h;
	mbx_t *c;
	json_t *all;

	harness_start(&h, NULL);
	c = harness_open(&h);
	memset(n255, 'n', MBX_NAME_MAX);
	n255[MBX_NAME_MAX] = '\0';
	memset(n256, 'n', MBX_NAME_MAX + 1);
	n256[MBX_NAME_MAX + 1] = '\0';
	direct_name(self, sizeof(self), mbx_id(c));

	ASSERT_OK(mbx_create(c, "a", NULL));
	ASSERT_OK(mbx_create(c, "AZaz09._:/-", NULL));
	ASSERT_OK(mbx_create(c, n255, NULL));
	harness_put(c, n255, "long name");
	ASSERT_OK(mbx_bind(c, n255, MBX_BIND_EXCLUSIVE));
	expect(c, n255, 0, "long name", NULL);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		ck_assert_msg(mbx_create(c, bad[i], NULL) == -1 &&
		    errno == EINVAL, "create \"%s\": %s, expected EINVAL",
		    bad[i], harness_errname(errno));
	}
	ASSERT_ERR(mbx_create(c, n256, NULL), EINVAL);
	ASSERT_ERR(mbx_create(c, self, NULL), EINVAL);
	ASSERT_ERR(mbx_destroy(c, self), EINVAL);
	ASSERT_ERR(mbx_destroy(c, ""), EINVAL);
	ASSERT_ERR(mbx_bind(c, self, MBX_BIND_EXCLUSIVE), EINVAL);
	ASSERT_ERR(mbx_bind(c, "has space", MBX_BIND_EXCLUSIVE), EINVAL);
	ASSERT_ERR(mbx_send(c, "", "x", 1, 0, 0), EINVAL);
	ASSERT_ERR(mbx_send(c, n256, "x", 1, 0, 0), EINVAL);
	ASSERT_ERR(mbx_send(c, "star*", "x", 1, 0, 0), EINVAL);

	/* Only the three good names exist. */
	all = harness_list(c);
	ck_assert_uint_eq(json_array_size(all), 3);
	json_decref(all);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

START_TEST(test_attrs)
{
	struct harness h;
	struct mbx_attr a;
	mbx_t *c;
	json_t *all;

	harness_start(&h, NULL);
	c = harness_open(&h);
	mbx_attr_init(&a);
	ck_assert_int_eq(a.capacity, MBX_DEFAULT_CAPACITY);
	ck_assert_uint_eq(a.max_msg, MBX_DEFAULT_MAX_MSG);

	a.capacity = -2;
	ASSERT_ERR(mbx_create(c, "m", &a), EINVAL);
	mbx_attr_init(&a);
	a.max_msg = 0;
	ASSERT_ERR(mbx_create(c, "m", &a), EINVAL);
	a.max_msg = (size_t)MBX_MAX_MSG_LIMIT + 1;
	ASSERT_ERR(mbx_create(c, "m", &a), EINVAL);
	all = harness_list(c);
	ck_assert_uint_eq(json_array_size(all), 0);
	json_decref(all);

	a.max_msg = MBX_MAX_MSG_LIMIT;
	ASSERT_OK(mbx_create(c, "m", &a));
	ck_assert_int_eq(mbint(c, "m", "max_msg"), MBX_MAX_MSG_LIMIT);
	ck_assert_int_eq(mbint(c, "m", "capacity"), MBX_DEFAULT_CAPACITY);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

START_TEST(test_enoent)
{
	struct harness h;
	char buf[16];
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	ASSERT_ERR(mbx_send(c, "nosuch", "x", 1, 0, 0), ENOENT);
	ASSERT_ERR(mbx_send(c, "nosuch", "x", 1, 0, 100), ENOENT);
	ASSERT_ERR(mbx_recv(c, "nosuch", buf, sizeof(buf), NULL, 0), ENOENT);
	ASSERT_ERR(mbx_bind(c, "nosuch", MBX_BIND_EXCLUSIVE), ENOENT);
	ASSERT_ERR(mbx_unbind(c, "nosuch"), ENOENT);
	ASSERT_ERR(mbx_destroy(c, "nosuch"), ENOENT);
	ASSERT_ERR(mbx_rebind(c, "nosuch", mbx_id(c)), ENOENT);
	ASSERT_ERR(mbx_evict(c, "nosuch"), ENOENT);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * Sending: rendezvous, bounded, unbounded, sizes, order
 */

START_TEST(test_rendezvous_nowait)
{
	struct harness h;
	mbx_t *r, *s;
	int64_t t0;

	harness_start(&h, NULL);
	r = harness_open(&h);
	s = harness_open(&h);
	create(r, "rv", 0, 0);
	ASSERT_OK(mbx_bind(r, "rv", MBX_BIND_EXCLUSIVE));

	/* Bound but not receiving: a rendezvous send has nobody to meet. */
	ASSERT_ERR(mbx_send(s, "rv", "x", 1, 0, 0), EAGAIN);
	t0 = harness_now_ms();
	ASSERT_ERR(mbx_send(s, "rv", "y", 1, 0, 150), ETIMEDOUT);
	assert_elapsed(t0, 150);
	ASSERT_ERR(mbx_send(s, "rv", "z", 1, MBX_SYNC, 50), ETIMEDOUT);

	/* None of them is left behind. */
	ck_assert_int_eq(mbint(s, "rv", "queued"), 0);
	ck_assert_int_eq(mbint(s, "rv", "sent"), 0);
	ASSERT_ERR(try_recv(r, "rv", 0), EAGAIN);
	mbx_close(s);
	mbx_close(r);
	harness_stop(&h);
}
END_TEST

/* A blocking rendezvous send completes only when a receiver takes it. */
START_TEST(test_rendezvous_blocking)
{
	struct op op = { "rv", NOBIND, "hello", 0, -1, 0, 0 };
	struct harness h;
	struct harness_child ch;
	struct mbx_meta m;
	mbx_t *r;
	long sid;

	harness_start(&h, NULL);
	r = harness_open(&h);
	create(r, "rv", 0, 0);
	ASSERT_OK(mbx_bind(r, "rv", MBX_BIND_EXCLUSIVE));
	sid = start_blocked(&ch, &h, r, child_send, &op);
	expect(r, "rv", 5000, "hello", &m);
	ck_assert_int_eq(m.sender_id, sid);
	ck_assert_int_eq(m.pid, ch.pid);
	join_ok(&ch);
	ck_assert_int_eq(mbint(r, "rv", "queued"), 0);
	ck_assert_int_eq(mbint(r, "rv", "received"), 1);
	mbx_close(r);
	harness_stop(&h);
}
END_TEST

/*
 * A send with timeout 0 meets a receive that is already waiting, on a
 * rendezvous mailbox and as MBX_SYNC on a bounded one.
 */
START_TEST(test_send_meets_waiting_receiver)
{
	struct op op0 = { "rv", MBX_BIND_EXCLUSIVE, "ping", 0, -1, 0, 0 };
	struct op op1 = { "bd", MBX_BIND_EXCLUSIVE, "pong", 0, -1, 0, 0 };
	struct harness h;
	struct harness_child ch;
	mbx_t *s;

	harness_start(&h, NULL);
	s = harness_open(&h);
	create(s, "rv", 0, 0);
	create(s, "bd", 4, 0);

	start_blocked(&ch, &h, s, child_recv, &op0);
	ASSERT_OK(mbx_send(s, "rv", "ping", 4, 0, 0));
	join_ok(&ch);

	/* No receive waiting: a sync send with timeout 0 is refused. */
	ASSERT_ERR(mbx_send(s, "bd", "pong", 4, MBX_SYNC, 0), EAGAIN);
	ck_assert_int_eq(mbint(s, "bd", "queued"), 0);
	start_blocked(&ch, &h, s, child_recv, &op1);
	ASSERT_OK(mbx_send(s, "bd", "pong", 4, MBX_SYNC, 0));
	join_ok(&ch);
	ck_assert_int_eq(mbint(s, "bd", "queued"), 0);
	mbx_close(s);
	harness_stop(&h);
}
END_TEST

START_TEST(test_bounded_full)
{
	struct harness h;
	mbx_t *s, *r;
	int64_t t0;

	harness_start(&h, NULL);
	s = harness_open(&h);
	r = harness_open(&h);
	create(s, "b", 2, 0);
	harness_put(s, "b", "1");
	harness_put(s, "b", "2");
	ASSERT_ERR(mbx_send(s, "b", "3", 1, 0, 0), EAGAIN);
	t0 = harness_now_ms();
	ASSERT_ERR(mbx_send(s, "b", "4", 1, 0, 120), ETIMEDOUT);
	assert_elapsed(t0, 120);
	/* Nothing of the failed sends was enqueued. */
	ck_assert_int_eq(mbint(s, "b", "queued"), 2);
	ck_assert_int_eq(mbint(s, "b", "sent"), 2);
	ASSERT_OK(mbx_bind(r, "b", MBX_BIND_EXCLUSIVE));
	expect(r, "b", 0, "1", NULL);
	expect(r, "b", 0, "2", NULL);
	ASSERT_ERR(try_recv(r, "b", 0), EAGAIN);
	mbx_close(r);
	mbx_close(s);
	harness_stop(&h);
}
END_TEST

/* A blocking send to a full mailbox waits, and completes after a recv. */
START_TEST(test_bounded_blocking)
{
	struct op op = { "b", NOBIND, "second", 0, -1, 0, 0 };
	struct harness h;
	struct harness_child ch;
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create(c, "b", 1, 0);
	harness_put(c, "b", "first");
	start_blocked(&ch, &h, c, child_send, &op);
	ck_assert_int_eq(mbint(c, "b", "queued"), 1);
	ASSERT_OK(mbx_bind(c, "b", MBX_BIND_EXCLUSIVE));
	expect(c, "b", 0, "first", NULL);
	join_ok(&ch);
	expect(c, "b", 5000, "second", NULL);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

START_TEST(test_unbounded_enobufs)
{
	static const char *const args[] = { "--max-memory", "65536", NULL };
	enum { SZ = 16384 };
	static char payload[SZ];
	struct harness h;
	mbx_t *c;
	long n = 0;
	int i, e = 0;
	int64_t t0;

	memset(payload, 'u', sizeof(payload));
	harness_start(&h, args);
	c = harness_open(&h);
	create(c, "u", MBX_UNBOUNDED, 0);
	for (i = 0; i < 16; i++) {
		errno = 0;
		if (mbx_send(c, "u", payload, SZ, 0, 0) != 0) {
			e = errno;
			break;
		}
		n++;
	}
	ck_assert_msg(e == ENOBUFS, "send %d of %d bytes: %s, expected "
	    "ENOBUFS", i + 1, SZ, harness_errname(e));
	ck_assert_msg(n >= 1 && n <= 65536 / SZ, "%ld messages of %d bytes "
	    "under a 65536-byte cap", n, SZ);
	/* The cap fails at once, whatever the timeout. */
	t0 = harness_now_ms();
	ASSERT_ERR(mbx_send(c, "u", payload, SZ, 0, 3000), ENOBUFS);
	ck_assert_int_lt(harness_now_ms() - t0, 2000);
	/* Nothing of the refused sends is held. */
	ck_assert_int_eq(mbint(c, "u", "queued"), n);
	ck_assert_int_eq(mbint(c, "u", "sent"), n);
	ck_assert_int_eq(mbint(c, "u", "bytes"), n * SZ);
	/* Room again once a message is received. */
	ASSERT_OK(mbx_bind(c, "u", MBX_BIND_EXCLUSIVE));
	{
		static char buf[SZ];

		ck_assert_int_eq(mbx_recv(c, "u", buf, sizeof(buf), NULL, 0),
		    SZ);
	}
	ASSERT_OK(mbx_send(c, "u", payload, SZ, 0, 0));
	ck_assert_int_eq(mbint(c, "u", "queued"), n);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

START_TEST(test_send_emsgsize)
{
	enum { MIB = 1024 * 1024 };
	char small[101];
	char *big, *back;
	struct harness h;
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	memset(small, 's', sizeof(small));
	create(c, "m", 4, 100);
	ASSERT_ERR(mbx_send(c, "m", small, 101, 0, 0), EMSGSIZE);
	ASSERT_ERR(mbx_send(c, "m", small, 101, 0, -1), EMSGSIZE);
	ck_assert_int_eq(mbint(c, "m", "queued"), 0);
	ASSERT_OK(mbx_send(c, "m", small, 100, 0, 0));
	ck_assert_int_eq(mbint(c, "m", "queued"), 1);

	/* The default limit is 1 MiB, and a 1 MiB message goes through. */
	big = malloc(MIB + 1);
	back = malloc(MIB + 1);
	ck_assert(big != NULL && back != NULL);
	for (size_t i = 0; i < MIB + 1; i++)
		big[i] = (char)(i * 7 + i / 251);
	ASSERT_OK(mbx_create(c, "big", NULL));
	ASSERT_ERR(mbx_send(c, "big", big, MIB + 1, 0, 0), EMSGSIZE);
	ck_assert_int_eq(mbint(c, "big", "queued"), 0);
	ASSERT_OK(mbx_send(c, "big", big, MIB, 0, 0));
	ASSERT_OK(mbx_bind(c, "big", MBX_BIND_EXCLUSIVE));
	ck_assert_int_eq(mbx_recv(c, "big", back, MIB + 1, NULL, 0), MIB);
	ck_assert(memcmp(big, back, MIB) == 0);
	free(big);
	free(back);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

START_TEST(test_fifo)
{
	struct harness h;
	mbx_t *s1, *s2, *r;
	char buf[32];

	harness_start(&h, NULL);
	s1 = harness_open(&h);
	s2 = harness_open(&h);
	r = harness_open(&h);
	create(r, "f", 200, 0);
	ASSERT_OK(mbx_bind(r, "f", MBX_BIND_EXCLUSIVE));
	/*
	 * A send that returned has queued its message, so the order of
	 * completed sends is the mailbox's order, across senders too.
	 */
	for (int i = 0; i < 100; i++) {
		snprintf(buf, sizeof(buf), "m%d", i);
		harness_put(i % 3 ? s1 : s2, "f", buf);
	}
	for (int i = 0; i < 100; i++) {
		struct mbx_meta m;

		snprintf(buf, sizeof(buf), "m%d", i);
		expect(r, "f", 0, buf, &m);
		ck_assert_int_eq(m.sender_id, mbx_id(i % 3 ? s1 : s2));
		ck_assert_str_eq(m.mailbox, "f");
	}
	ASSERT_ERR(mbx_recv(r, "f", buf, sizeof(buf), NULL, 0), EAGAIN);
	mbx_close(s1);
	mbx_close(s2);
	mbx_close(r);
	harness_stop(&h);
}
END_TEST

enum { SENDERS = 8, PER_SENDER = 500 };

static int
child_many(const struct harness *h, void *arg)
{
	int idx = *(const int *)arg;
	mbx_t *c = mbx_open(h->sock);
	char buf[32];

	CHILD_REQUIRE(c != NULL);
	harness_report(mbx_id(c));
	for (int i = 0; i < PER_SENDER; i++) {
		int n = snprintf(buf, sizeof(buf), "%d:%d", idx, i);

		CHILD_REQUIRE(mbx_send(c, "many", buf, (size_t)n, 0, -1) == 0);
	}
	mbx_close(c);
	return 0;
}

/* Many concurrent senders: nothing lost, duplicated or reordered. */
START_TEST(test_many_senders)
{
	struct harness h;
	struct harness_child ch[SENDERS];
	int idx[SENDERS], next[SENDERS] = { 0 };
	long ids[SENDERS];
	mbx_t *r;

	harness_start(&h, NULL);
	r = harness_open(&h);
	/* Small enough that the senders block on a full mailbox. */
	create(r, "many", 64, 0);
	ASSERT_OK(mbx_bind(r, "many", MBX_BIND_EXCLUSIVE));
	for (int i = 0; i < SENDERS; i++) {
		idx[i] = i;
		harness_child_start(&ch[i], &h, child_many, &idx[i]);
	}
	for (int i = 0; i < SENDERS; i++)
		ids[i] = harness_child_read(&ch[i]);
	for (int k = 0; k < SENDERS * PER_SENDER; k++) {
		struct mbx_meta m;
		char buf[64];
		ssize_t n;
		int s, q;

		n = mbx_recv(r, "many", buf, sizeof(buf) - 1, &m, 10000);
		ck_assert_msg(n > 0, "message %d: %s", k,
		    harness_errname(errno));
		buf[n] = '\0';
		ck_assert_msg(sscanf(buf, "%d:%d", &s, &q) == 2 && s >= 0 &&
		    s < SENDERS, "bad payload \"%s\"", buf);
		ck_assert_msg(q == next[s], "sender %d: got %d, expected %d "
		    "(lost, duplicated or reordered)", s, q, next[s]);
		ck_assert_int_eq(m.sender_id, ids[s]);
		next[s]++;
	}
	for (int i = 0; i < SENDERS; i++)
		join_ok(&ch[i]);
	ASSERT_ERR(try_recv(r, "many", 0), EAGAIN);
	ck_assert_int_eq(mbint(r, "many", "sent"), SENDERS * PER_SENDER);
	ck_assert_int_eq(mbint(r, "many", "received"), SENDERS * PER_SENDER);
	mbx_close(r);
	harness_stop(&h);
}
END_TEST

/*
 * Receiving
 */

START_TEST(test_recv_small_buffer)
{
	struct harness h;
	char buf[64];
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create(c, "s", 4, 0);
	ASSERT_OK(mbx_bind(c, "s", MBX_BIND_EXCLUSIVE));
	harness_put(c, "s", "hello world");
	harness_put(c, "s", "s");
	ASSERT_ERR(mbx_recv(c, "s", buf, 5, NULL, 0), EMSGSIZE);
	ASSERT_ERR(mbx_recv(c, "s", buf, 10, NULL, -1), EMSGSIZE);
	ASSERT_ERR(mbx_recv(c, NULL, buf, 10, NULL, -1), EMSGSIZE);
	/* It stayed, at the head. */
	ck_assert_int_eq(mbint(c, "s", "queued"), 2);
	ck_assert_int_eq(mbint(c, "s", "received"), 0);
	ck_assert_int_eq(mbx_recv(c, "s", buf, 11, NULL, 0), 11);
	ck_assert(memcmp(buf, "hello world", 11) == 0);
	expect(c, "s", 0, "s", NULL);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

START_TEST(test_recv_nonblocking_timed)
{
	struct harness h;
	char buf[16];
	mbx_t *c;
	int64_t t0;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create(c, "e", 4, 0);
	ASSERT_OK(mbx_bind(c, "e", MBX_BIND_EXCLUSIVE));
	ASSERT_ERR(mbx_recv(c, "e", buf, sizeof(buf), NULL, 0), EAGAIN);
	t0 = harness_now_ms();
	ASSERT_ERR(mbx_recv(c, "e", buf, sizeof(buf), NULL, 200), ETIMEDOUT);
	assert_elapsed(t0, 200);
	t0 = harness_now_ms();
	ASSERT_ERR(mbx_recv(c, NULL, buf, sizeof(buf), NULL, 100), ETIMEDOUT);
	assert_elapsed(t0, 100);
	/* A timed-out receive consumed nothing that came later. */
	harness_put(c, "e", "later");
	expect(c, "e", 0, "later", NULL);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

START_TEST(test_recv_blocking)
{
	struct op op = { "rb", MBX_BIND_EXCLUSIVE, "wake", 0, -1, 0, 0 };
	struct harness h;
	struct harness_child ch;
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create(c, "rb", 4, 0);
	start_blocked(&ch, &h, c, child_recv, &op);
	harness_put(c, "rb", "wake");
	join_ok(&ch);
	/* Its acknowledgement travels on its own connection: wait for it. */
	ck_assert(harness_wait_mailbox_int(c, "rb", "received", 1));
	ck_assert_int_eq(mbint(c, "rb", "queued"), 0);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* An MBX_SYNC send returns once the receiver has the message. */
START_TEST(test_sync_send)
{
	struct op op = { "sy", NOBIND, "sync", MBX_SYNC, -1, 0, 0 };
	struct harness h;
	struct harness_child ch;
	mbx_t *r;

	harness_start(&h, NULL);
	r = harness_open(&h);
	create(r, "sy", 4, 0);
	ASSERT_OK(mbx_bind(r, "sy", MBX_BIND_EXCLUSIVE));
	start_blocked(&ch, &h, r, child_send, &op);
	/* It holds a slot while it waits. */
	ck_assert_int_eq(mbint(r, "sy", "queued"), 1);
	ck_assert(harness_child_running(&ch));
	expect(r, "sy", 0, "sync", NULL);
	join_ok(&ch);
	ck_assert_int_eq(mbint(r, "sy", "queued"), 0);
	ck_assert_int_eq(mbint(r, "sy", "received"), 1);
	mbx_close(r);
	harness_stop(&h);
}
END_TEST

/* A sync send whose deadline passes is withdrawn. */
START_TEST(test_sync_withdrawn)
{
	struct harness h;
	mbx_t *s, *r;
	int64_t t0;

	harness_start(&h, NULL);
	s = harness_open(&h);
	r = harness_open(&h);
	create(s, "sw", 4, 0);
	ASSERT_OK(mbx_bind(r, "sw", MBX_BIND_EXCLUSIVE));
	harness_put(s, "sw", "before");
	t0 = harness_now_ms();
	ASSERT_ERR(mbx_send(s, "sw", "withdrawn", 9, MBX_SYNC, 200),
	    ETIMEDOUT);
	assert_elapsed(t0, 200);
	ck_assert_int_eq(mbint(s, "sw", "queued"), 1);
	harness_put(s, "sw", "after");
	ck_assert_int_eq(mbint(s, "sw", "queued"), 2);
	expect(r, "sw", 0, "before", NULL);
	expect(r, "sw", 0, "after", NULL);
	ASSERT_ERR(try_recv(r, "sw", 0), EAGAIN);
	mbx_close(r);
	mbx_close(s);
	harness_stop(&h);
}
END_TEST

/*
 * Two-phase receive: a message delivered but not acknowledged when its
 * receiver disconnects goes back to the head of its mailbox.
 */
START_TEST(test_unacked_returns)
{
	struct harness h;
	uint32_t flags;
	mbx_t *c;
	int fd;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create(c, "al", 4, 0);
	harness_put(c, "al", "m1");
	harness_put(c, "al", "m2");
	ck_assert_int_eq(mbint(c, "al", "queued"), 2);

	fd = harness_raw_connect(&h);
	harness_raw_hello(fd);
	raw_bind(fd, 2, "al", strlen("al"), PROTO_BIND_EXCLUSIVE);
	ck_assert_uint_eq(raw_status(fd, 2), PROTO_OK);
	raw_recv(fd, 3, "al", strlen("al"), 0, 1024);
	raw_msg(fd, 3, "m1", &flags);
	ck_assert_uint_eq(flags & PROTO_MSG_SYNC, 0);
	/* Delivered, not acknowledged: still held. */
	ck_assert_int_eq(mbint(c, "al", "queued"), 2);
	ck_assert_int_eq(mbint(c, "al", "received"), 0);
	close(fd);
	ck_assert(harness_wait_mailbox_int(c, "al", "receiver", 0));

	ASSERT_OK(mbx_bind(c, "al", MBX_BIND_EXCLUSIVE));
	expect(c, "al", 0, "m1", NULL);
	expect(c, "al", 0, "m2", NULL);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * A sync send withdrawn while its message is in the receiver's hands: the
 * receiver's acknowledgement is answered STALE, and the message is gone.
 */
START_TEST(test_sync_stale)
{
	struct harness h;
	struct proto_writer b;
	uint32_t flags;
	uint64_t msg_id;
	int64_t t0;
	mbx_t *c;
	int fd;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create(c, "st", 4, 0);
	fd = harness_raw_connect(&h);
	harness_raw_hello(fd);
	raw_bind(fd, 2, "st", strlen("st"), PROTO_BIND_EXCLUSIVE);
	ck_assert_uint_eq(raw_status(fd, 2), PROTO_OK);
	raw_recv(fd, 3, "st", strlen("st"), -1, 1024);

	/* Delivered at once or when the receive arrives: never acked. */
	t0 = harness_now_ms();
	ASSERT_ERR(mbx_send(c, "st", "stale", 5, MBX_SYNC, 200), ETIMEDOUT);
	assert_elapsed(t0, 200);
	msg_id = raw_msg(fd, 3, "stale", &flags);
	ck_assert_msg(flags & PROTO_MSG_SYNC, "MSG of a sync send lacks "
	    "PROTO_MSG_SYNC");
	proto_writer_init(&b);
	proto_put_u64(&b, msg_id);
	raw_frame(fd, PROTO_ACK, 4, PROTO_ACK_REPLY, 0, &b);
	proto_writer_free(&b);
	ck_assert_uint_eq(raw_status(fd, 4), PROTO_STALE);

	/* Withdrawn: nothing held, nothing received, nothing to receive. */
	ck_assert_int_eq(mbint(c, "st", "queued"), 0);
	ck_assert_int_eq(mbint(c, "st", "received"), 0);
	raw_recv(fd, 5, "st", strlen("st"), 0, 1024);
	ck_assert_uint_eq(raw_status(fd, 5), PROTO_EAGAIN);
	close(fd);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* A waiting receive whose buffer is too small: EMSGSIZE, message stays. */
static int
child_small_recv(const struct harness *h, void *arg)
{
	mbx_t *c = mbx_open(h->sock);
	char buf[64];
	ssize_t n;

	(void)arg;
	CHILD_REQUIRE(c != NULL);
	CHILD_REQUIRE(mbx_bind(c, "pe", MBX_BIND_EXCLUSIVE) == 0);
	harness_report(mbx_id(c));
	n = mbx_recv(c, "pe", buf, 4, NULL, -1);
	CHILD_REQUIRE(n == -1 && errno == EMSGSIZE);
	n = mbx_recv(c, "pe", buf, sizeof(buf), NULL, 0);
	CHILD_REQUIRE(n == 8 && memcmp(buf, "too long", 8) == 0);
	mbx_close(c);
	return 0;
}

START_TEST(test_recv_parked_emsgsize)
{
	struct harness h;
	struct harness_child ch;
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create(c, "pe", 4, 0);
	harness_child_start(&ch, &h, child_small_recv, NULL);
	ck_assert_int_gt(harness_child_read(&ch), 0);
	harness_wait_blocked(c, &ch);
	ck_assert_msg(harness_child_running(&ch), "the receive did not wait");
	harness_put(c, "pe", "too long");
	join_ok(&ch);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * Binding
 */

START_TEST(test_bind_exclusive)
{
	struct harness h;
	mbx_t *c1, *c2;

	harness_start(&h, NULL);
	c1 = harness_open(&h);
	c2 = harness_open(&h);
	create(c1, "x", 4, 0);
	ASSERT_OK(mbx_bind(c1, "x", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_bind(c1, "x", MBX_BIND_EXCLUSIVE));
	ASSERT_ERR(mbx_bind(c2, "x", MBX_BIND_EXCLUSIVE), EBUSY);
	ck_assert_int_eq(mbint(c1, "x", "receiver"), mbx_id(c1));
	assert_standby(c1, "x", "");
	ASSERT_OK(mbx_unbind(c1, "x"));
	ck_assert_int_eq(mbint(c1, "x", "receiver"), 0);
	ASSERT_OK(mbx_bind(c2, "x", MBX_BIND_EXCLUSIVE));
	ck_assert_int_eq(mbint(c1, "x", "receiver"), mbx_id(c2));
	mbx_close(c2);
	mbx_close(c1);
	harness_stop(&h);
}
END_TEST

/* Replace takes the binding; the old receiver's waiting recv gets EPERM. */
START_TEST(test_bind_replace)
{
	struct op op = { "rp", MBX_BIND_EXCLUSIVE, "", 0, -1, EPERM, EPERM };
	struct harness h;
	struct harness_child ch;
	mbx_t *c, *c2;
	long old;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create(c, "rp", 4, 0);
	old = start_blocked(&ch, &h, c, child_recv, &op);
	ck_assert_int_eq(mbint(c, "rp", "receiver"), old);
	ASSERT_OK(mbx_bind(c, "rp", MBX_BIND_REPLACE));
	ck_assert_int_eq(mbint(c, "rp", "receiver"), mbx_id(c));
	join_ok(&ch);
	harness_put(c, "rp", "mine");
	expect(c, "rp", 0, "mine", NULL);

	/* And an old receiver that was not waiting. */
	c2 = harness_open(&h);
	ASSERT_OK(mbx_bind(c2, "rp", MBX_BIND_REPLACE));
	ASSERT_ERR(try_recv(c, "rp", 0), EPERM);
	ASSERT_ERR(mbx_bind(c, "rp", MBX_BIND_EXCLUSIVE), EBUSY);
	mbx_close(c2);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

START_TEST(test_bind_queue_unbind)
{
	struct harness h;
	mbx_t *c1, *c2, *c3;
	char ids[64];

	harness_start(&h, NULL);
	c1 = harness_open(&h);
	c2 = harness_open(&h);
	c3 = harness_open(&h);
	create(c1, "q", 4, 0);
	/* Free: queue binds at once. */
	ASSERT_OK(mbx_bind(c1, "q", MBX_BIND_QUEUE));
	ck_assert_int_eq(mbint(c1, "q", "receiver"), mbx_id(c1));
	ASSERT_OK(mbx_bind(c2, "q", MBX_BIND_QUEUE));
	ASSERT_OK(mbx_bind(c3, "q", MBX_BIND_QUEUE));
	ck_assert_int_eq(mbint(c1, "q", "receiver"), mbx_id(c1));
	assert_standby(c1, "q", idlist(ids, sizeof(ids), mbx_id(c2),
	    mbx_id(c3)));
	harness_put(c1, "q", "m");

	/* FIFO promotion. */
	ASSERT_OK(mbx_unbind(c1, "q"));
	ck_assert_int_eq(mbint(c1, "q", "receiver"), mbx_id(c2));
	assert_standby(c1, "q", idlist(ids, sizeof(ids), mbx_id(c3), 0));
	ASSERT_ERR(try_recv(c1, "q", 0), EPERM);
	expect(c2, "q", 0, "m", NULL);
	ASSERT_OK(mbx_unbind(c2, "q"));
	ck_assert_int_eq(mbint(c1, "q", "receiver"), mbx_id(c3));
	assert_standby(c1, "q", "");
	ASSERT_OK(mbx_unbind(c3, "q"));
	ck_assert_int_eq(mbint(c1, "q", "receiver"), 0);

	/* A standby may give up its place. */
	ASSERT_OK(mbx_bind(c1, "q", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_bind(c2, "q", MBX_BIND_QUEUE));
	assert_standby(c1, "q", idlist(ids, sizeof(ids), mbx_id(c2), 0));
	ASSERT_OK(mbx_unbind(c2, "q"));
	assert_standby(c1, "q", "");
	ck_assert_int_eq(mbint(c1, "q", "receiver"), mbx_id(c1));
	mbx_close(c3);
	mbx_close(c2);
	mbx_close(c1);
	harness_stop(&h);
}
END_TEST

START_TEST(test_bind_queue_disconnect)
{
	struct harness h;
	mbx_t *c1, *c2, *c3, *c4;
	long id1, id2, id3;
	char ids[64];

	harness_start(&h, NULL);
	c1 = harness_open(&h);
	c2 = harness_open(&h);
	c3 = harness_open(&h);
	c4 = harness_open(&h);
	id1 = mbx_id(c1);
	id2 = mbx_id(c2);
	id3 = mbx_id(c3);
	create(c3, "q", 4, 0);
	ASSERT_OK(mbx_bind(c1, "q", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_bind(c2, "q", MBX_BIND_QUEUE));
	ASSERT_OK(mbx_bind(c4, "q", MBX_BIND_QUEUE));
	ASSERT_OK(mbx_bind(c3, "q", MBX_BIND_QUEUE));
	harness_put(c3, "q", "waiting");
	/* A standby that disconnects leaves the line. */
	mbx_close(c4);
	ck_assert(harness_wait_standby(c3, "q", idlist(ids, sizeof(ids), id2,
	    id3)));
	mbx_close(c1);
	ck_assert_msg(harness_wait_mailbox_int(c3, "q", "receiver", id2),
	    "standby %ld not promoted when receiver %ld disconnected", id2,
	    id1);
	assert_standby(c3, "q", idlist(ids, sizeof(ids), id3, 0));
	expect(c2, "q", 0, "waiting", NULL);
	mbx_close(c2);
	ck_assert(harness_wait_mailbox_int(c3, "q", "receiver", id3));
	assert_standby(c3, "q", "");
	mbx_close(c3);
	harness_stop(&h);
}
END_TEST

/* A standby's recv: EPERM without waiting, else it waits for promotion. */
START_TEST(test_standby_recv)
{
	struct op op = { "sb", MBX_BIND_QUEUE, "promoted", 0, -1, 0, 0 };
	struct harness h;
	struct harness_child ch;
	mbx_t *c1, *c2;
	int64_t t0;
	long sid;
	char ids[64];

	harness_start(&h, NULL);
	c1 = harness_open(&h);
	c2 = harness_open(&h);
	create(c1, "sb", 4, 0);
	ASSERT_OK(mbx_bind(c1, "sb", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_bind(c2, "sb", MBX_BIND_QUEUE));
	harness_put(c1, "sb", "promoted");
	ASSERT_ERR(try_recv(c2, "sb", 0), EPERM);
	t0 = harness_now_ms();
	ASSERT_ERR(try_recv(c2, "sb", 150), ETIMEDOUT);
	assert_elapsed(t0, 150);
	/* Still standing by, and the message is still there. */
	assert_standby(c1, "sb", idlist(ids, sizeof(ids), mbx_id(c2), 0));
	ck_assert_int_eq(mbint(c1, "sb", "queued"), 1);
	ASSERT_OK(mbx_unbind(c2, "sb"));

	sid = start_blocked(&ch, &h, c1, child_recv, &op);
	assert_standby(c1, "sb", idlist(ids, sizeof(ids), sid, 0));
	ASSERT_OK(mbx_unbind(c1, "sb"));
	join_ok(&ch);
	mbx_close(c2);
	mbx_close(c1);
	harness_stop(&h);
}
END_TEST

START_TEST(test_recv_not_bound)
{
	struct harness h;
	char buf[16];
	mbx_t *c1, *c2;

	harness_start(&h, NULL);
	c1 = harness_open(&h);
	c2 = harness_open(&h);
	create(c1, "nb", 4, 0);
	harness_put(c1, "nb", "x");
	ASSERT_ERR(mbx_recv(c2, "nb", buf, sizeof(buf), NULL, 0), EPERM);
	ASSERT_ERR(mbx_recv(c2, "nb", buf, sizeof(buf), NULL, 1000), EPERM);
	ASSERT_OK(mbx_bind(c1, "nb", MBX_BIND_EXCLUSIVE));
	ASSERT_ERR(mbx_recv(c2, "nb", buf, sizeof(buf), NULL, 0), EPERM);
	ck_assert_int_eq(mbint(c1, "nb", "queued"), 1);
	/* Neither bound nor standing by: nothing to give up or evict. */
	ASSERT_ERR(mbx_unbind(c2, "nb"), EPERM);
	ASSERT_OK(mbx_unbind(c1, "nb"));
	ASSERT_ERR(mbx_evict(c2, "nb"), EPERM);
	mbx_close(c2);
	mbx_close(c1);
	harness_stop(&h);
}
END_TEST

/* Rebind moves the binding to a named standby; messages stay in order. */
START_TEST(test_rebind)
{
	struct harness h;
	mbx_t *c1, *c2, *c3, *admin;
	char ids[64];

	harness_start(&h, NULL);
	c1 = harness_open(&h);
	c2 = harness_open(&h);
	c3 = harness_open(&h);
	admin = harness_open(&h);
	create(admin, "rb", 8, 0);
	ASSERT_OK(mbx_bind(c1, "rb", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_bind(c2, "rb", MBX_BIND_QUEUE));
	ASSERT_OK(mbx_bind(c3, "rb", MBX_BIND_QUEUE));
	harness_put(admin, "rb", "m1");
	harness_put(admin, "rb", "m2");
	harness_put(admin, "rb", "m3");
	harness_put(admin, "rb", "m4");
	ck_assert_int_eq(mbint(admin, "rb", "queued"), 4);
	expect(c1, "rb", 0, "m1", NULL);

	/* Not the first standby: rebind names whom it wants. */
	ASSERT_OK(mbx_rebind(admin, "rb", mbx_id(c3)));
	ck_assert_int_eq(mbint(admin, "rb", "receiver"), mbx_id(c3));
	assert_standby(admin, "rb", idlist(ids, sizeof(ids), mbx_id(c2), 0));
	ASSERT_ERR(try_recv(c1, "rb", 0), EPERM);
	expect(c3, "rb", 0, "m2", NULL);
	expect(c3, "rb", 0, "m3", NULL);
	expect(c3, "rb", 0, "m4", NULL);

	/* The previous receiver is still connected and may stand by. */
	ASSERT_OK(mbx_bind(c1, "rb", MBX_BIND_QUEUE));
	assert_standby(admin, "rb", idlist(ids, sizeof(ids), mbx_id(c2),
	    mbx_id(c1)));
	mbx_close(admin);
	mbx_close(c3);
	mbx_close(c2);
	mbx_close(c1);
	harness_stop(&h);
}
END_TEST

/* A rebind wakes the standby's waiting receive with the queued message. */
START_TEST(test_rebind_wakes_standby)
{
	struct op op = { "rw", MBX_BIND_QUEUE, "queued-1", 0, -1, 0, 0 };
	struct harness h;
	struct harness_child ch;
	mbx_t *c;
	long sid;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create(c, "rw", 8, 0);
	ASSERT_OK(mbx_bind(c, "rw", MBX_BIND_EXCLUSIVE));
	harness_put(c, "rw", "queued-1");
	harness_put(c, "rw", "queued-2");
	sid = start_blocked(&ch, &h, c, child_recv, &op);
	ASSERT_OK(mbx_rebind(c, "rw", sid));
	join_ok(&ch);
	/* The helper took one; the other waits for the next receiver. */
	ck_assert(harness_wait_mailbox_int(c, "rw", "receiver", 0));
	ck_assert_int_eq(mbint(c, "rw", "queued"), 1);
	ASSERT_OK(mbx_bind(c, "rw", MBX_BIND_EXCLUSIVE));
	expect(c, "rw", 0, "queued-2", NULL);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * Rebind with both waiting: the old receiver's receive fails EPERM, the
 * new receiver's receive gets what is sent next.
 */
START_TEST(test_rebind_waiters)
{
	struct op oldop = { "rx", MBX_BIND_EXCLUSIVE, "", 0, -1, EPERM, 0 };
	struct op newop = { "rx", MBX_BIND_QUEUE, "next", 0, -1, 0, 0 };
	struct harness h;
	struct harness_child och, nch;
	mbx_t *c;
	long oid, nid;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create(c, "rx", 8, 0);
	oid = start_blocked(&och, &h, c, child_recv, &oldop);
	nid = start_blocked(&nch, &h, c, child_recv, &newop);
	ck_assert_int_eq(mbint(c, "rx", "receiver"), oid);
	ASSERT_OK(mbx_rebind(c, "rx", nid));
	ck_assert_int_eq(mbint(c, "rx", "receiver"), nid);
	join_ok(&och);
	harness_put(c, "rx", "next");
	join_ok(&nch);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

START_TEST(test_rebind_esrch)
{
	struct harness h;
	mbx_t *c1, *c2;

	harness_start(&h, NULL);
	c1 = harness_open(&h);
	c2 = harness_open(&h);
	create(c1, "rs", 4, 0);
	create(c1, "other", 4, 0);
	ASSERT_OK(mbx_bind(c1, "rs", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_bind(c2, "other", MBX_BIND_QUEUE));
	ASSERT_OK(mbx_bind(c1, "other", MBX_BIND_QUEUE));
	/* c2 is connected, but not standing by on rs. */
	ASSERT_ERR(mbx_rebind(c1, "rs", mbx_id(c2)), ESRCH);
	ASSERT_ERR(mbx_rebind(c1, "rs", 999999), ESRCH);
	ck_assert_int_eq(mbint(c1, "rs", "receiver"), mbx_id(c1));
	mbx_close(c2);
	mbx_close(c1);
	harness_stop(&h);
}
END_TEST

/*
 * A receive that returned before an operator's rebind stays received,
 * even when the daemon has not read its ACK yet (mbx(7), guarantee 4).
 * The daemon is stopped while the receiver's ACK and then the REBIND are
 * written, and the operator's socket was made readable first, so that
 * the daemon reads the REBIND before the ACK: it must read the ACK before
 * it takes the binding away, or it puts the message back and hands it to
 * the new receiver too.
 */
START_TEST(test_rebind_after_ack)
{
	struct harness h;
	struct proto_writer b;
	mbx_t *adm, *r, *s;
	int fd, i;

	harness_start(&h, NULL);
	adm = harness_open(&h);
	r = harness_open(&h);
	s = harness_open(&h);
	create(adm, "ra", 8, 0);
	/* Whatever MBX_PREFETCH says: m2 must be held, not asked for. */
	ASSERT_OK(mbx_setopt(r, MBX_OPT_PREFETCH, 64));
	ASSERT_OK(mbx_bind(r, "ra", MBX_BIND_QUEUE));
	ASSERT_OK(mbx_bind(s, "ra", MBX_BIND_QUEUE));
	harness_put(adm, "ra", "m1");
	harness_put(adm, "ra", "m2");
	/* One round trip hands r both; it holds m2 ahead of its calls. */
	expect(r, "ra", 0, "m1", NULL);
	ck_assert(harness_wait_mailbox_int(adm, "ra", "queued", 1));
	fd = harness_raw_connect(&h);
	ck_assert_int_gt(harness_raw_hello(fd), 0);

	ck_assert_int_eq(kill(h.pid, SIGSTOP), 0);
	for (i = 0; i < 10000 && proc_state(h.pid) != 'T'; i++)
		poll(NULL, 0, 1);
	ck_assert_int_eq(proc_state(h.pid), 'T');
	proto_writer_init(&b);
	raw_frame(fd, PROTO_LIST, 2, 0, 0, &b);
	/* Returns m2 with no round trip, its ACK written. */
	expect(r, "ra", 0, "m2", NULL);
	proto_put_str(&b, "ra", 2);
	proto_put_u64(&b, (uint64_t)mbx_id(s));
	raw_frame(fd, PROTO_REBIND, 3, 0, 0, &b);
	proto_writer_free(&b);
	ck_assert_int_eq(kill(h.pid, SIGCONT), 0);

	ck_assert_uint_eq(raw_status(fd, 2), PROTO_OK);
	ck_assert_uint_eq(raw_status(fd, 3), PROTO_OK);
	ck_assert_int_eq(mbint(adm, "ra", "receiver"), mbx_id(s));
	ck_assert_int_eq(mbint(adm, "ra", "received"), 2);
	ck_assert_int_eq(mbint(adm, "ra", "queued"), 0);
	ASSERT_ERR(try_recv(s, "ra", 0), EAGAIN);
	close(fd);
	mbx_close(s);
	mbx_close(r);
	mbx_close(adm);
	harness_stop(&h);
}
END_TEST

START_TEST(test_evict)
{
	struct harness h;
	mbx_t *c1, *c2, *admin;

	harness_start(&h, NULL);
	c1 = harness_open(&h);
	c2 = harness_open(&h);
	admin = harness_open(&h);
	create(admin, "ev", 4, 0);
	ASSERT_OK(mbx_bind(c1, "ev", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_bind(c2, "ev", MBX_BIND_QUEUE));
	harness_put(admin, "ev", "for c2");
	ASSERT_OK(mbx_evict(admin, "ev"));
	ck_assert_int_eq(mbint(admin, "ev", "receiver"), mbx_id(c2));
	assert_standby(admin, "ev", "");
	ASSERT_ERR(try_recv(c1, "ev", 0), EPERM);
	expect(c2, "ev", 0, "for c2", NULL);
	ASSERT_OK(mbx_evict(admin, "ev"));
	ck_assert_int_eq(mbint(admin, "ev", "receiver"), 0);
	ASSERT_ERR(mbx_evict(admin, "ev"), EPERM);
	mbx_close(admin);
	mbx_close(c2);
	mbx_close(c1);
	harness_stop(&h);
}
END_TEST

/*
 * Receive-any and direct addresses
 */

START_TEST(test_recv_any)
{
	static const struct {
		const char *to, *data;
	} sends[] = { { "A", "1" }, { "B", "2" }, { NULL, "3" },
	    { "A", "4" }, { "B", "5" } };
	struct harness h;
	mbx_t *r, *s;
	char self[32], buf[16];

	harness_start(&h, NULL);
	r = harness_open(&h);
	s = harness_open(&h);
	direct_name(self, sizeof(self), mbx_id(r));
	create(r, "A", 8, 0);
	create(r, "B", 8, 0);
	create(r, "C", 8, 0);
	ASSERT_OK(mbx_bind(r, "A", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_bind(r, "B", MBX_BIND_EXCLUSIVE));
	harness_put(s, "C", "not mine");
	for (size_t i = 0; i < sizeof(sends) / sizeof(sends[0]); i++)
		harness_put(s, sends[i].to ? sends[i].to : self, sends[i].data);
	ck_assert_int_eq(mbint(s, "C", "queued"), 1);
	for (size_t i = 0; i < sizeof(sends) / sizeof(sends[0]); i++) {
		struct mbx_meta m;

		expect(r, NULL, 0, sends[i].data, &m);
		ck_assert_str_eq(m.mailbox, sends[i].to ? sends[i].to : self);
		ck_assert_int_eq(m.sender_id, mbx_id(s));
		ck_assert_int_eq(m.pid, getpid());
		ck_assert_int_eq(m.uid, getuid());
	}
	ASSERT_ERR(mbx_recv(r, NULL, buf, sizeof(buf), NULL, 0), EAGAIN);
	ck_assert_int_eq(mbint(r, "C", "queued"), 1);
	mbx_close(s);
	mbx_close(r);
	harness_stop(&h);
}
END_TEST

/* A server answers with one send to "@<sender_id>". */
static int
child_server(const struct harness *h, void *arg)
{
	mbx_t *c = mbx_open(h->sock);
	struct mbx_meta m;
	char buf[64], to[32];
	ssize_t n;

	(void)arg;
	CHILD_REQUIRE(c != NULL);
	CHILD_REQUIRE(mbx_bind(c, "svc", MBX_BIND_EXCLUSIVE) == 0);
	harness_report(mbx_id(c));
	n = mbx_recv(c, "svc", buf, sizeof(buf), &m, -1);
	CHILD_REQUIRE(n == 4 && memcmp(buf, "ping", 4) == 0);
	CHILD_REQUIRE(strcmp(m.mailbox, "svc") == 0);
	CHILD_REQUIRE(m.pid == getppid());
	CHILD_REQUIRE(m.uid == getuid());
	snprintf(to, sizeof(to), "@%ld", m.sender_id);
	CHILD_REQUIRE(mbx_send(c, to, "pong", 4, 0, 0) == 0);
	mbx_close(c);
	return 0;
}

START_TEST(test_direct_reply)
{
	struct harness h;
	struct harness_child ch;
	struct mbx_meta m;
	mbx_t *c;
	char self[32];
	long sid;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create(c, "svc", 4, 0);
	harness_child_start(&ch, &h, child_server, NULL);
	sid = harness_child_read(&ch);
	harness_put(c, "svc", "ping");
	/* No binding needed to receive from one's own address. */
	expect(c, NULL, 5000, "pong", &m);
	direct_name(self, sizeof(self), mbx_id(c));
	ck_assert_str_eq(m.mailbox, self);
	ck_assert_int_eq(m.sender_id, sid);
	ck_assert_int_eq(m.pid, ch.pid);
	ck_assert_int_eq(m.uid, getuid());
	join_ok(&ch);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

START_TEST(test_direct_owner_only)
{
	struct harness h;
	mbx_t *c1, *c2;
	char to1[32], buf[16];

	harness_start(&h, NULL);
	c1 = harness_open(&h);
	c2 = harness_open(&h);
	direct_name(to1, sizeof(to1), mbx_id(c1));
	ASSERT_ERR(mbx_recv(c1, to1, buf, sizeof(buf), NULL, 0), EAGAIN);
	harness_put(c2, to1, "secret");
	ASSERT_ERR(mbx_recv(c2, to1, buf, sizeof(buf), NULL, 0), EPERM);
	ASSERT_ERR(mbx_recv(c2, to1, buf, sizeof(buf), NULL, 500), EPERM);
	ASSERT_ERR(mbx_bind(c2, to1, MBX_BIND_REPLACE), EINVAL);
	ASSERT_ERR(mbx_recv(c2, NULL, buf, sizeof(buf), NULL, 0), EAGAIN);
	expect(c1, to1, 0, "secret", NULL);
	mbx_close(c2);
	mbx_close(c1);
	harness_stop(&h);
}
END_TEST

/* A direct address vanishes with its connection. */
START_TEST(test_direct_vanishes)
{
	struct harness h;
	mbx_t *c1, *c2;
	char to2[32];
	long id2;

	harness_start(&h, NULL);
	c1 = harness_open(&h);
	c2 = harness_open(&h);
	id2 = mbx_id(c2);
	direct_name(to2, sizeof(to2), id2);
	harness_put(c1, to2, "hello");
	mbx_close(c2);
	ck_assert(harness_wait_client_gone(c1, id2));
	ASSERT_ERR(mbx_send(c1, to2, "gone", 4, 0, 0), ENOENT);
	ASSERT_ERR(mbx_send(c1, "@999999999", "x", 1, 0, 0), ENOENT);
	mbx_close(c1);
	harness_stop(&h);
}
END_TEST

/*
 * Lifecycle: destroy, shutdown, start-up
 */

START_TEST(test_destroy_wakes)
{
	struct op ops[] = {
		{ "d1", MBX_BIND_EXCLUSIVE, "", 0, -1, EIDRM, 0 },
		{ "d1", MBX_BIND_QUEUE, "", 0, 60000, EIDRM, 0 },
		{ "d2", NOBIND, "blocked", 0, -1, EIDRM, 0 },
		{ "d3", NOBIND, "sync", MBX_SYNC, -1, EIDRM, 0 },
	};
	harness_child_fn fns[] = { child_recv, child_recv, child_send,
	    child_send };
	enum { N = sizeof(ops) / sizeof(ops[0]) };
	struct harness h;
	struct harness_child ch[N];
	json_t *all;
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create(c, "d1", 4, 0);
	create(c, "d2", 1, 0);
	create(c, "d3", 4, 0);
	harness_put(c, "d2", "full");
	for (int i = 0; i < N; i++)
		start_blocked(&ch[i], &h, c, fns[i], &ops[i]);
	ASSERT_OK(mbx_destroy(c, "d1"));
	ASSERT_OK(mbx_destroy(c, "d2"));
	ASSERT_OK(mbx_destroy(c, "d3"));
	for (int i = 0; i < N; i++)
		join_ok(&ch[i]);
	all = harness_list(c);
	ck_assert_uint_eq(json_array_size(all), 0);
	json_decref(all);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * SIGTERM: waiting clients get ECONNRESET within 1 s (and stay broken),
 * the daemon exits 0 and removes its socket.
 */
START_TEST(test_sigterm_wakes)
{
	struct op rop = { "t", MBX_BIND_EXCLUSIVE, "", 0, -1, ECONNRESET,
	    ECONNRESET };
	struct op sop = { "full", NOBIND, "x", 0, -1, ECONNRESET,
	    ECONNRESET };
	struct harness h;
	struct harness_child rch, sch;
	char *json;
	int64_t t0;
	long woke;
	mbx_t *c;
	int st;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create(c, "t", 4, 0);
	create(c, "full", 1, 0);
	harness_put(c, "full", "x");
	start_blocked(&rch, &h, c, child_recv, &rop);
	start_blocked(&sch, &h, c, child_send, &sop);
	t0 = harness_now_ms();
	st = harness_terminate(&h);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "mbxd after SIGTERM: wait status %#x", st);
	woke = harness_child_read(&rch) - t0;
	ck_assert_msg(woke <= bound_ms(1000), "a receiver woke %ld ms after "
	    "SIGTERM", woke);
	woke = harness_child_read(&sch) - t0;
	ck_assert_msg(woke <= bound_ms(1000), "a sender woke %ld ms after "
	    "SIGTERM", woke);
	join_ok(&rch);
	join_ok(&sch);
	ck_assert_msg(access(h.sock, F_OK) == -1 && errno == ENOENT,
	    "mbxd left its socket %s behind", h.sock);
	ASSERT_ERR(mbx_list(c, &json), ECONNRESET);
	ASSERT_ERR(mbx_send(c, "t", "x", 1, 0, 0), ECONNRESET);
	mbx_close(c);
	harness_cleanup(&h);
}
END_TEST

START_TEST(test_sigint_exits)
{
	struct harness h;
	mbx_t *c;
	int st;

	harness_start(&h, NULL);
	c = harness_open(&h);
	st = harness_kill(&h, SIGINT);
	ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "mbxd after SIGINT: wait status %#x", st);
	ck_assert(access(h.sock, F_OK) == -1 && errno == ENOENT);
	/* The connection broke when the daemon went. */
	ASSERT_ERR(try_recv(c, NULL, -1), ECONNRESET);
	mbx_close(c);
	harness_cleanup(&h);
}
END_TEST

/* A second daemon on a live socket refuses to start. */
START_TEST(test_second_daemon)
{
	struct harness h;
	mbx_t *c, *c2;
	int st;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create(c, "keep", 4, 0);
	harness_put(c, "keep", "kept");
	st = harness_run_mbxd(&h, NULL);
	ck_assert_msg(st != -1, "a second mbxd on a live socket kept running");
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 0,
	    "a second mbxd on a live socket: wait status %#x", st);
	/* The first one still serves, old connections and new. */
	ck_assert_int_eq(mbint(c, "keep", "queued"), 1);
	c2 = harness_open(&h);
	ASSERT_OK(mbx_bind(c2, "keep", MBX_BIND_EXCLUSIVE));
	expect(c2, "keep", 0, "kept", NULL);
	mbx_close(c2);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* A stale socket file (nobody listening) is replaced. */
START_TEST(test_stale_socket)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct harness h;
	mbx_t *c;
	int fd;

	harness_init(&h);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", h.sock);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	ck_assert_int_eq(access(h.sock, F_OK), 0);
	errno = 0;
	ck_assert_ptr_null(mbx_open(h.sock));
	ck_assert_int_eq(errno, ECONNREFUSED);

	harness_launch(&h, NULL);
	c = harness_open(&h);
	ASSERT_OK(mbx_create(c, "works", NULL));
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

static TCase *
tcase(const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, harness_tcase_timeout());
	return tc;
}

Suite *
e2e_suite(void)
{
	Suite *s = suite_create("e2e");
	TCase *tc;

	tc = tcase("session");
	tcase_add_test(tc, test_open_ids);
	tcase_add_test(tc, test_handshake_version);
	tcase_add_test(tc, test_malformed_frame);
	tcase_add_test(tc, test_list_json);
	tcase_add_test(tc, test_clients_json);
	suite_add_tcase(s, tc);

	tc = tcase("names");
	tcase_add_test(tc, test_create_destroy);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_attrs);
	tcase_add_test(tc, test_enoent);
	suite_add_tcase(s, tc);

	tc = tcase("send");
	tcase_add_test(tc, test_rendezvous_nowait);
	tcase_add_test(tc, test_rendezvous_blocking);
	tcase_add_test(tc, test_send_meets_waiting_receiver);
	tcase_add_test(tc, test_bounded_full);
	tcase_add_test(tc, test_bounded_blocking);
	tcase_add_test(tc, test_unbounded_enobufs);
	tcase_add_test(tc, test_send_emsgsize);
	tcase_add_test(tc, test_fifo);
	tcase_add_test(tc, test_many_senders);
	suite_add_tcase(s, tc);

	tc = tcase("recv");
	tcase_add_test(tc, test_recv_small_buffer);
	tcase_add_test(tc, test_recv_nonblocking_timed);
	tcase_add_test(tc, test_recv_blocking);
	tcase_add_test(tc, test_sync_send);
	tcase_add_test(tc, test_sync_withdrawn);
	tcase_add_test(tc, test_unacked_returns);
	tcase_add_test(tc, test_sync_stale);
	tcase_add_test(tc, test_recv_parked_emsgsize);
	suite_add_tcase(s, tc);

	tc = tcase("bind");
	tcase_add_test(tc, test_bind_exclusive);
	tcase_add_test(tc, test_bind_replace);
	tcase_add_test(tc, test_bind_queue_unbind);
	tcase_add_test(tc, test_bind_queue_disconnect);
	tcase_add_test(tc, test_standby_recv);
	tcase_add_test(tc, test_recv_not_bound);
	tcase_add_test(tc, test_rebind);
	tcase_add_test(tc, test_rebind_wakes_standby);
	tcase_add_test(tc, test_rebind_waiters);
	tcase_add_test(tc, test_rebind_esrch);
	tcase_add_test(tc, test_rebind_after_ack);
	tcase_add_test(tc, test_evict);
	suite_add_tcase(s, tc);

	tc = tcase("direct");
	tcase_add_test(tc, test_recv_any);
	tcase_add_test(tc, test_direct_reply);
	tcase_add_test(tc, test_direct_owner_only);
	tcase_add_test(tc, test_direct_vanishes);
	suite_add_tcase(s, tc);

	tc = tcase("lifecycle");
	tcase_add_test(tc, test_destroy_wakes);
	tcase_add_test(tc, test_sigterm_wakes);
	tcase_add_test(tc, test_sigint_exits);
	tcase_add_test(tc, test_second_daemon);
	tcase_add_test(tc, test_stale_socket);
	suite_add_tcase(s, tc);
	return s;
}
