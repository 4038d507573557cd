/*
 * test-proto.c - the wire codec, fed bytes directly: the header, the
 * field helpers, and every body of proto/body.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "body.h"
#include "proto.h"
#include "suites.h"

START_TEST(header_round_trip)
{
	struct proto_header in = { 1234, PROTO_SEND, 0, 0xdeadbeef, 0x1 }, out;
	uint8_t buf[PROTO_HEADER_SIZE];

	proto_header_encode(buf, &in);
	/* Little-endian on the wire whatever the host. */
	ck_assert_uint_eq(buf[0], 1234 & 0xff);
	ck_assert_uint_eq(buf[1], 1234 >> 8);
	ck_assert_uint_eq(buf[4], PROTO_SEND);
	ck_assert_uint_eq(buf[8], 0xef);
	ck_assert_int_eq(proto_header_decode(buf, sizeof(buf), PROTO_MAX_BODY,
	    &out), PROTO_DECODE_OK);
	ck_assert_uint_eq(out.len, 1234);
	ck_assert_uint_eq(out.type, PROTO_SEND);
	ck_assert_uint_eq(out.id, 0xdeadbeef);
	ck_assert_uint_eq(out.flags, 1);
}
END_TEST

START_TEST(header_needs_more)
{
	uint8_t buf[PROTO_HEADER_SIZE] = { 0 };
	struct proto_header h;

	for (size_t n = 0; n < PROTO_HEADER_SIZE; n++)
		ck_assert_int_eq(proto_header_decode(buf, n, PROTO_MAX_BODY, &h),
		    PROTO_DECODE_MORE);
}
END_TEST

START_TEST(header_rejects_before_allocating)
{
	struct proto_header in = { 0, PROTO_SEND, 0, 1, 0 }, out;
	uint8_t buf[PROTO_HEADER_SIZE];

	in.len = PROTO_MAX_BODY + 1;
	proto_header_encode(buf, &in);
	ck_assert_int_eq(proto_header_decode(buf, sizeof(buf), UINT32_MAX,
	    &out), PROTO_DECODE_MALFORMED);
	/* The caller's smaller limit holds too. */
	in.len = 100;
	proto_header_encode(buf, &in);
	ck_assert_int_eq(proto_header_decode(buf, sizeof(buf), 99, &out),
	    PROTO_DECODE_MALFORMED);
	in.len = 0;
	in.type = 999;
	proto_header_encode(buf, &in);
	ck_assert_int_eq(proto_header_decode(buf, sizeof(buf), 99, &out),
	    PROTO_DECODE_MALFORMED);
	in.type = PROTO_SEND;
	in.nfds = PROTO_MAX_FDS + 1;
	proto_header_encode(buf, &in);
	ck_assert_int_eq(proto_header_decode(buf, sizeof(buf), 99, &out),
	    PROTO_DECODE_MALFORMED);
}
END_TEST

START_TEST(fields_round_trip)
{
	struct proto_writer w;
	struct proto_reader r;
	struct proto_str s, b;
	size_t start;

	proto_writer_init(&w);
	start = proto_frame_begin(&w);
	proto_put_str(&w, "jobs", 4);
	proto_put_i32(&w, -1);
	proto_put_i64(&w, -42);
	proto_put_u64(&w, UINT64_MAX - 1);
	proto_put_blob(&w, "hello", 5);
	proto_frame_end(&w, start, PROTO_SEND, 7, PROTO_SEND_SYNC, 0);
	ck_assert(!proto_writer_failed(&w));
	ck_assert_uint_eq(w.len, PROTO_HEADER_SIZE + 2 + 4 + 4 + 8 + 8 + 4 + 5);

	proto_reader_init(&r, w.buf + PROTO_HEADER_SIZE,
	    w.len - PROTO_HEADER_SIZE);
	s = proto_get_str(&r);
	ck_assert_uint_eq(s.len, 4);
	ck_assert(memcmp(s.ptr, "jobs", 4) == 0);
	ck_assert_int_eq(proto_get_i32(&r), -1);
	ck_assert(proto_get_i64(&r) == -42);
	ck_assert(proto_get_u64(&r) == UINT64_MAX - 1);
	b = proto_get_blob(&r);
	ck_assert_uint_eq(b.len, 5);
	ck_assert(memcmp(b.ptr, "hello", 5) == 0);
	ck_assert(proto_reader_done(&r));
	proto_writer_free(&w);
}
END_TEST

START_TEST(reader_rejects_inconsistent_lengths)
{
	/* A string that claims more bytes than the body has. */
	const uint8_t body[] = { 10, 0, 'a', 'b' };
	/* A body with a trailing byte. */
	const uint8_t trailing[] = { 1, 0, 'a', 'x' };
	struct proto_reader r;

	proto_reader_init(&r, body, sizeof(body));
	proto_get_str(&r);
	ck_assert(!proto_reader_done(&r));
	/* Reads after a failure stay failed and return nothing. */
	ck_assert_uint_eq(proto_get_u32(&r), 0);
	ck_assert(r.bad);

	proto_reader_init(&r, trailing, sizeof(trailing));
	ck_assert_uint_eq(proto_get_str(&r).len, 1);
	ck_assert(!proto_reader_done(&r));
}
END_TEST

