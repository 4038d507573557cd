/*
 * fuzz-decoder.c - libFuzzer target over the wire decoder (proto/):
 * the header decoder and every body the protocol defines, body by body
 * through the decoders of proto/body.h.
 *
 * Beyond "no crash, no sanitizer report", each input checks invariants
 * that the daemon and the library rely on:
 * - a header is accepted only with a length within the limit, a known
 *   type and at most PROTO_MAX_FDS descriptors, and re-encodes to the
 *   same 16 bytes; a larger max_body never rejects what a smaller one
 *   accepted;
 * - a decoder never reads past its body, its strings and blobs point
 *   into the body, and a body that decodes re-encodes with its encoder
 *   (and with the _put_head() form plus the payload) to the same bytes:
 *   the encoding is canonical, so two peers cannot disagree on a frame;
 * - names and direct addresses follow the written rules (PROTOCOL.md),
 *   checked against an independent implementation here;
 * - status codes map to an errno and back.
 * A broken invariant aborts, which libFuzzer reports as a crash.
 */
#include <errno.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "body.h"
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
 * The bodies, through the decoders of proto/body.h.  Each target decodes
 * the bytes as one body; what decodes must hold only views into the
 * bytes, and re-encode with the matching encoder (and its _put_head()
 * variant plus the payload, where there is one) to the same bytes.
 */

/* A string or blob decoded from the len bytes at body points into them. */
static void
check_view(struct proto_str s, const uint8_t *body, size_t len)
{
	const char *b = (const char *)body;

	if (s.len == 0)
		return;
	CHECK(s.ptr >= b && s.len <= len && s.ptr - b <= (ptrdiff_t)(len -
	    s.len));
}

/* A name field: in the body, and checked against the written rules. */
static void
check_name_view(struct proto_str s, const uint8_t *body, size_t len)
{
	check_view(s, body, len);
	CHECK(s.len <= UINT16_MAX);
	check_name(s);
}

/* The re-encoding w is the body itself. */
static void
check_same(const struct proto_writer *w, const uint8_t *body, size_t len)
{
	CHECK(!proto_writer_failed(w));
	CHECK(w->len == len);
	CHECK(len == 0 || memcmp(w->buf, body, len) == 0);
}

/* A _put_head() in head, then the payload: the body again. */
static void
check_head(struct proto_writer *head, struct proto_str payload,
    const uint8_t *body, size_t len)
{
	if (payload.len > 0) {
		uint8_t *p = proto_put_raw(head, payload.len);

		CHECK(p != NULL);
		memcpy(p, payload.ptr, payload.len);
	}
	check_same(head, body, len);
}

/*
 * One decoder: true when the len bytes at body are one such body, which
 * it then re-encodes into w (and checks the _put_head() form itself).
 */
typedef bool (*body_fuzz)(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w);

static bool
fuzz_hello(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_hello b;

	if (!body_hello_get(body, len, flags, &b))
		return false;
	CHECK(len == 4);
	body_hello_put(w, &b);
	return true;
}

static bool
fuzz_create(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_create b;

	if (!body_create_get(body, len, flags, &b))
		return false;
	check_name_view(b.name, body, len);
	body_create_put(w, &b);
	return true;
}

static bool
fuzz_name(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_name b;

	if (!body_name_get(body, len, flags, &b))
		return false;
	check_name_view(b.name, body, len);
	body_name_put(w, &b);
	return true;
}

static bool
fuzz_bind(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_bind b;

	if (!body_bind_get(body, len, flags, &b))
		return false;
	check_name_view(b.name, body, len);
	body_bind_put(w, &b);
	return true;
}

static bool
fuzz_send(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_send b;
	struct proto_writer head;

	if (!body_send_get(body, len, flags, &b))
		return false;
	check_name_view(b.name, body, len);
	check_view(b.payload, body, len);
	CHECK(b.has_fd == ((flags & PROTO_SEND_FD) != 0));
	CHECK(b.has_fd ? b.payload.len == 0 : b.size == b.payload.len);
	body_send_put(w, &b);
	proto_writer_init(&head);
	body_send_put_head(&head, &b);
	check_head(&head, b.payload, body, len);
	proto_writer_free(&head);
	return true;
}

