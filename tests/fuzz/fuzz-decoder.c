/*
 * fuzz-decoder.c - libFuzzer target over the wire decoder (proto/):
 * the header decoder and every body shape the protocol defines, read
 * with the proto_get_*() readers.
 *
 * Beyond "no crash, no sanitizer report", each input checks invariants
 * that the daemon and the library rely on:
 * - a header is accepted only with a length within the limit, a known
 *   type and at most PROTO_MAX_FDS descriptors, and re-encodes to the
 *   same 16 bytes; a larger max_body never rejects what a smaller one
 *   accepted;
 * - a reader never reads past its body, and a body that reads exactly
 *   (proto_reader_done) re-encodes with the writers to the same bytes:
 *   the encoding is canonical, so two peers cannot disagree on a frame;
 * - names and direct addresses follow the written rules (PROTOCOL.md),
 *   checked against an independent implementation here;
 * - status codes map to an errno and back.
 * A broken invariant aborts, which libFuzzer reports as a crash.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz-decoder: %s:%d: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

/* The name rules of PROTOCOL.md, written out independently. */
static bool
spec_name_valid(const char *s, size_t len)
{
	static const char extra[] = "._:/-";

	if (len < 1 || len > 255)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || (c != 0 && memchr(extra, c,
		    sizeof(extra) - 1) != NULL)))
			return false;
	}
	return true;
}

/* "@" then a positive decimal without sign or leading zero, <= 19 digits. */
static uint64_t
spec_direct_id(const char *s, size_t len)
{
	uint64_t v = 0;

	if (len < 2 || len > 20 || s[0] != '@' || s[1] == '0')
		return 0;
	for (size_t i = 1; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	return v;
}

static void
check_name(struct proto_str s)
{
	CHECK(proto_name_valid(s.ptr, s.len) == spec_name_valid(s.ptr, s.len));
	CHECK(proto_direct_id(s.ptr, s.len) == spec_direct_id(s.ptr, s.len));
	/* A name is never also a direct address. */
	CHECK(!(proto_name_valid(s.ptr, s.len) &&
	    proto_direct_id(s.ptr, s.len) != 0));
}

static void
check_status(uint32_t status)
{
	int err = proto_status_to_errno(status);

	if (status >= PROTO_STATUS_MAX) {
		CHECK(err == EPROTO);
		return;
	}
	CHECK(status == PROTO_OK ? err == 0 : err > 0);
	/* Back again, except the two statuses that share an errno's
	 * meaning with another on purpose. */
	if (status != PROTO_ESHUTDOWN)
		CHECK(proto_errno_to_status(err) == status);
	CHECK(proto_errno_to_status(-err) == proto_errno_to_status(err));
}

/*
 * A body shape: one letter per field.  u u32, U u64, i i32, I i64,
 * s str (a name), t str (any text), b blob.  '*' repeats the rest until
 * the body ends; '#' reads a u32 count and repeats the rest that often.
 */
struct shape {
	const char	*name;
	const char	*fields;
	bool		 statuses;	/* the first u32 is a status */
};

static const struct shape shapes[] = {
	{ "HELLO", "u", false },
	{ "CREATE", "sIUuu", false },
	{ "DESTROY/UNBIND/PURGE", "s", false },
	{ "BIND/CHMOD", "su", false },
	{ "SEND", "sib", false },
	{ "SEND fd", "siU", false },
	{ "RECV", "siUuU", false },
	{ "ACK", "*U", false },
	{ "REBIND", "sU", false },
	{ "LIST/CLIENTS", "", false },
	{ "CHOWN", "suu", false },
	{ "SENDV", "i#sb", false },
	{ "POST", "Ub", false },
	{ "REPLY", "u", true },
	{ "REPLY HELLO", "uuU", true },
	{ "REPLY LIST", "ub", true },
	{ "REPLY credit", "uUuU", true },
	{ "REPLY SENDV", "uu", true },
	{ "MSG", "UsUuub", false },
	{ "MSG fd", "UsUuuU", false },
	{ "REVOKE", "usU", false },
};

/* One field read back into the writer: the round trip. */
static void
field(char f, struct proto_reader *r, struct proto_writer *w, bool status)
{
	struct proto_str s;

	switch (f) {
	case 'u': {
		uint32_t v = proto_get_u32(r);

		if (status && !r->bad)
			check_status(v);
		proto_put_u32(w, v);
		break;
	}
	case 'U':
		proto_put_u64(w, proto_get_u64(r));
		break;
	case 'i':
		proto_put_i32(w, proto_get_i32(r));
		break;
	case 'I':
		proto_put_i64(w, proto_get_i64(r));
		break;
	case 's':
	case 't':
		s = proto_get_str(r);
		CHECK(r->bad || s.len <= UINT16_MAX);
		if (!r->bad && f == 's')
			check_name(s);
		proto_put_str(w, s.ptr, s.len);
		break;
	case 'b':
		s = proto_get_blob(r);
		proto_put_blob(w, s.ptr, s.len);
		break;
	default:
		CHECK(!"unknown field letter");
	}
}

static void
read_shape(const struct shape *sh, const uint8_t *body, size_t len)
{
	struct proto_reader r;
	struct proto_writer w;
	const char *f = sh->fields;
	bool first = true;

	proto_reader_init(&r, body, len);
	proto_writer_init(&w);
	for (; *f != '\0' && !r.bad; f++) {
		if (*f == '*') {
			/* The rest, until the body is used up. */
			for (size_t n = 0; n < len && r.left > 0 && !r.bad; n++)
				for (const char *g = f + 1; *g != '\0'; g++)
					field(*g, &r, &w, false);
			break;
		}
		if (*f == '#') {
			uint32_t count = proto_get_u32(&r);

			proto_put_u32(&w, count);
			for (uint32_t n = 0; n < count && !r.bad; n++)
				for (const char *g = f + 1; *g != '\0'; g++)
					field(*g, &r, &w, false);
			break;
		}
		field(*f, &r, &w, first && sh->statuses);
		first = false;
	}
	/* Never past the end; what was consumed is what it says. */
	CHECK(r.left <= len);
	CHECK(r.bad || r.p == body + (len - r.left));
	if (proto_reader_done(&r)) {
		CHECK(!r.bad && r.left == 0);
		CHECK(!proto_writer_failed(&w));
		CHECK(w.len == len);
		CHECK(len == 0 || memcmp(w.buf, body, len) == 0);
	}
	proto_writer_free(&w);
}

static void
check_header(const uint8_t *data, size_t size)
{
	static const uint32_t maxes[] = { 0, 16, 4096, PROTO_MAX_BODY,
	    UINT32_MAX };
	bool accepted = false;

	for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
		struct proto_header h;
		enum proto_decode d = proto_header_decode(data, size, maxes[i],
		    &h);
		uint8_t again[PROTO_HEADER_SIZE];

		if (size < PROTO_HEADER_SIZE) {
			CHECK(d == PROTO_DECODE_MORE);
			continue;
		}
		CHECK(d != PROTO_DECODE_MORE);
		/* A larger limit accepts whatever a smaller one did. */
		CHECK(!accepted || d == PROTO_DECODE_OK);
		if (d != PROTO_DECODE_OK)
			continue;
		accepted = true;
		CHECK(h.len <= maxes[i] && h.len <= PROTO_MAX_BODY);
		CHECK(h.nfds <= PROTO_MAX_FDS);
		CHECK(proto_type_known(h.type));
		proto_header_encode(again, &h);
		CHECK(memcmp(again, data, PROTO_HEADER_SIZE) == 0);
	}
}