START_TEST(names)
{
	char big[300];

	ck_assert(proto_name_valid("jobs", 4));
	ck_assert(proto_name_valid("a.b_c:d/e-F9", 12));
	ck_assert(!proto_name_valid("", 0));
	ck_assert(!proto_name_valid("a b", 3));
	ck_assert(!proto_name_valid("@12", 3));
	ck_assert(!proto_name_valid("caf\xc3\xa9", 5));
	memset(big, 'x', sizeof(big));
	ck_assert(proto_name_valid(big, 255));
	ck_assert(!proto_name_valid(big, 256));
	ck_assert_uint_eq(proto_direct_id("@12", 3), 12);
	ck_assert_uint_eq(proto_direct_id("@0", 2), 0);
	ck_assert_uint_eq(proto_direct_id("@012", 4), 0);
	ck_assert_uint_eq(proto_direct_id("@1x", 3), 0);
	ck_assert_uint_eq(proto_direct_id("@", 1), 0);
	ck_assert_uint_eq(proto_direct_id("12", 2), 0);
}
END_TEST

START_TEST(status_mapping)
{
	int errs[] = { ENOENT, EEXIST, EINVAL, EAGAIN, ETIMEDOUT, EMSGSIZE,
	    EBUSY, EPERM, EACCES, ENOBUFS, EIDRM, ESRCH, ESTALE };

	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		ck_assert_int_eq(proto_status_to_errno(
		    proto_errno_to_status(errs[i])), errs[i]);
	ck_assert_int_eq(proto_status_to_errno(PROTO_OK), 0);
	ck_assert_int_eq(proto_status_to_errno(PROTO_ESHUTDOWN), ECONNRESET);
	ck_assert_int_eq(proto_errno_to_status(-ESHUTDOWN), PROTO_ESHUTDOWN);
	ck_assert_int_eq(proto_status_to_errno(9999), EPROTO);
}
END_TEST

/*
 * Bodies (proto/body.h).  Each test builds a body with its encoder and,
 * independently, with the field writers in the order of PROTOCOL.md's
 * tables (the wire bytes must not change), decodes it back to the same
 * fields, and checks that every shorter body and one a byte longer are
 * refused.
 */

static struct proto_writer got, want;

static void
bodies_begin(void)
{
	proto_writer_init(&got);
	proto_writer_init(&want);
}

/* The encoder wrote what the field writers wrote. */
static void
bodies_same(void)
{
	ck_assert(!proto_writer_failed(&got));
	ck_assert(!proto_writer_failed(&want));
	ck_assert_uint_eq(got.len, want.len);
	ck_assert(got.len == 0 || memcmp(got.buf, want.buf, got.len) == 0);
}

static void
bodies_end(void)
{
	proto_writer_free(&got);
	proto_writer_free(&want);
}

/* s holds text and is a view into the len bytes at body, not a copy. */
static void
view_eq(struct proto_str s, const void *body, size_t len, const char *text)
{
	const char *b = body;

	ck_assert_uint_eq(s.len, strlen(text));
	ck_assert(s.len == 0 || memcmp(s.ptr, text, s.len) == 0);
	if (s.len > 0)
		ck_assert(s.ptr >= b && s.ptr + s.len <= b + len);
}

typedef bool (*body_try)(const void *, size_t, uint32_t);

#define BODY_TRY(x)							\
static bool								\
try_##x(const void *body, size_t len, uint32_t flags)			\
{									\
	struct body_##x out;						\
									\
	return body_##x##_get(body, len, flags, &out);			\
}

BODY_TRY(hello)
BODY_TRY(create)
BODY_TRY(name)
BODY_TRY(bind)
BODY_TRY(send)
BODY_TRY(recv)
BODY_TRY(ack)
BODY_TRY(rebind)
BODY_TRY(list)
BODY_TRY(chmod)
BODY_TRY(chown)
BODY_TRY(sendv)
BODY_TRY(post)
BODY_TRY(reply)
BODY_TRY(reply_hello)
BODY_TRY(reply_page)
BODY_TRY(reply_send)
BODY_TRY(reply_sendv)
BODY_TRY(msg)
BODY_TRY(revoke)

/*
 * The body in got decodes with flags; every prefix of it is refused but
 * those whose lengths are in also[] (bodies of their own: an ACK of fewer
 * ids), and so is the body with one byte more.  Each is decoded from a
 * buffer of its exact size, so that a read past it is ASan's to report.
 */
static void
edges(body_try try, uint32_t flags, const size_t *also, size_t nalso)
{
	for (size_t n = 0; n <= got.len + 1; n++) {
		uint8_t *buf = malloc(n > 0 ? n : 1);
		bool valid = n == got.len;

		for (size_t i = 0; i < nalso; i++)
			valid = valid || also[i] == n;
		ck_assert(buf != NULL);
		memcpy(buf, got.buf, n <= got.len ? n : got.len);
		if (n > got.len)
			buf[got.len] = 0;
		ck_assert_msg(try(buf, n, flags) == valid,
		    "a body of %zu bytes of %zu", n, got.len);
		free(buf);
	}
}

