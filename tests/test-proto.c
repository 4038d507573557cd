/*
 * test-proto.c - the wire codec, fed bytes directly.
 */
#include <errno.h>
#include <string.h>

#include <check.h>

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
	return s;
}