/* A frame built by the writer decodes to what was put in. */
static void
check_frame_build(const uint8_t *data, size_t size)
{
	struct proto_writer w;
	struct proto_header h;
	uint16_t type;
	uint32_t id, flags;
	size_t start, body;

	if (size < 8)
		return;
	type = (uint16_t)(data[0] % (PROTO_POST + 1));
	if (type == 0)
		type = PROTO_REPLY;
	id = (uint32_t)data[1] | (uint32_t)data[2] << 8;
	flags = (uint32_t)data[3];
	body = size - 8;
	proto_writer_init(&w);
	/* Something already written and consumed, as in a real buffer. */
	proto_put_raw(&w, 1 + data[4] % 32);
	proto_writer_consume(&w, w.len);
	start = proto_frame_begin(&w);
	if (body > 0) {
		uint8_t *p = proto_put_raw(&w, body);

		CHECK(p != NULL);
		memcpy(p, data + 8, body);
	}
	proto_frame_end(&w, start, type, id, flags, (uint16_t)(data[5] %
	    (PROTO_MAX_FDS + 1)));
	CHECK(!proto_writer_failed(&w));
	CHECK(proto_header_decode(w.buf + start, w.len - start,
	    PROTO_MAX_BODY, &h) == PROTO_DECODE_OK);
	CHECK(h.len == body && h.type == type && h.id == id &&
	    h.flags == flags && h.nfds == data[5] % (PROTO_MAX_FDS + 1));
	CHECK(memcmp(w.buf + start + PROTO_HEADER_SIZE, data + 8, body) == 0);
	proto_writer_free(&w);
}

/* A byte stream cut into frames as conn.c does: header, then body. */
static void
check_stream(const uint8_t *data, size_t size)
{
	size_t off = 0;

	for (int n = 0; n < 100000 && off < size; n++) {
		struct proto_header h;
		enum proto_decode d = proto_header_decode(data + off,
		    size - off, PROTO_MAX_BODY, &h);

		if (d != PROTO_DECODE_OK ||
		    size - off < PROTO_HEADER_SIZE + (size_t)h.len)
			return;
		off += PROTO_HEADER_SIZE + h.len;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_header(data, size);
	check_stream(data, size);
	check_frame_build(data, size);
	/* The whole input as a body of every shape, and past a header. */
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		read_shape(&shapes[i], data, size);
		if (size >= PROTO_HEADER_SIZE)
			read_shape(&shapes[i], data + PROTO_HEADER_SIZE,
			    size - PROTO_HEADER_SIZE);
	}
	for (uint32_t s = 0; s <= PROTO_STATUS_MAX + 1; s++)
		check_status(s);
	return 0;
}