#define STR(s)	((struct proto_str){ (s), sizeof(s) - 1 })

START_TEST(body_hello_round_trip)
{
	struct body_hello in = { PROTO_VERSION }, out;

	bodies_begin();
	body_hello_put(&got, &in);
	proto_put_u32(&want, PROTO_VERSION);
	bodies_same();
	ck_assert(body_hello_get(got.buf, got.len, 0, &out));
	ck_assert_uint_eq(out.version, PROTO_VERSION);
	edges(try_hello, 0, NULL, 0);
	bodies_end();
}
END_TEST

START_TEST(body_create_round_trip)
{
	struct body_create in = { STR("jobs"), -1, 1u << 20, 0640,
	    PROTO_ID_NONE, 5, 30000, STR("jobs.dead"), true }, out;

	bodies_begin();
	body_create_put(&got, &in);
	proto_put_str(&want, "jobs", 4);
	proto_put_i64(&want, -1);
	proto_put_u64(&want, 1u << 20);
	proto_put_u32(&want, 0640);
	proto_put_u32(&want, PROTO_ID_NONE);
	proto_put_u32(&want, 5);
	proto_put_u32(&want, 30000);
	proto_put_str(&want, "jobs.dead", 9);
	bodies_same();
	ck_assert(body_create_get(got.buf, got.len, 0, &out));
	view_eq(out.name, got.buf, got.len, "jobs");
	ck_assert(out.capacity == -1);
	ck_assert(out.max_msg == 1u << 20);
	ck_assert_uint_eq(out.mode, 0640);
	ck_assert_uint_eq(out.gid, PROTO_ID_NONE);
	ck_assert_uint_eq(out.max_attempts, 5);
	ck_assert_uint_eq(out.ack_timeout_ms, 30000);
	view_eq(out.dead_letter, got.buf, got.len, "jobs.dead");
	ck_assert(!out.durable);
	/* Durable rides in the frame's flags; other flags are refused. */
	ck_assert_uint_eq(body_create_flags(&in), PROTO_CREATE_DURABLE);
	ck_assert(body_create_get(got.buf, got.len, PROTO_CREATE_DURABLE,
	    &out));
	ck_assert(out.durable);
	ck_assert(!body_create_get(got.buf, got.len, 0x2, &out));
	edges(try_create, 0, NULL, 0);
	bodies_end();
}
END_TEST

/* DESTROY, UNBIND and PURGE. */
START_TEST(body_name_round_trip)
{
	struct body_name in = { STR("a.b_c:d/e-F9") }, out;

	bodies_begin();
	body_name_put(&got, &in);
	proto_put_str(&want, "a.b_c:d/e-F9", 12);
	bodies_same();
	ck_assert(body_name_get(got.buf, got.len, PROTO_UNBIND_EVICT, &out));
	view_eq(out.name, got.buf, got.len, "a.b_c:d/e-F9");
	edges(try_name, 0, NULL, 0);
	bodies_end();
}
END_TEST

START_TEST(body_bind_round_trip)
{
	struct body_bind in = { STR("jobs"), PROTO_BIND_QUEUE }, out;

	bodies_begin();
	body_bind_put(&got, &in);
	proto_put_str(&want, "jobs", 4);
	proto_put_u32(&want, PROTO_BIND_QUEUE);
	bodies_same();
	ck_assert(body_bind_get(got.buf, got.len, 0, &out));
	view_eq(out.name, got.buf, got.len, "jobs");
	ck_assert_uint_eq(out.how, PROTO_BIND_QUEUE);
	edges(try_bind, 0, NULL, 0);
	bodies_end();
}
END_TEST

START_TEST(body_send_round_trip)
{
	struct body_send in = { STR("@12"), -1, false, 0, STR("hello") }, out;
	struct proto_writer head;

	bodies_begin();
	body_send_put(&got, &in);
	proto_put_str(&want, "@12", 3);
	proto_put_i32(&want, -1);
	proto_put_blob(&want, "hello", 5);
	bodies_same();
	ck_assert(body_send_get(got.buf, got.len, PROTO_SEND_SYNC, &out));
	view_eq(out.name, got.buf, got.len, "@12");
	ck_assert_int_eq(out.timeout_ms, -1);
	ck_assert(!out.has_fd);
	ck_assert(out.size == 5);
	view_eq(out.payload, got.buf, got.len, "hello");
	edges(try_send, PROTO_SEND_SYNC, NULL, 0);
	/* The head, then the payload from elsewhere: the same body. */
	proto_writer_init(&head);
	in.payload.ptr = NULL;
	body_send_put_head(&head, &in);
	memcpy(proto_put_raw(&head, 5), "hello", 5);
	ck_assert(!proto_writer_failed(&head));
	ck_assert_uint_eq(head.len, got.len);
	ck_assert(memcmp(head.buf, got.buf, got.len) == 0);
	proto_writer_free(&head);
	bodies_end();
}
END_TEST