static bool
fuzz_recv(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_recv b;

	if (!body_recv_get(body, len, flags, &b))
		return false;
	check_name_view(b.name, body, len);
	body_recv_put(w, &b);
	return true;
}

static bool
fuzz_ack(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_ack b;
	uint64_t *ids;

	if (!body_ack_get(body, len, flags, &b))
		return false;
	CHECK(b.count > 0 && b.count * 8 == len);
	ids = malloc(b.count * sizeof(*ids));
	CHECK(ids != NULL);
	for (size_t i = 0; i < b.count; i++)
		ids[i] = body_ack_id(&b, i);
	b.ids = ids;
	body_ack_put(w, &b);
	free(ids);
	return true;
}

static bool
fuzz_rebind(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_rebind b;

	if (!body_rebind_get(body, len, flags, &b))
		return false;
	check_name_view(b.name, body, len);
	body_rebind_put(w, &b);
	return true;
}

static bool
fuzz_list(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_list b;

	if (!body_list_get(body, len, flags, &b))
		return false;
	CHECK(b.has_cursor == (len > 0));
	check_name_view(b.cursor, body, len);
	body_list_put(w, &b);
	return true;
}

static bool
fuzz_chmod(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_chmod b;

	if (!body_chmod_get(body, len, flags, &b))
		return false;
	check_name_view(b.name, body, len);
	body_chmod_put(w, &b);
	return true;
}

static bool
fuzz_chown(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_chown b;

	if (!body_chown_get(body, len, flags, &b))
		return false;
	check_name_view(b.name, body, len);
	body_chown_put(w, &b);
	return true;
}

/* Every item once with body_sendv_item_put(), once as head and payload. */
static bool
fuzz_sendv(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_sendv b;
	struct body_sendv_item it;
	struct proto_writer head;
	uint32_t n = 0;

	if (!body_sendv_get(body, len, flags, &b))
		return false;
	proto_writer_init(&head);
	body_sendv_put(w, &b);
	body_sendv_put(&head, &b);
	while (body_sendv_next(&b, &it)) {
		CHECK(n < b.count);
		check_name_view(it.name, body, len);
		check_view(it.payload, body, len);
		body_sendv_item_put(w, &it);
		body_sendv_item_put_head(&head, &it);
		if (it.payload.len > 0)
			memcpy(proto_put_raw(&head, it.payload.len),
			    it.payload.ptr, it.payload.len);
		n++;
	}
	CHECK(n == b.count);
	check_same(&head, body, len);
	proto_writer_free(&head);
	return true;
}

static bool
fuzz_post(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_post b;
	struct proto_writer head;

	if (!body_post_get(body, len, flags, &b))
		return false;
	check_view(b.payload, body, len);
	CHECK(b.has_fd == ((flags & PROTO_POST_FD) != 0));
	CHECK(b.has_fd ? b.payload.len == 0 && len == 16 :
	    b.size == b.payload.len && len == BODY_POST_HEAD + b.payload.len);
	body_post_put(w, &b);
	proto_writer_init(&head);
	body_post_put_head(&head, &b);
	check_head(&head, b.payload, body, len);
	proto_writer_free(&head);
	return true;
}

static bool
fuzz_reply(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_reply b;
	uint32_t status;

	CHECK(body_reply_status(body, len, &status) == (len >= 4));
	if (!body_reply_get(body, len, flags, &b))
		return false;
	CHECK(b.status == status);
	check_status(b.status);
	body_reply_put(w, &b);
	return true;
}

static bool
fuzz_reply_hello(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_reply_hello b;

	if (!body_reply_hello_get(body, len, flags, &b))
		return false;
	check_status(b.status);
	body_reply_hello_put(w, &b);
	return true;
}

