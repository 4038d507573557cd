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
#include "raw.h"
#include "suites.h"
#include "users.h"

#define MiB	(1024u * 1024)

/*
 * A daemon whose stderr (and -v log) goes to dir/mbxd.log: the harness
 * gives the daemon the test's stderr, so it is swapped for the launch.
 */
static void
start_logged(struct harness *h, const char *config, char *log, size_t size)
{
	int saved, fd;

	harness_init(h);
	snprintf(log, size, "%s/mbxd.log", h->dir);
	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_msg(fd >= 0, "%s: %s", log, strerror(errno));
	fflush(stderr);
	saved = dup(2);
	ck_assert(saved >= 0 && dup2(fd, 2) == 2);
	close(fd);
	if (config != NULL) {
		char path[HARNESS_PATH_MAX];
		FILE *f;
		const char *extra[] = { "-v", "-c", path, NULL };

		snprintf(path, sizeof(path), "%s/mbxd.json", h->dir);
		f = fopen(path, "w");
		ck_assert(f != NULL && fputs(config, f) >= 0 && fclose(f) == 0);
		harness_launch(h, extra);
	} else {
		const char *extra[] = { "-v", NULL };

		harness_launch(h, extra);
	}
	ck_assert(dup2(saved, 2) == 2);
	close(saved);
}

/*
 * Where text that may hold a hostile byte goes: no control character but
 * line ends (no escape, no NUL, no CR, no DEL), no C1 control and valid
 * UTF-8 throughout.  Returns the offset of the first bad byte, or -1.
 */
static long
first_raw_byte(const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c == '\n')
			continue;
		if (c < 0x20 || c == 0x7f)
			return (long)i;
		if (c < 0x80)
			continue;
		n = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 ? 1 : 0;
		if (n == 0 || c > 0xf4 || i + n >= len)
			return (long)i;
		cp = c & (0x3f >> n);
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return (long)i;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
		    (cp >= 0x80 && cp < 0xa0))
			return (long)i;
		i += n;
	}
	return -1;
}

static void
assert_clean(const char *what, const char *text, size_t len)
{
	long bad = first_raw_byte(text, len);

	ck_assert_msg(bad < 0, "%s holds a raw byte %#x at offset %ld: "
	    "\"%.*s\"", what, bad < 0 ? 0 : (unsigned char)text[bad], bad,
	    (int)(len < 2000 ? len : 2000), text);
}

/*
 * harness_stop(), with a look at the log in between: all of it is clean,
 * and it holds at least one line (-v logs every connection).
 */