START_TEST(body_send_fd_round_trip)
{
	struct body_send in = { STR("jobs"), 250, true, 300000, { "", 0 } };
	struct body_send out;
	struct proto_writer head;

	bodies_begin();
	body_send_put(&got, &in);
	proto_put_str(&want, "jobs", 4);
	proto_put_i32(&want, 250);
	proto_put_u64(&want, 300000);
	bodies_same();
	ck_assert(body_send_get(got.buf, got.len, PROTO_SEND_FD, &out));
	view_eq(out.name, got.buf, got.len, "jobs");
	ck_assert_int_eq(out.timeout_ms, 250);
	ck_assert(out.has_fd);
	ck_assert(out.size == 300000);
	ck_assert_uint_eq(out.payload.len, 0);
	edges(try_send, PROTO_SEND_FD | PROTO_SEND_SHARED, NULL, 0);
	/* Read as inline, the u64 is no blob. */
	ck_assert(!body_send_get(got.buf, got.len, 0, &out));
	proto_writer_init(&head);
	body_send_put_head(&head, &in);
	ck_assert_uint_eq(head.len, got.len);
	ck_assert(memcmp(head.buf, got.buf, got.len) == 0);
	proto_writer_free(&head);
	bodies_end();
}
END_TEST

START_TEST(body_recv_round_trip)
{
	struct body_recv in = { { "", 0 }, 250, UINT64_MAX, 64, 65536, false },
	    out;

	bodies_begin();
	body_recv_put(&got, &in);
	proto_put_str(&want, "", 0);
	proto_put_i32(&want, 250);
	proto_put_u64(&want, UINT64_MAX);
	proto_put_u32(&want, 64);
	proto_put_u64(&want, 65536);
	bodies_same();
	ck_assert(body_recv_get(got.buf, got.len, 0, &out));
	ck_assert_uint_eq(out.name.len, 0);
	ck_assert_int_eq(out.timeout_ms, 250);
	ck_assert(out.cap == UINT64_MAX);
	ck_assert_uint_eq(out.max_count, 64);
	ck_assert(out.budget == 65536);
	edges(try_recv, 0, NULL, 0);
	bodies_end();
}
END_TEST

START_TEST(body_ack_round_trip)
{
	static const uint64_t ids[] = { 7, 8, UINT64_MAX };
	/* Fewer ids are ACKs too. */
	static const size_t fewer[] = { 8, 16 };
	struct body_ack in = { 3, ids, NULL }, out;

	bodies_begin();
	body_ack_put(&got, &in);
	for (size_t i = 0; i < 3; i++)
		proto_put_u64(&want, ids[i]);
	bodies_same();
	ck_assert(body_ack_get(got.buf, got.len, PROTO_ACK_REPLY, &out));
	ck_assert_uint_eq(out.count, 3);
	for (size_t i = 0; i < 3; i++)
		ck_assert(body_ack_id(&out, i) == ids[i]);
	edges(try_ack, 0, fewer, 2);
	bodies_end();
}
END_TEST

START_TEST(body_rebind_round_trip)
{
	struct body_rebind in = { STR("jobs"), 5 }, out;

	bodies_begin();
	body_rebind_put(&got, &in);
	proto_put_str(&want, "jobs", 4);
	proto_put_u64(&want, 5);
	bodies_same();
	ck_assert(body_rebind_get(got.buf, got.len, 0, &out));
	view_eq(out.name, got.buf, got.len, "jobs");
	ck_assert(out.client_id == 5);
	edges(try_rebind, 0, NULL, 0);
	bodies_end();
}
END_TEST

/* LIST and CLIENTS: with a cursor, without, and with an empty one. */
START_TEST(body_list_round_trip)
{
	static const size_t none[] = { 0 };
	struct body_list in = { true, STR("m:3") }, out;

	bodies_begin();
	body_list_put(&got, &in);
	proto_put_str(&want, "m:3", 3);
	bodies_same();
	ck_assert(body_list_get(got.buf, got.len, 0, &out));
	ck_assert(out.has_cursor);
	view_eq(out.cursor, got.buf, got.len, "m:3");
	edges(try_list, 0, none, 1);
	bodies_end();

	bodies_begin();
	in.has_cursor = false;
	body_list_put(&got, &in);
	bodies_same();
	ck_assert(body_list_get("", 0, 0, &out));
	ck_assert(!out.has_cursor);
	ck_assert_uint_eq(out.cursor.len, 0);
	bodies_end();

	bodies_begin();
	in.has_cursor = true;
	in.cursor = (struct proto_str){ "", 0 };
	body_list_put(&got, &in);
	proto_put_str(&want, "", 0);
	bodies_same();
	ck_assert(body_list_get(got.buf, got.len, 0, &out));
	ck_assert(out.has_cursor);
	ck_assert_uint_eq(out.cursor.len, 0);
	edges(try_list, 0, none, 1);
	bodies_end();
}
END_TEST