static bool
fuzz_reply_page(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_reply_page b;

	if (!body_reply_page_get(body, len, flags, &b))
		return false;
	check_status(b.status);
	check_view(b.json, body, len);
	check_name_view(b.cursor, body, len);
	CHECK(b.status == PROTO_OK || len == 4);
	CHECK(b.more == (b.status == PROTO_OK &&
	    (flags & PROTO_REPLY_MORE) != 0));
	body_reply_page_put(w, &b);
	return true;
}

static bool
fuzz_reply_send(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_reply_send b;

	if (!body_reply_send_get(body, len, flags, &b))
		return false;
	check_status(b.status);
	/* Told apart by the length alone. */
	CHECK(len == (b.has_grant ? 32u : 4u));
	body_reply_send_put(w, &b);
	return true;
}

static bool
fuzz_reply_sendv(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_reply_sendv b;

	if (!body_reply_sendv_get(body, len, flags, &b))
		return false;
	check_status(b.status);
	body_reply_sendv_put(w, &b);
	return true;
}

static bool
fuzz_reply_channel(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_reply_channel b;

	if (!body_reply_channel_get(body, len, flags, &b))
		return false;
	check_status(b.status);
	body_reply_channel_put(w, &b);
	return true;
}

static bool
fuzz_grant_check(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_grant_check b;

	if (!body_grant_check_get(body, len, flags, &b))
		return false;
	body_grant_check_put(w, &b);
	return true;
}

static bool
fuzz_reply_grant_check(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_reply_grant_check b;

	if (!body_reply_grant_check_get(body, len, flags, &b))
		return false;
	check_status(b.status);
	CHECK(b.n <= BODY_DROPPED_MAX);
	for (uint32_t i = 1; i < b.n; i++)
		CHECK(b.pos[i] > b.pos[i - 1]);
	body_reply_grant_check_put(w, &b);
	return true;
}

static bool
fuzz_msg(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_msg b;
	struct proto_writer head;

	if (!body_msg_get(body, len, flags, &b))
		return false;
	check_name_view(b.mailbox, body, len);
	check_view(b.payload, body, len);
	CHECK(b.has_fd == ((flags & PROTO_MSG_FD) != 0));
	CHECK(b.has_fd ? b.payload.len == 0 : b.size == b.payload.len);
	body_msg_put(w, &b);
	proto_writer_init(&head);
	body_msg_put_head(&head, &b);
	check_head(&head, b.payload, body, len);
	proto_writer_free(&head);
	return true;
}

static bool
fuzz_revoke(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_revoke b;

	if (!body_revoke_get(body, len, flags, &b))
		return false;
	check_name_view(b.mailbox, body, len);
	body_revoke_put(w, &b);
	return true;
}

static bool
fuzz_nack(const uint8_t *body, size_t len, uint32_t flags,
    struct proto_writer *w)
{
	struct body_nack b;

	if (!body_nack_get(body, len, flags, &b))
		return false;
	CHECK(len == 12 && b.delay_ms <= PROTO_NACK_DELAY_MAX);
	body_nack_put(w, &b);
	return true;
}

/*
 * Every body of the protocol: the frame type it travels in, and the
 * header flags that choose its layout (each is also tried without them).
 */