static void
stop_clean_log(struct harness *h, const char *log)
{
	int st = harness_terminate(h);
	size_t len;
	char *text;

	ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "mbxd did not exit cleanly after SIGTERM: %#x", st);
	text = harness_read_file(log, &len);
	ck_assert_msg(strstr(text, "connected") != NULL, "mbxd's log: %s",
	    text);
	assert_clean("mbxd's log", text, len);
	free(text);
	harness_cleanup(h);
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

	/*
	 * A batch over the share: the prefix that fits is sent (libmbx's
	 * frames hold 256 KiB, so each of these goes alone), the rest is
	 * ENOBUFS for the next call, and the connection serves on.  A batch
	 * whose first message is over the share sends nothing.
	 */
	{
		struct mbx_smsg v[2] = {
			{ "charge", big, 3 * MiB / 2 },
			{ "charge", big, 3 * MiB / 2 },
		};
		struct mbx_smsg w[2] = {
			{ "charge", big, 3 * MiB },
			{ "charge", "x", 1 },
		};

		ck_assert_int_eq(mbx_sendv(o, v, 2, 0), 1);
		errno = 0;
		ck_assert_int_eq(mbx_sendv(o, v + 1, 1, 0), -1);
		ck_assert_int_eq(errno, ENOBUFS);
		errno = 0;
		ck_assert_int_eq(mbx_sendv(o, w, 2, 0), -1);
		ck_assert_int_eq(errno, ENOBUFS);
		ck_assert_int_eq(mbx_recv(root, "charge", got, 3 * MiB, &meta,
		    0), 3 * MiB / 2);
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
 * A post on credit is charged once too: its grant's room is already
 * counted against the user's share, so a large post that the grant
 * covers goes through even when the share has no room for the frame
 * again.
 */
START_TEST(test_charge_post_once)
{
	struct harness h;
	mbx_t *root, *o;
	char *big = malloc(2 * MiB), *got = malloc(2 * MiB);
	struct mbx_meta meta;
	size_t post = 150 * 1024, fill = 1600 * 1024;

	if (!is_root()) {
		skip("charge_post_once", "needs root for a second identity");
		free(big);
		free(got);
		return;
	}
	ck_assert(big != NULL && got != NULL);
	memset(big, 'p', 2 * MiB);
	daemon_start(&h, "{\"limits\": {\"max_memory\": 4194304}}");
	root = open_ok(&h);
	create(root, "post", 64, 4 * MiB, 0666);
	o = open_as(&h, &OTHER);
	ASSERT_OK(mbx_setopt(o, MBX_OPT_CREDIT, 1));
	/* 60 KiB earns a grant of 4 slots, 240 KiB. */
	ASSERT_OK(mbx_send(o, "post", big, 60 * 1024, 0, -1));
	/* The share (2 MiB) now holds 60 KiB + 240 KiB + 1.6 MiB. */
	ASSERT_OK(mbx_send(o, "post", big, fill, 0, -1));
	/* Posted: its frame would take the share over, its grant has room. */
	big[0] = 'P';
	ASSERT_OK(mbx_send(o, "post", big, post, 0, -1));
	ASSERT_OK(mbx_bind(root, "post", MBX_BIND_EXCLUSIVE));
	ck_assert_int_eq(mbx_recv(root, "post", got, 2 * MiB, &meta, -1),
	    60 * 1024);
	ck_assert_int_eq(mbx_recv(root, "post", got, 2 * MiB, &meta, -1),
	    (ssize_t)fill);
	ck_assert_int_eq(mbx_recv(root, "post", got, 2 * MiB, &meta,
	    bound_ms(5000)), (ssize_t)post);
	ck_assert(got[0] == 'P');
	/* And the sender's connection is fine. */
	ASSERT_OK(mbx_send(o, "post", "after", 5, 0, -1));
	ck_assert_int_eq(mbx_recv(root, "post", got, 2 * MiB, &meta, -1), 5);
	mbx_close(o);
	mbx_close(root);
	free(big);
	free(got);
	harness_stop(&h);
}
END_TEST

/*
 * Timeouts of 0.
 */

/* The helper: one send with timeout 0; reports errno and how long. */
struct zsend {
	const char	*name;
	int		 flags;
};

static int
child_zero_send(const struct harness *h, void *arg)
{
	const struct zsend *z = arg;
	mbx_t *c = mbx_open(h->sock);
	int64_t t0;
	int r;

	CHILD_REQUIRE(c != NULL);
	harness_report(1);
	t0 = harness_now_ms();
	r = mbx_send(c, z->name, "sync0", 5, z->flags, 0);
	harness_report(r == 0 ? 0 : errno);
	harness_report((long)(harness_now_ms() - t0));
	mbx_close(c);
	return 0;
}

/*
 * A synchronous (or rendezvous) send with timeout 0 to a receiver that
 * takes the message and never acknowledges it (stopped, say) returns
 * EAGAIN within a bounded short time, and the receiver's late ACK finds
 * the message withdrawn: an error means the receiver never got it.
 */
START_TEST(test_sync_zero_bounded)
{
	static struct zsend cases[] = {
		{ "z.sync", MBX_SYNC },
		{ "z.rdv", 0 },
	};
	struct harness h;
	mbx_t *c;

	harness_start(&h, NULL);
	c = open_ok(&h);
	create(c, "z.sync", 4, 0, 0);
	create(c, "z.rdv", 0, 0, 0);
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const char *name = cases[k].name;
		struct harness_child ch;
		uint64_t msg_id;
		long err, ms;
		int fd = harness_raw_connect(&h);

		ck_assert_int_gt(harness_raw_hello(fd), 0);
		raw_bind(fd, 2, name, strlen(name), MBX_BIND_EXCLUSIVE);
		ck_assert_uint_eq(raw_status(fd, 2), PROTO_OK);
		raw_recv(fd, 3, name, strlen(name), -1, 1024);
		/* The RECV is parked once its connection's next call is answered. */
		raw_sync(fd, 4);
		harness_child_start(&ch, &h, child_zero_send,
		    &cases[k]);
		ck_assert_int_eq(harness_child_read(&ch), 1);
		/* The receiver takes it, and says nothing more. */
		msg_id = raw_msg_id(fd, 3);
		err = harness_child_read(&ch);
		ms = harness_child_read(&ch);
		ck_assert_msg(err == EAGAIN, "%s: timeout-0 send: %s", name,
		    harness_errname((int)err));
		ck_assert_msg(ms <= bound_ms(1000), "%s: timeout-0 send took "
		    "%ld ms", name, ms);
		ck_assert_int_eq(harness_child_join(&ch), 0);
		/* Failed, so not received: the ACK comes too late. */
		ck_assert_uint_eq(raw_ack_reply(fd, 5, msg_id), PROTO_STALE);
		ck_assert_int_eq(harness_mailbox_int(c, name, "queued"), 0);
		ck_assert_int_eq(harness_mailbox_int(c, name, "sent"), 0);
		ck_assert_int_eq(harness_mailbox_int(c, name, "received"), 0);
		close(fd);
	}
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* A receiver that acknowledges at once: the timeout-0 sync send works. */
START_TEST(test_sync_zero_ok)
{
	struct harness h;
	mbx_t *c;
	int fd;
	uint64_t msg_id;

	harness_start(&h, NULL);
	c = open_ok(&h);
	create(c, "z.ok", 4, 0, 0);
	fd = harness_raw_connect(&h);
	ck_assert_int_gt(harness_raw_hello(fd), 0);
	raw_bind(fd, 2, "z.ok", 4, MBX_BIND_EXCLUSIVE);
	ck_assert_uint_eq(raw_status(fd, 2), PROTO_OK);
	raw_recv(fd, 3, "z.ok", 4, -1, 1024);
	raw_sync(fd, 4);
	{
		int s = harness_raw_connect(&h);

		ck_assert_int_gt(harness_raw_hello(s), 0);
		raw_send(s, 2, "z.ok", 4, "ok", 2, PROTO_SEND_SYNC, 0);
		msg_id = raw_msg_id(fd, 3);
		ck_assert_uint_eq(raw_ack_reply(fd, 5, msg_id), PROTO_OK);
		ck_assert_uint_eq(raw_status(s, 2), PROTO_OK);
		close(s);
	}
	ck_assert_int_eq(harness_mailbox_int(c, "z.ok", "received"), 1);
	close(fd);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * mbx_recvv() against a daemon that hands out a batch and goes away
 * before it reads the acknowledgement: a fake one, so that the order is
 * certain.
 */

static int
child_fake_daemon(const struct harness *h, void *arg)
{
	const char *path = arg;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct proto_writer w;
	uint8_t *body;
	size_t len, start;
	uint16_t type;
	uint32_t id, flags;
	int ls, fd;

	(void)h;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHILD_REQUIRE(ls >= 0);
	CHILD_REQUIRE(bind(ls, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	CHILD_REQUIRE(listen(ls, 4) == 0);
	harness_report(1);
	fd = accept(ls, NULL, NULL);
	CHILD_REQUIRE(fd >= 0);
	proto_writer_init(&w);
	for (int i = 0; i < 16; i++) {
		CHILD_REQUIRE(harness_raw_read(fd, &type, &id, &flags, &body,
		    &len) == 1);
		free(body);
		if (type == PROTO_HELLO) {
			start = proto_frame_begin(&w);
			proto_put_u32(&w, PROTO_OK);
			proto_put_u32(&w, PROTO_VERSION);
			proto_put_u64(&w, 5);
			proto_frame_end(&w, start, PROTO_REPLY, id, 0, 0);
			CHILD_REQUIRE(harness_raw_write(fd, w.buf, w.len));
			w.len = 0;
			continue;
		}
		if (type == PROTO_CHANNEL) {
			/* Refused: the client acknowledges with ACK frames. */
			start = proto_frame_begin(&w);
			proto_put_u32(&w, PROTO_EMFILE);
			proto_frame_end(&w, start, PROTO_REPLY, id, 0, 0);
			CHILD_REQUIRE(harness_raw_write(fd, w.buf, w.len));
			w.len = 0;
			continue;
		}
		if (type == PROTO_RECV)
			break;
		CHILD_REQUIRE(!"an unexpected request");
	}
	/* From here the client's writes fail: the daemon "went away". */
	CHILD_REQUIRE(shutdown(fd, SHUT_RD) == 0);
	for (uint64_t k = 1; k <= 3; k++) {
		char payload[24];

		snprintf(payload, sizeof(payload), "m%u", (unsigned)k);
		start = proto_frame_begin(&w);
		proto_put_u64(&w, 100 + k);
		proto_put_str(&w, "fake", 4);
		proto_put_u64(&w, 9);
		proto_put_u32(&w, 1);
		proto_put_u32(&w, 0);
		proto_put_u32(&w, 1);		/* attempt */
		proto_put_str(&w, "", 0);	/* origin */
		proto_put_u32(&w, 0);
		proto_put_blob(&w, payload, strlen(payload));
		proto_frame_end(&w, start, PROTO_MSG, id,
		    k < 3 ? PROTO_MSG_MORE : 0, 0);
	}
	CHILD_REQUIRE(!proto_writer_failed(&w));
	CHILD_REQUIRE(harness_raw_write(fd, w.buf, w.len));
	proto_writer_free(&w);
	harness_report(2);
	close(fd);
	close(ls);
	return 0;
}

/*
 * mbx_recvv() returns only what it received for good: here the
 * acknowledgement of a batch cannot be written, so the daemon would give
 * the three out again, and the call fails (ECONNRESET) rather than hand
 * out copies that would be received twice (mbx(3)); the next call says
 * the same.
 */
START_TEST(test_recvv_consumed)
{
	struct harness h;
	struct harness_child ch;
	struct mbx_rmsg v[3];
	char bufs[3][16], path[HARNESS_PATH_MAX];
	ssize_t n;
	mbx_t *c;

	harness_init(&h);
	snprintf(path, sizeof(path), "%s/fake.sock", h.dir);
	harness_child_start(&ch, &h, child_fake_daemon, path);
	ck_assert_int_eq(harness_child_read(&ch), 1);
	c = mbx_open(path);
	ck_assert_msg(c != NULL, "mbx_open(fake): %s", strerror(errno));
	memset(v, 0, sizeof(v));
	for (int i = 0; i < 3; i++) {
		v[i].buf = bufs[i];
		v[i].cap = sizeof(bufs[i]);
	}
	errno = 0;
	n = mbx_recvv(c, NULL, v, 3, -1);
	ck_assert_msg(n == -1 && errno == ECONNRESET, "mbx_recvv: %zd (%s), "
	    "expected -1 (ECONNRESET)", n, harness_errname(errno));
	ck_assert_int_eq(harness_child_read(&ch), 2);
	ck_assert_int_eq(harness_child_join(&ch), 0);
	/* The error comes with the next call. */
	errno = 0;
	n = mbx_recvv(c, NULL, v, 3, 0);
	ck_assert_msg(n == -1 && (errno == ECONNRESET || errno == EPIPE),
	    "mbx_recvv after: %zd (%s)", n, harness_errname(errno));
	mbx_close(c);
	harness_cleanup(&h);
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
	ck_assert_msg(raw_closed(fd, 8), "the connection stayed open");
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

/*
 * Receive-any.
 */

/*
 * Receive-any takes the oldest message first, held (prefetched) ones
 * included: a named receive's batch held "a2" while "b1", older, waited
 * in the daemon.
 */
START_TEST(test_recv_any_oldest)
{
	struct harness h;
	struct mbx_meta meta;
	char buf[64];
	static const char *const order[] = { "b1", "a2", "b2", "a3" };
	mbx_t *s, *r;
	ssize_t n;

	harness_start(&h, NULL);
	s = open_ok(&h);
	r = open_ok(&h);
	create(s, "any.a", 16, 0, 0);
	create(s, "any.b", 16, 0, 0);
	ASSERT_OK(mbx_bind(r, "any.a", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_bind(r, "any.b", MBX_BIND_EXCLUSIVE));
	ASSERT_OK(mbx_setopt(r, MBX_OPT_PREFETCH, 16));
	ASSERT_OK(mbx_send(s, "any.a", "a1", 2, 0, -1));
	ASSERT_OK(mbx_send(s, "any.b", "b1", 2, 0, -1));
	ASSERT_OK(mbx_send(s, "any.a", "a2", 2, 0, -1));
	ASSERT_OK(mbx_send(s, "any.b", "b2", 2, 0, -1));
	ASSERT_OK(mbx_send(s, "any.a", "a3", 2, 0, -1));
	/* a1, and a2 and a3 held. */
	n = mbx_recv(r, "any.a", buf, sizeof(buf), &meta, 0);
	ck_assert_int_eq(n, 2);
	ck_assert(memcmp(buf, "a1", 2) == 0);
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		n = mbx_recv(r, NULL, buf, sizeof(buf), &meta, 0);
		ck_assert_msg(n == 2 && memcmp(buf, order[i], 2) == 0,
		    "receive-any %zu: got \"%.*s\" (%zd), expected %s", i,
		    n > 0 ? (int)n : 0, buf, n, order[i]);
	}
	ASSERT_ERR(mbx_recv(r, NULL, buf, sizeof(buf), &meta, 0), EAGAIN);
	ck_assert_int_eq(harness_mailbox_int(s, "any.a", "queued"), 0);
	ck_assert_int_eq(harness_mailbox_int(s, "any.b", "queued"), 0);
	mbx_close(r);
	mbx_close(s);
	harness_stop(&h);
}
END_TEST

/*
 * Command names, mailbox names and payloads no ordinary client has.
 */

/* proto_escape(), the one rule for the log, CLIENTS and the tables. */
START_TEST(test_escape_rule)
{
	static const struct {
		const char	*in;
		size_t		 len;
		const char	*out;
	} cases[] = {
		{ "plain name-1.x", 14, "plain name-1.x" },
		{ "nl\n<0>", 6, "nl\\x0a<0>" },
		{ "\x1b[2J\x07\x7f", 6, "\\x1b[2J\\x07\\x7f" },
		{ "a\0b", 3, "a\\x00b" },
		{ "back\\slash", 10, "back\\x5cslash" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
		    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80" },
		{ "\xc2\x9b" "1m", 4, "\\xc2\\x9b1m" },	/* C1 CSI */
		{ "\xc0\xaf", 2, "\\xc0\\xaf" },		/* overlong */
		{ "\xed\xa0\x80", 3, "\\xed\\xa0\\x80" },	/* surrogate */
		{ "\xf4\x90\x80\x80", 4, "\\xf4\\x90\\x80\\x80" },
		{ "\xe2\x82", 2, "\\xe2\\x82" },		/* cut short */
		{ "\xff\xfe", 2, "\\xff\\xfe" },
	};
	char out[PROTO_ESCAPED_MAX(16)];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = proto_escape(out, sizeof(out), cases[i].in,
		    cases[i].len);

		ck_assert_msg(strcmp(out, cases[i].out) == 0, "case %zu: "
		    "\"%s\", expected \"%s\"", i, out, cases[i].out);
		ck_assert_uint_eq(n, strlen(out));
	}
	/* Too small: cut before what does not fit, never inside it. */
	ck_assert_uint_eq(proto_escape(out, 6, "abc\x01", 4), 3);
	ck_assert_str_eq(out, "abc");
	ck_assert_uint_eq(proto_escape(out, 4, "ab\xe2\x82\xac", 5), 2);
	ck_assert_str_eq(out, "ab");
	ck_assert_uint_eq(proto_escape(out, 1, "abc", 3), 0);
	ck_assert_str_eq(out, "");
}
END_TEST

/* The CLIENTS row of id, or NULL. */
static json_t *
client_row(json_t *all, long id)
{
	size_t i;
	json_t *row;

	json_array_foreach(all, i, row)
		if (json_integer_value(json_object_get(row, "id")) == id)
			return row;
	return NULL;
}

/*
 * A client whose command name holds an escape sequence, a newline, a
 * syslog prefix or bytes that are not UTF-8 is listed by CLIENTS, with
 * those bytes escaped, and none of them reaches mbxd's log or mbxctl's
 * table raw.
 */
START_TEST(test_comm_escaped)
{
	static const char *const names[] = {
		"\xff\xfe" "bad",		/* not UTF-8 */
		"\x1b[2Jesc\x07",		/* a terminal escape */
		"nl\n<0>x\r",			/* a new log line, a priority */
		"c1\xc2\x9b" "31m",		/* a C1 control (CSI) */
	};
	enum { N = sizeof(names) / sizeof(names[0]) };
	char log[HARNESS_PATH_MAX], self[32];
	struct harness h;
	struct harness_ctl r;
	mbx_t *c[N], *admin;
	json_t *all;

	start_logged(&h, NULL, log, sizeof(log));
	ck_assert(prctl(PR_GET_NAME, self) == 0);
	for (int i = 0; i < N; i++) {
		ck_assert(prctl(PR_SET_NAME, names[i]) == 0);
		c[i] = mbx_open(h.sock);
		ck_assert(c[i] != NULL);
	}
	ck_assert(prctl(PR_SET_NAME, self) == 0);
	admin = open_ok(&h);
	all = harness_clients(admin);
	for (int i = 0; i < N; i++) {
		json_t *row = client_row(all, mbx_id(c[i]));
		const char *comm;

		ck_assert_msg(row != NULL, "client %d (comm %d) is not listed",
		    (int)mbx_id(c[i]), i);
		comm = json_string_value(json_object_get(row, "comm"));
		ck_assert(comm != NULL);
		assert_clean("a listed comm", comm, strlen(comm));
		ck_assert_msg(strstr(comm, "\\x") != NULL, "comm \"%s\": "
		    "nothing escaped", comm);
	}
	json_decref(all);
	ck_assert_int_eq(harness_ctl(&h, NULL, &r, "clients", NULL), 0);
	ck_assert_int_eq(r.status, 0);
	assert_clean("mbxctl clients", r.out, r.out_len);
	harness_ctl_free(&r);
	for (int i = 0; i < N; i++)
		mbx_close(c[i]);
	mbx_close(admin);
	stop_clean_log(&h, log);
}
END_TEST

/*
 * Names with an embedded NUL or bytes that are not UTF-8 are refused
 * (EINVAL) by every request that takes a name; payloads holding a
 * newline, a syslog priority or terminal escapes are carried intact.
 * Neither reaches mbxd's log or mbxctl's tables raw.
 */
START_TEST(test_hostile_names_payloads)
{
	static const struct {
		const char	*name;
		size_t		 len;
	} bad[] = {
		{ "nul\0inside", 10 },
		{ "\xff\xfe", 2 },
		{ "esc\x1b[2J", 8 },
		{ "nl\n<0>x", 7 },
		{ "caf\xc3\xa9", 5 },		/* UTF-8, but not a name */
	};
	static const char payload[] = "line\n<0>prio\x1b[2J\x1b]0;t\x07"
	    "\xff\xfe\0end";
	char log[HARNESS_PATH_MAX], buf[256];
	struct harness h;
	struct harness_ctl r;
	struct mbx_meta meta;
	uint32_t id = 2;
	mbx_t *c;
	int fd;

	start_logged(&h, NULL, log, sizeof(log));
	c = open_ok(&h);
	create(c, "carry", 8, 0, 0);
	ASSERT_OK(mbx_bind(c, "carry", MBX_BIND_EXCLUSIVE));
	fd = harness_raw_connect(&h);
	ck_assert_int_gt(harness_raw_hello(fd), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *n = bad[i].name;
		size_t len = bad[i].len;

		raw_create(fd, id, n, len, 4);
		ck_assert_uint_eq(raw_status(fd, id++), PROTO_EINVAL);
		raw_send(fd, id, n, len, "x", 1, 0, 0);
		ck_assert_uint_eq(raw_status(fd, id++), PROTO_EINVAL);
		raw_bind(fd, id, n, len, MBX_BIND_EXCLUSIVE);
		ck_assert_uint_eq(raw_status(fd, id++), PROTO_EINVAL);
		raw_recv(fd, id, n, len, 0, 1024);
		ck_assert_uint_eq(raw_status(fd, id++), PROTO_EINVAL);
		raw_name_req(fd, PROTO_DESTROY, id, n, len);
		ck_assert_uint_eq(raw_status(fd, id++), PROTO_EINVAL);
		raw_name_req(fd, PROTO_PURGE, id, n, len);
		ck_assert_uint_eq(raw_status(fd, id++), PROTO_EINVAL);
		/* libmbx refuses them before they are sent. */
		if (memchr(n, 0, len) == NULL) {
			char name[16];

			snprintf(name, sizeof(name), "%.*s", (int)len, n);
			ASSERT_ERR(mbx_send(c, name, "x", 1, 0, 0), EINVAL);
		}
	}
	/* Payloads are the sender's business: carried byte for byte. */
	raw_send(fd, id, "carry", 5, payload, sizeof(payload), 0, 0);
	ck_assert_uint_eq(raw_status(fd, id++), PROTO_OK);
	ASSERT_OK(mbx_send(c, "carry", payload, sizeof(payload), 0, 0));
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(mbx_recv(c, "carry", buf, sizeof(buf), &meta,
		    0), sizeof(payload));
		ck_assert(memcmp(buf, payload, sizeof(payload)) == 0);
	}
	close(fd);
	ck_assert_int_eq(harness_ctl(&h, NULL, &r, "list", NULL), 0);
	ck_assert_int_eq(r.status, 0);
	assert_clean("mbxctl list", r.out, r.out_len);
	harness_ctl_free(&r);
	ck_assert_int_eq(harness_ctl(&h, NULL, &r, "clients", NULL), 0);
	assert_clean("mbxctl clients", r.out, r.out_len);
	harness_ctl_free(&r);
	mbx_close(c);
	stop_clean_log(&h, log);
}
END_TEST

/*
 * A configuration's text reaches the log escaped too: an unknown key
 * holding an escape sequence, a newline and a journal priority, quoted
 * by the error mbxd exits with.
 */
START_TEST(test_config_error_escaped)
{
	static const char config[] = "{ \"limits\": { \"x\\u001b[2J\\n<0>"
	    "\\u009by\": 1 } }\n";
	char log[HARNESS_PATH_MAX], path[HARNESS_PATH_MAX];
	const char *extra[] = { "-c", path, NULL };
	struct harness h;
	size_t len;
	char *text;
	FILE *f;
	int st;

	harness_init(&h);
	snprintf(path, sizeof(path), "%s/mbxd.json", h.dir);
	/* Where harness_run_mbxd() sends the daemon's stderr. */
	snprintf(log, sizeof(log), "%s/other.log", h.dir);
	f = fopen(path, "w");
	ck_assert(f != NULL && fputs(config, f) >= 0 && fclose(f) == 0);
	st = harness_run_mbxd(&h, extra);
	ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0,
	    "mbxd started with an unknown key: %#x", st);
	text = harness_read_file(log, &len);
	ck_assert_msg(strstr(text, "unknown key") != NULL, "mbxd said: %s",
	    text);
	assert_clean("mbxd's error", text, len);
	free(text);
	harness_cleanup(&h);
}
END_TEST

/*
 * Empty messages.
 */

/* A 0-byte message, end to end: libmbx to libmbx, mbxctl to mbxctl. */
START_TEST(test_empty_message)
{
	struct harness h;
	struct harness_ctl r;
	struct mbx_meta meta;
	struct mbx_rmsg v[2];
	char buf[16];
	mbx_t *s, *rc;
	mbx_msg_t *m;

	harness_start(&h, NULL);
	s = open_ok(&h);
	rc = open_ok(&h);
	create(s, "empty", 8, 0, 0);
	ASSERT_OK(mbx_bind(rc, "empty", MBX_BIND_EXCLUSIVE));

	ASSERT_OK(mbx_send(s, "empty", "", 0, 0, -1));
	ASSERT_OK(mbx_send(s, "empty", NULL, 0, 0, -1));
	ck_assert_int_eq(harness_mailbox_int(s, "empty", "queued"), 2);
	memset(&meta, 0xa5, sizeof(meta));
	ck_assert_int_eq(mbx_recv(rc, "empty", buf, sizeof(buf), &meta, 0), 0);
	ck_assert_uint_eq(meta.len, 0);
	ck_assert_str_eq(meta.mailbox, "empty");
	ck_assert_int_eq(meta.sender_id, mbx_id(s));
	/* Into no buffer at all. */
	ck_assert_int_eq(mbx_recv(rc, "empty", NULL, 0, &meta, 0), 0);

	/* Synchronous, as a message object, in a batch. */
	ASSERT_OK(mbx_send(s, "empty", "", 0, 0, -1));
	ASSERT_OK(mbx_recvmsg(rc, "empty", &m, &meta, 0));
	ck_assert_uint_eq(mbx_msg_len(m), 0);
	mbx_msg_free(m);
	ASSERT_OK(mbx_send(s, "empty", "", 0, 0, -1));
	ASSERT_OK(mbx_send(s, "empty", "x", 1, 0, -1));
	memset(v, 0, sizeof(v));
	v[0].buf = buf;
	v[0].cap = sizeof(buf);
	v[1].buf = buf + 8;
	v[1].cap = 8;
	ck_assert_int_eq(mbx_recvv(rc, "empty", v, 2, 0), 2);
	ck_assert_uint_eq(v[0].len, 0);
	ck_assert_uint_eq(v[1].len, 1);
	ck_assert_int_eq(harness_mailbox_int(s, "empty", "received"), 5);
	ASSERT_OK(mbx_unbind(rc, "empty"));

	/* mbxctl: an empty argument, and empty standard input. */
	ck_assert_int_eq(harness_ctl(&h, NULL, &r, "send", "empty", "",
	    NULL), 0);
	ck_assert_msg(r.status == 0, "mbxctl send \"\": %s", r.err);
	harness_ctl_free(&r);
	ck_assert_int_eq(harness_ctl(&h, "", &r, "send", "empty", NULL), 0);
	ck_assert_msg(r.status == 0, "mbxctl send <empty: %s", r.err);
	harness_ctl_free(&r);
	ck_assert_int_eq(harness_mailbox_int(s, "empty", "queued"), 2);
	ck_assert_int_eq(harness_mailbox_int(s, "empty", "bytes"), 0);
	ck_assert_int_eq(harness_ctl(&h, NULL, &r, "recv", "empty", "--count",
	    "2", "--timeout", "0", NULL), 0);
	ck_assert_msg(r.status == 0, "mbxctl recv: %s", r.err);
	ck_assert_uint_eq(r.out_len, 2);
	ck_assert(memcmp(r.out, "\n\n", 2) == 0);
	harness_ctl_free(&r);
	ck_assert_int_eq(harness_ctl(&h, NULL, &r, "send", "empty", "",
	    NULL), 0);
	harness_ctl_free(&r);
	ck_assert_int_eq(harness_ctl(&h, NULL, &r, "--json", "recv", "empty",
	    "--timeout", "0", NULL), 0);
	ck_assert_msg(r.status == 0, "mbxctl --json recv: %s", r.err);
	ck_assert_msg(strstr(r.out, "\"data\":\"\"") != NULL, "json: %s",
	    r.out);
	harness_ctl_free(&r);
	ck_assert_int_eq(harness_mailbox_int(s, "empty", "queued"), 0);
	mbx_close(rc);
	mbx_close(s);
	harness_stop(&h);
}
END_TEST

/*
 * What PROTOCOL.md says of grants, checked on the wire.
 */

/* A raw SEND with PROTO_SEND_CREDIT; returns the REPLY's body length. */
static size_t
raw_credit_send(int fd, uint32_t id, const char *name, int32_t timeout,
    uint32_t *status)
{
	uint8_t *body;
	size_t len;

	raw_send(fd, id, name, strlen(name), "credit", 6, PROTO_SEND_CREDIT,
	    timeout);
	*status = raw_status_body(fd, id, &body, &len);
	free(body);
	return len;
}

/*
 * A reload that takes the write bit from a grant's holder sends it REVOKE
 * (PROTO_REVOKE_CREDIT), as CHMOD does; the late OK of a parked credit
 * SEND carries no grant although the connection holds one.
 */
START_TEST(test_spec_grants)
{
	static const char before[] = "{ \"mailboxes\": [ { \"name\": "
	    "\"cfg\", \"capacity\": 64, \"mode\": \"0666\" }, { \"name\": "
	    "\"small\", \"capacity\": 8, \"mode\": \"0666\" } ] }\n";
	static const char after[] = "{ \"mailboxes\": [ { \"name\": "
	    "\"cfg\", \"capacity\": 64, \"mode\": \"0600\" }, { \"name\": "
	    "\"small\", \"capacity\": 8, \"mode\": \"0666\" } ] }\n";
	char path[HARNESS_PATH_MAX], buf[16];
	struct proto_reader r;
	struct proto_str name;
	struct harness h;
	uint8_t *body;
	size_t len;
	uint16_t type;
	uint32_t rid, flags, status;
	mbx_t *root;
	FILE *f;
	int fd;

	if (!is_root()) {
		skip("spec_grants", "needs root for a second identity");
		return;
	}
	daemon_start(&h, before);
	root = open_ok(&h);
	fd = raw_connect_as(&h, &OTHER);
	ck_assert_int_gt(harness_raw_hello(fd), 0);

	/* A grant, then a reload that takes the write bit away. */
	ck_assert_uint_gt(raw_credit_send(fd, 2, "cfg", 0, &status), 4);
	ck_assert_uint_eq(status, PROTO_OK);
	snprintf(path, sizeof(path), "%s/mbxd.json", h.dir);
	f = fopen(path, "w");
	ck_assert(f != NULL && fputs(after, f) >= 0 && fclose(f) == 0);
	ck_assert(kill(h.pid, SIGHUP) == 0);
	ck_assert_msg(harness_raw_read(fd, &type, &rid, &flags, &body, &len) ==
	    1, "no REVOKE after the reload");
	ck_assert_int_eq(type, PROTO_REVOKE);
	ck_assert_uint_eq(rid, 0);
	proto_reader_init(&r, body, len);
	ck_assert_uint_eq(proto_get_u32(&r), PROTO_REVOKE_CREDIT);
	name = proto_get_str(&r);
	ck_assert(name.len == 3 && memcmp(name.ptr, "cfg", 3) == 0);
	free(body);

	/* A grant in "small", then a send parked on the full mailbox. */
	ck_assert_uint_gt(raw_credit_send(fd, 3, "small", 0, &status), 4);
	ck_assert_uint_eq(status, PROTO_OK);
	for (int i = 0; i < 16 && mbx_send(root, "small", "fill", 4, 0, 0) == 0;
	    i++)
		;
	ck_assert_int_eq(errno, EAGAIN);
	raw_send(fd, 4, "small", 5, "parked", 6, PROTO_SEND_CREDIT, -1);
	raw_sync(fd, 5);
	ASSERT_OK(mbx_bind(root, "small", MBX_BIND_EXCLUSIVE));
	ck_assert_int_eq(mbx_recv(root, "small", buf, sizeof(buf), NULL, 0),
	    6);
	ck_assert_uint_eq(raw_status_body(fd, 4, &body, &len), PROTO_OK);
	free(body);
	ck_assert_msg(len == 4, "the late OK of a parked credit SEND carries "
	    "%zu bytes", len);
	close(fd);
	mbx_close(root);
	harness_stop(&h);
}
END_TEST

/*
 * A service manager that does not read its notify socket never stops
 * mbxd: with the queue full (10 datagrams here), a reload's RELOADING=1
 * and READY=1 and the stop's STOPPING=1 are dropped, and the daemon
 * goes on answering and exits on SIGTERM.  Before, sendto() waited for
 * room, and mbxd stopped for good in the middle of its work.
 */
START_TEST(test_notify_unread)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct harness h;
	mbx_t *c;
	int fd, full = 0;

	daemon_start(&h, NULL);
	c = open_ok(&h);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", h.notify);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	for (int i = 0; i < 100000 && !full; i++)
		if (sendto(fd, "X=1", 3, MSG_DONTWAIT, (struct sockaddr *)&sun,
		    sizeof(sun)) < 0) {
			ck_assert_msg(errno == EAGAIN, "fill %s: %s", h.notify,
			    strerror(errno));
			full = 1;
		}
	ck_assert_msg(full, "the notify socket never filled");
	close(fd);
	ck_assert(kill(h.pid, SIGHUP) == 0);
	ASSERT_OK(mbx_create(c, "after-reload", NULL));
	ASSERT_OK(mbx_send(c, "after-reload", "x", 1, 0, 0));
	mbx_close(c);
	/* Fails with "did not exit" when STOPPING=1 waits for room. */
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
	tcase_add_test(tc, test_charge_post_once);
	suite_add_tcase(s, tc);

	tc = tcase_create("timeouts");
	tcase_set_timeout(tc, harness_tcase_timeout());
	tcase_add_test(tc, test_sync_zero_bounded);
	tcase_add_test(tc, test_sync_zero_ok);
	suite_add_tcase(s, tc);

	tc = tcase_create("recvv");
	tcase_set_timeout(tc, harness_tcase_timeout());
	tcase_add_test(tc, test_recvv_consumed);
	tcase_add_test(tc, test_recv_any_oldest);
	tcase_add_test(tc, test_empty_message);
	suite_add_tcase(s, tc);

	tc = tcase_create("handshake");
	tcase_set_timeout(tc, harness_tcase_timeout());
	tcase_add_test(tc, test_hello_bad_version_stops);
	suite_add_tcase(s, tc);

	tc = tcase_create("hostile");
	tcase_set_timeout(tc, harness_tcase_timeout());
	tcase_add_test(tc, test_escape_rule);
	tcase_add_test(tc, test_comm_escaped);
	tcase_add_test(tc, test_hostile_names_payloads);
	tcase_add_test(tc, test_config_error_escaped);
	suite_add_tcase(s, tc);

	tc = tcase_create("spec");
	tcase_set_timeout(tc, harness_tcase_timeout());
	tcase_add_test(tc, test_spec_grants);
	suite_add_tcase(s, tc);

	tc = tcase_create("supervisor");
	tcase_set_timeout(tc, harness_tcase_timeout());
	tcase_add_test(tc, test_notify_unread);
	suite_add_tcase(s, tc);
	return s;
}