START_TEST(body_chmod_round_trip)
{
	struct body_chmod in = { STR("jobs"), 0666 }, out;

	bodies_begin();
	body_chmod_put(&got, &in);
	proto_put_str(&want, "jobs", 4);
	proto_put_u32(&want, 0666);
	bodies_same();
	ck_assert(body_chmod_get(got.buf, got.len, 0, &out));
	view_eq(out.name, got.buf, got.len, "jobs");
	ck_assert_uint_eq(out.mode, 0666);
	edges(try_chmod, 0, NULL, 0);
	bodies_end();
}
END_TEST

START_TEST(body_chown_round_trip)
{
	struct body_chown in = { STR("jobs"), 1000, PROTO_ID_NONE }, out;

	bodies_begin();
	body_chown_put(&got, &in);
	proto_put_str(&want, "jobs", 4);
	proto_put_u32(&want, 1000);
	proto_put_u32(&want, PROTO_ID_NONE);
	bodies_same();
	ck_assert(body_chown_get(got.buf, got.len, 0, &out));
	view_eq(out.name, got.buf, got.len, "jobs");
	ck_assert_uint_eq(out.uid, 1000);
	ck_assert_uint_eq(out.gid, PROTO_ID_NONE);
	edges(try_chown, 0, NULL, 0);
	bodies_end();
}
END_TEST

START_TEST(body_sendv_round_trip)
{
	static const struct body_sendv_item items[] = {
		{ STR("jobs"), STR("one") },
		{ STR("@3"), { "", 0 } },
		{ STR("x"), STR("three") },
	};
	struct body_sendv in = { 3, { NULL, 0, false } }, out;
	struct body_sendv_item it;
	struct proto_writer head;
	size_t n = 0;

	bodies_begin();
	body_sendv_put(&got, &in);
	for (size_t i = 0; i < 3; i++)
		body_sendv_item_put(&got, &items[i]);
	proto_put_u32(&want, 3);
	for (size_t i = 0; i < 3; i++) {
		proto_put_str(&want, items[i].name.ptr, items[i].name.len);
		proto_put_blob(&want, items[i].payload.ptr,
		    items[i].payload.len);
	}
	bodies_same();
	ck_assert(body_sendv_get(got.buf, got.len, 0, &out));
	ck_assert_uint_eq(out.count, 3);
	while (body_sendv_next(&out, &it)) {
		ck_assert_uint_lt(n, 3);
		view_eq(it.name, got.buf, got.len, items[n].name.ptr);
		view_eq(it.payload, got.buf, got.len, items[n].payload.ptr);
		n++;
	}
	ck_assert_uint_eq(n, 3);
	edges(try_sendv, 0, NULL, 0);
	/* Heads and payloads interleaved, as a writev() would send them. */
	proto_writer_init(&head);
	body_sendv_put(&head, &in);
	for (size_t i = 0; i < 3; i++) {
		size_t at = head.len;

		body_sendv_item_put_head(&head, &items[i]);
		ck_assert_uint_eq(head.len - at,
		    BODY_SENDV_ITEM_HEAD(items[i].name.len));
		if (items[i].payload.len > 0)
			memcpy(proto_put_raw(&head, items[i].payload.len),
			    items[i].payload.ptr, items[i].payload.len);
	}
	ck_assert_uint_eq(head.len, got.len);
	ck_assert(memcmp(head.buf, got.buf, got.len) == 0);
	proto_writer_free(&head);
	bodies_end();

	/* A count the body does not hold is refused, however large. */
	bodies_begin();
	proto_put_u32(&got, UINT32_MAX);
	body_sendv_item_put(&got, &items[0]);
	ck_assert(!body_sendv_get(got.buf, got.len, 0, &out));
	bodies_end();
}
END_TEST

START_TEST(body_post_round_trip)
{
	struct body_post in = { 4, false, 0, STR("posted") }, out;
	struct proto_writer head;

	bodies_begin();
	body_post_put(&got, &in);
	proto_put_u64(&want, 4);
	proto_put_blob(&want, "posted", 6);
	bodies_same();
	ck_assert_uint_eq(got.len, BODY_POST_HEAD + 6);
	ck_assert(body_post_get(got.buf, got.len, 0, &out));
	ck_assert(out.mailbox_id == 4);
	ck_assert(!out.has_fd);
	ck_assert(out.size == 6);
	view_eq(out.payload, got.buf, got.len, "posted");
	edges(try_post, 0, NULL, 0);
	proto_writer_init(&head);
	in.payload.ptr = NULL;
	body_post_put_head(&head, &in);
	ck_assert_uint_eq(head.len, BODY_POST_HEAD);
	memcpy(proto_put_raw(&head, 6), "posted", 6);
	ck_assert(memcmp(head.buf, got.buf, got.len) == 0);
	proto_writer_free(&head);
	bodies_end();
}
END_TEST

START_TEST(body_post_fd_round_trip)
{
	struct body_post in = { 4, true, 4096, { "", 0 } }, out;

	bodies_begin();
	body_post_put(&got, &in);
	proto_put_u64(&want, 4);
	proto_put_u64(&want, 4096);
	bodies_same();
	ck_assert(body_post_get(got.buf, got.len,
	    PROTO_POST_FD | PROTO_POST_SHARED, &out));
	ck_assert(out.mailbox_id == 4);
	ck_assert(out.has_fd);
	ck_assert(out.size == 4096);
	edges(try_post, PROTO_POST_FD, NULL, 0);
	bodies_end();
}
END_TEST