static const struct {
	const char	*name;
	uint16_t	 type;
	uint32_t	 flags;
	body_fuzz	 fn;
} bodies[] = {
	{ "HELLO", PROTO_HELLO, 0, fuzz_hello },
	{ "CREATE", PROTO_CREATE, 0, fuzz_create },
	{ "DESTROY", PROTO_DESTROY, 0, fuzz_name },
	{ "BIND", PROTO_BIND, 0, fuzz_bind },
	{ "UNBIND", PROTO_UNBIND, 0, fuzz_name },
	{ "SEND", PROTO_SEND, PROTO_SEND_FD, fuzz_send },
	{ "RECV", PROTO_RECV, 0, fuzz_recv },
	{ "ACK", PROTO_ACK, 0, fuzz_ack },
	{ "REBIND", PROTO_REBIND, 0, fuzz_rebind },
	{ "LIST", PROTO_LIST, 0, fuzz_list },
	{ "CLIENTS", PROTO_CLIENTS, 0, fuzz_list },
	{ "CHMOD", PROTO_CHMOD, 0, fuzz_chmod },
	{ "CHOWN", PROTO_CHOWN, 0, fuzz_chown },
	{ "PURGE", PROTO_PURGE, 0, fuzz_name },
	{ "SENDV", PROTO_SENDV, 0, fuzz_sendv },
	{ "POST", PROTO_POST, PROTO_POST_FD, fuzz_post },
	{ "REPLY", PROTO_REPLY, 0, fuzz_reply },
	{ "REPLY HELLO", PROTO_REPLY, 0, fuzz_reply_hello },
	{ "REPLY LIST", PROTO_REPLY, PROTO_REPLY_MORE, fuzz_reply_page },
	{ "REPLY SEND", PROTO_REPLY, 0, fuzz_reply_send },
	{ "REPLY SENDV", PROTO_REPLY, 0, fuzz_reply_sendv },
	{ "REPLY CHANNEL", PROTO_REPLY, 0, fuzz_reply_channel },
	{ "GRANT_CHECK", PROTO_GRANT_CHECK, 0, fuzz_grant_check },
	{ "REPLY GRANT_CHECK", PROTO_REPLY, 0, fuzz_reply_grant_check },
	{ "MSG", PROTO_MSG, PROTO_MSG_FD, fuzz_msg },
	{ "REVOKE", PROTO_REVOKE, 0, fuzz_revoke },
	{ "NACK", PROTO_NACK, PROTO_ACK_REPLY, fuzz_nack },
};

#define NBODIES	(sizeof(bodies) / sizeof(bodies[0]))

/*
 * The len bytes at body through decoder i with flags; what decodes
 * re-encodes to the same bytes.  Each decode reads a copy of exactly len
 * bytes, so that a read past the body is ASan's to report.
 */
static void
check_body(size_t i, const uint8_t *body, size_t len, uint32_t flags)
{
	uint8_t *copy = malloc(len > 0 ? len : 1);
	struct proto_writer w;

	CHECK(copy != NULL);
	if (len > 0)
		memcpy(copy, body, len);
	proto_writer_init(&w);
	if (bodies[i].fn(copy, len, flags, &w))
		check_same(&w, copy, len);
	proto_writer_free(&w);
	free(copy);
}

/* The whole input as a body of every kind, with and without its flags. */
static void
check_bodies(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i < NBODIES; i++) {
		check_body(i, data, size, 0);
		if (bodies[i].flags != 0)
			check_body(i, data, size, bodies[i].flags);
	}
}

/*
 * The input as a frame (the seeds are frames): its body through every
 * decoder of its type, with the header's own flags.
 */
static void
check_frame_body(const uint8_t *data, size_t size)
{
	struct proto_header h;

	if (proto_header_decode(data, size, PROTO_MAX_BODY, &h) !=
	    PROTO_DECODE_OK || size - PROTO_HEADER_SIZE < h.len)
		return;
	for (size_t i = 0; i < NBODIES; i++)
		if (bodies[i].type == h.type)
			check_body(i, data + PROTO_HEADER_SIZE, h.len, h.flags);
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
	/* The whole input as a body of every kind, and past a header. */
	check_bodies(data, size);
	if (size >= PROTO_HEADER_SIZE)
		check_bodies(data + PROTO_HEADER_SIZE,
		    size - PROTO_HEADER_SIZE);
	check_frame_body(data, size);
	for (uint32_t s = 0; s <= PROTO_STATUS_MAX + 1; s++)
		check_status(s);
	return 0;
}