START_TEST(body_reply_round_trip)
{
	struct body_reply in = { PROTO_EDQUOT }, out;
	uint32_t status;

	bodies_begin();
	body_reply_put(&got, &in);
	proto_put_u32(&want, PROTO_EDQUOT);
	bodies_same();
	ck_assert(body_reply_get(got.buf, got.len, 0, &out));
	ck_assert_uint_eq(out.status, PROTO_EDQUOT);
	edges(try_reply, 0, NULL, 0);
	/* The status alone, whatever follows it. */
	proto_put_u64(&got, 1);
	ck_assert(body_reply_status(got.buf, got.len, &status));
	ck_assert_uint_eq(status, PROTO_EDQUOT);
	ck_assert(!body_reply_status(got.buf, 3, &status));
	bodies_end();
}
END_TEST

START_TEST(body_reply_hello_round_trip)
{
	struct body_reply_hello in = { PROTO_EPROTO, PROTO_VERSION, 42 }, out;

	bodies_begin();
	body_reply_hello_put(&got, &in);
	proto_put_u32(&want, PROTO_EPROTO);
	proto_put_u32(&want, PROTO_VERSION);
	proto_put_u64(&want, 42);
	bodies_same();
	ck_assert(body_reply_hello_get(got.buf, got.len, 0, &out));
	ck_assert_uint_eq(out.status, PROTO_EPROTO);
	ck_assert_uint_eq(out.version, PROTO_VERSION);
	ck_assert(out.client_id == 42);
	edges(try_reply_hello, 0, NULL, 0);
	bodies_end();
}
END_TEST

START_TEST(body_reply_page_round_trip)
{
	struct body_reply_page in = { PROTO_OK, STR("[{\"name\":\"jobs\"}]"),
	    true, STR("jobs") }, out;

	bodies_begin();
	body_reply_page_put(&got, &in);
	proto_put_u32(&want, PROTO_OK);
	proto_put_blob(&want, "[{\"name\":\"jobs\"}]", 17);
	proto_put_str(&want, "jobs", 4);
	bodies_same();
	ck_assert(body_reply_page_get(got.buf, got.len, PROTO_REPLY_MORE,
	    &out));
	ck_assert_uint_eq(out.status, PROTO_OK);
	view_eq(out.json, got.buf, got.len, "[{\"name\":\"jobs\"}]");
	ck_assert(out.more);
	view_eq(out.cursor, got.buf, got.len, "jobs");
	edges(try_reply_page, PROTO_REPLY_MORE, NULL, 0);
	/* Without PROTO_REPLY_MORE, the cursor is a byte too many. */
	ck_assert(!body_reply_page_get(got.buf, got.len, 0, &out));
	bodies_end();

	/* The last page. */
	bodies_begin();
	in.more = false;
	body_reply_page_put(&got, &in);
	proto_put_u32(&want, PROTO_OK);
	proto_put_blob(&want, "[{\"name\":\"jobs\"}]", 17);
	bodies_same();
	ck_assert(body_reply_page_get(got.buf, got.len, 0, &out));
	ck_assert(!out.more);
	view_eq(out.json, got.buf, got.len, "[{\"name\":\"jobs\"}]");
	edges(try_reply_page, 0, NULL, 0);
	bodies_end();

	/* After an error, the status alone. */
	bodies_begin();
	in.status = PROTO_EINVAL;
	body_reply_page_put(&got, &in);
	proto_put_u32(&want, PROTO_EINVAL);
	bodies_same();
	ck_assert(body_reply_page_get(got.buf, got.len, PROTO_REPLY_MORE,
	    &out));
	ck_assert_uint_eq(out.status, PROTO_EINVAL);
	ck_assert(!out.more);
	ck_assert_uint_eq(out.json.len, 0);
	edges(try_reply_page, 0, NULL, 0);
	bodies_end();
}
END_TEST

START_TEST(body_reply_send_round_trip)
{
	/* Without the grant, the status alone is an answer too. */
	static const size_t bare[] = { 4 };
	struct body_reply_send in = { PROTO_OK, true, 4, 16, 4096, 1024 };
	struct body_reply_send out;

	bodies_begin();
	body_reply_send_put(&got, &in);
	proto_put_u32(&want, PROTO_OK);
	proto_put_u64(&want, 4);
	proto_put_u32(&want, 16);
	proto_put_u64(&want, 4096);
	proto_put_u64(&want, 1024);
	bodies_same();
	ck_assert_uint_eq(got.len, 32);
	ck_assert(body_reply_send_get(got.buf, got.len, PROTO_REPLY_ZEROCOPY,
	    &out));
	ck_assert_uint_eq(out.status, PROTO_OK);
	ck_assert(out.has_grant);
	ck_assert(out.mailbox_id == 4);
	ck_assert_uint_eq(out.count, 16);
	ck_assert(out.bytes == 4096);
	ck_assert(out.max_msg == 1024);
	edges(try_reply_send, 0, bare, 1);
	bodies_end();

	bodies_begin();
	in.has_grant = false;
	body_reply_send_put(&got, &in);
	proto_put_u32(&want, PROTO_OK);
	bodies_same();
	ck_assert(body_reply_send_get(got.buf, got.len, 0, &out));
	ck_assert(!out.has_grant);
	edges(try_reply_send, 0, NULL, 0);
	bodies_end();

	/* An error has no grant, whatever the struct says. */
	bodies_begin();
	in.status = PROTO_EAGAIN;
	in.has_grant = true;
	body_reply_send_put(&got, &in);
	proto_put_u32(&want, PROTO_EAGAIN);
	bodies_same();
	ck_assert(body_reply_send_get(got.buf, got.len, 0, &out));
	ck_assert_uint_eq(out.status, PROTO_EAGAIN);
	ck_assert(!out.has_grant);
	edges(try_reply_send, 0, NULL, 0);
	bodies_end();
}
END_TEST

START_TEST(body_reply_sendv_round_trip)
{
	struct body_reply_sendv in = { PROTO_EAGAIN, 3 }, out;

	bodies_begin();
	body_reply_sendv_put(&got, &in);
	proto_put_u32(&want, PROTO_EAGAIN);
	proto_put_u32(&want, 3);
	bodies_same();
	ck_assert(body_reply_sendv_get(got.buf, got.len, 0, &out));
	ck_assert_uint_eq(out.status, PROTO_EAGAIN);
	ck_assert_uint_eq(out.enqueued, 3);
	edges(try_reply_sendv, 0, NULL, 0);
	bodies_end();
}
END_TEST

START_TEST(body_msg_round_trip)
{
	struct body_msg in = { 77, STR("jobs.dead"), 3, 1234, 1000, 2,
	    STR("jobs"), 5, false, 0, STR("payload") }, out;
	struct proto_writer head;

	bodies_begin();
	body_msg_put(&got, &in);
	proto_put_u64(&want, 77);
	proto_put_str(&want, "jobs.dead", 9);
	proto_put_u64(&want, 3);
	proto_put_u32(&want, 1234);
	proto_put_u32(&want, 1000);
	proto_put_u32(&want, 2);
	proto_put_str(&want, "jobs", 4);
	proto_put_u32(&want, 5);
	proto_put_blob(&want, "payload", 7);
	bodies_same();
	ck_assert(body_msg_get(got.buf, got.len, PROTO_MSG_SYNC |
	    PROTO_MSG_MORE, &out));
	ck_assert(out.msg_id == 77);
	view_eq(out.mailbox, got.buf, got.len, "jobs.dead");
	ck_assert(out.sender_id == 3);
	ck_assert_uint_eq(out.pid, 1234);
	ck_assert_uint_eq(out.uid, 1000);
	ck_assert_uint_eq(out.attempt, 2);
	view_eq(out.origin, got.buf, got.len, "jobs");
	ck_assert_uint_eq(out.origin_attempts, 5);
	ck_assert(!out.has_fd);
	ck_assert(out.size == 7);
	view_eq(out.payload, got.buf, got.len, "payload");
	edges(try_msg, PROTO_MSG_MORE, NULL, 0);
	proto_writer_init(&head);
	in.payload.ptr = NULL;
	body_msg_put_head(&head, &in);
	memcpy(proto_put_raw(&head, 7), "payload", 7);
	ck_assert_uint_eq(head.len, got.len);
	ck_assert(memcmp(head.buf, got.buf, got.len) == 0);
	proto_writer_free(&head);
	bodies_end();
}
END_TEST

START_TEST(body_msg_fd_round_trip)
{
	struct body_msg in = { 78, STR("@5"), 3, 1234, 1000, 1, { "", 0 }, 0,
	    true, 1u << 20, { "", 0 } }, out;

	bodies_begin();
	body_msg_put(&got, &in);
	proto_put_u64(&want, 78);
	proto_put_str(&want, "@5", 2);
	proto_put_u64(&want, 3);
	proto_put_u32(&want, 1234);
	proto_put_u32(&want, 1000);
	proto_put_u32(&want, 1);
	proto_put_str(&want, "", 0);
	proto_put_u32(&want, 0);
	proto_put_u64(&want, 1u << 20);
	bodies_same();
	ck_assert(body_msg_get(got.buf, got.len, PROTO_MSG_FD |
	    PROTO_MSG_SHARED, &out));
	ck_assert(out.msg_id == 78);
	view_eq(out.mailbox, got.buf, got.len, "@5");
	ck_assert(out.has_fd);
	ck_assert(out.size == 1u << 20);
	edges(try_msg, PROTO_MSG_FD, NULL, 0);
	bodies_end();
}
END_TEST

START_TEST(body_revoke_round_trip)
{
	struct body_revoke in = { PROTO_REVOKE_CREDIT, STR("jobs"), 4, 0 }, out;

	bodies_begin();
	body_revoke_put(&got, &in);
	proto_put_u32(&want, PROTO_REVOKE_CREDIT);
	proto_put_str(&want, "jobs", 4);
	proto_put_u64(&want, 4);
	bodies_same();
	ck_assert(body_revoke_get(got.buf, got.len, 0, &out));
	ck_assert_uint_eq(out.what, PROTO_REVOKE_CREDIT);
	view_eq(out.mailbox, got.buf, got.len, "jobs");
	ck_assert(out.mailbox_id == 4);
	edges(try_revoke, 0, NULL, 0);
	bodies_end();
}
END_TEST

/* A message taken back: the one kind of REVOKE that names a message. */
START_TEST(body_revoke_msg_round_trip)
{
	struct body_revoke in = { PROTO_REVOKE_MSG, STR("jobs"), 4, 99 }, out;

	bodies_begin();
	body_revoke_put(&got, &in);
	proto_put_u32(&want, PROTO_REVOKE_MSG);
	proto_put_str(&want, "jobs", 4);
	proto_put_u64(&want, 4);
	proto_put_u64(&want, 99);
	bodies_same();
	ck_assert(body_revoke_get(got.buf, got.len, 0, &out));
	ck_assert_uint_eq(out.what, PROTO_REVOKE_MSG);
	ck_assert(out.mailbox_id == 4);
	ck_assert(out.msg_id == 99);
	edges(try_revoke, 0, NULL, 0);
	bodies_end();
}
END_TEST

START_TEST(body_nack_round_trip)
{
	struct body_nack in = { 42, 1500, false }, out;

	bodies_begin();
	body_nack_put(&got, &in);
	proto_put_u64(&want, 42);
	proto_put_u32(&want, 1500);
	bodies_same();
	ck_assert(body_nack_get(got.buf, got.len, PROTO_ACK_REPLY, &out));
	ck_assert(out.msg_id == 42);
	ck_assert_uint_eq(out.delay_ms, 1500);
	ck_assert(out.reply);
	/* An unknown flag, or a delay past a day, does not decode. */
	ck_assert(!body_nack_get(got.buf, got.len, 0x2, &out));
	proto_writer_consume(&got, got.len);
	in.delay_ms = PROTO_NACK_DELAY_MAX + 1;
	body_nack_put(&got, &in);
	ck_assert(!body_nack_get(got.buf, got.len, 0, &out));
	bodies_end();
}
END_TEST

/* What no field can hold fails the writer, never the wire. */
START_TEST(body_writer_limits)
{
	static char big[UINT16_MAX + 1];
	struct body_name n = { { big, sizeof(big) } };
	struct body_post p = { 4, false, 0, { NULL, 0 } };
	struct proto_writer w;

	proto_writer_init(&w);
	body_name_put(&w, &n);
	ck_assert(proto_writer_failed(&w));
	proto_writer_free(&w);
#if SIZE_MAX > UINT32_MAX
	proto_writer_init(&w);
	p.payload.len = (size_t)UINT32_MAX + 1;
	body_post_put_head(&w, &p);
	ck_assert(proto_writer_failed(&w));
	proto_writer_free(&w);
#else
	(void)p;
#endif
}
END_TEST

Suite *
proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc = tcase_create("codec");

	tcase_add_test(tc, header_round_trip);
	tcase_add_test(tc, header_needs_more);
	tcase_add_test(tc, header_rejects_before_allocating);
	tcase_add_test(tc, fields_round_trip);
	tcase_add_test(tc, reader_rejects_inconsistent_lengths);
	tcase_add_test(tc, names);
	tcase_add_test(tc, status_mapping);
	suite_add_tcase(s, tc);

	tc = tcase_create("bodies");
	tcase_add_test(tc, body_hello_round_trip);
	tcase_add_test(tc, body_create_round_trip);
	tcase_add_test(tc, body_name_round_trip);
	tcase_add_test(tc, body_bind_round_trip);
	tcase_add_test(tc, body_send_round_trip);
	tcase_add_test(tc, body_send_fd_round_trip);
	tcase_add_test(tc, body_recv_round_trip);
	tcase_add_test(tc, body_ack_round_trip);
	tcase_add_test(tc, body_rebind_round_trip);
	tcase_add_test(tc, body_list_round_trip);
	tcase_add_test(tc, body_chmod_round_trip);
	tcase_add_test(tc, body_chown_round_trip);
	tcase_add_test(tc, body_sendv_round_trip);
	tcase_add_test(tc, body_post_round_trip);
	tcase_add_test(tc, body_post_fd_round_trip);
	tcase_add_test(tc, body_reply_round_trip);
	tcase_add_test(tc, body_reply_hello_round_trip);
	tcase_add_test(tc, body_reply_page_round_trip);
	tcase_add_test(tc, body_reply_send_round_trip);
	tcase_add_test(tc, body_reply_sendv_round_trip);
	tcase_add_test(tc, body_msg_round_trip);
	tcase_add_test(tc, body_msg_fd_round_trip);
	tcase_add_test(tc, body_revoke_round_trip);
	tcase_add_test(tc, body_revoke_msg_round_trip);
	tcase_add_test(tc, body_nack_round_trip);
	tcase_add_test(tc, body_writer_limits);
	suite_add_tcase(s, tc);
	return s;
}
