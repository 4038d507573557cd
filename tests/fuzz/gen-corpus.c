/*
 * gen-corpus.c - writes the seed corpus of the fuzzers: valid frames of
 * every type for fuzz-decoder, and valid sessions (see fuzz-requests.c for
 * their format) that walk the request handlers for fuzz-requests.
 *
 *	gen-corpus DIR		writes a file per seed under
 *				DIR/fuzz-decoder and DIR/fuzz-requests
 *
 * The checked-in corpus (tests/fuzz/corpus/) is this program's output;
 * `make fuzz-corpus` rewrites it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "body.h"
#include "channel.h"
#include "proto.h"
#include "record.h"

/* Client ids in a fuzz-requests session: connections 0, 1, 2. */
#define ID0	1
#define ID1	2
#define ID2	3

static const char *outdir;
static struct proto_writer file;	/* the file being built */
static uint32_t next_req = 2;

static void
die(const char *what)
{
	fprintf(stderr, "gen-corpus: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
write_file(const char *sub, const char *name)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, sub);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die(path);
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, sub, name);
	if ((f = fopen(path, "wb")) == NULL)
		die(path);
	if (file.len > 0 && fwrite(file.buf, 1, file.len, f) != file.len)
		die(path);
	if (fclose(f) != 0)
		die(path);
	proto_writer_free(&file);
}

/*
 * Frames: a body is built in `body`, then framed into `frame`.
 */
static struct proto_writer body, frame;

static void
frame_end(uint16_t type, uint32_t id, uint32_t flags, uint16_t nfds)
{
	size_t start;

	proto_writer_free(&frame);
	start = proto_frame_begin(&frame);
	if (body.len > 0)
		memcpy(proto_put_raw(&frame, body.len), body.buf, body.len);
	proto_frame_end(&frame, start, type, id, flags, nfds);
	proto_writer_free(&body);
	if (proto_writer_failed(&frame))
		die("out of memory");
}

/* A string of the body, a view of s. */
static struct proto_str
str(const char *s)
{
	return (struct proto_str){ s, strlen(s) };
}

/* A decoder seed: the frame alone. */
static void
decoder_seed(const char *fname)
{
	memcpy(proto_put_raw(&file, frame.len), frame.buf, frame.len);
	write_file("fuzz-decoder", fname);
}

/*
 * Sessions: chunks of (op, len, bytes).
 */

static void
chunk(int conn, unsigned fd_kind, const struct proto_writer *bytes)
{
	uint8_t *p = proto_put_raw(&file, 3);
	size_t len = bytes != NULL ? bytes->len : 0;

	p[0] = (uint8_t)(conn | fd_kind << 2);
	p[1] = (uint8_t)len;
	p[2] = (uint8_t)(len >> 8);
	if (len > 0)
		memcpy(proto_put_raw(&file, len), bytes->buf, len);
}

/* Sends the frame just built on conn. */
static void
on(int conn)
{
	chunk(conn, 0, &frame);
}

static void
clock_advance(unsigned ms)
{
	uint8_t *p = proto_put_raw(&file, 3);

	p[0] = 3;
	p[1] = (uint8_t)ms;
	p[2] = (uint8_t)(ms >> 8);
}

static void
session_begin(uint8_t flags)
{
	proto_writer_free(&file);
	*proto_put_raw(&file, 1) = flags;
	next_req = 2;
}

/* The requests, framed into `frame` with a fresh id. */

static uint32_t
req(uint16_t type, uint32_t flags, uint16_t nfds)
{
	uint32_t id = next_req++;

	frame_end(type, id, flags, nfds);
	return id;
}

static void
create(const char *n, int64_t capacity, uint32_t mode)
{
	struct body_create b = { str(n), capacity, 1024 * 1024, mode,
	    PROTO_ID_NONE, 0, 0, str(""), false };

	body_create_put(&body, &b);
	req(PROTO_CREATE, 0, 0);
}

/* DESTROY, UNBIND or PURGE. */
static void
named(uint16_t type, const char *n, uint32_t flags)
{
	struct body_name b = { str(n) };

	body_name_put(&body, &b);
	req(type, flags, 0);
}

static void
bind_(const char *n, uint32_t how)
{
	struct body_bind b = { str(n), how };

	body_bind_put(&body, &b);
	req(PROTO_BIND, 0, 0);
}

static void
send_msg(const char *n, int32_t timeout, const char *data, uint32_t flags)
{
	struct body_send b = { str(n), timeout, false, 0, str(data) };

	body_send_put(&body, &b);
	req(PROTO_SEND, flags, 0);
}

static void
send_fd(const char *n, uint64_t size)
{
	struct body_send b = { str(n), 0, true, size, { "", 0 } };

	body_send_put(&body, &b);
	req(PROTO_SEND, PROTO_SEND_FD, 1);
}

static void
recv_msg(const char *n, int32_t timeout, uint32_t max)
{
	struct body_recv b = { str(n), timeout, 65536, max, 65536, false };

	body_recv_put(&body, &b);
	req(PROTO_RECV, 0, 0);
}

/* An ACK of the count ids at ids. */
static void
ack(const uint64_t *ids, size_t count, uint32_t flags)
{
	struct body_ack b = { count, ids, NULL };

	body_ack_put(&body, &b);
	req(PROTO_ACK, flags, 0);
}

/* An ACK of one id. */
static void
ack1(uint64_t msg_id, uint32_t flags)
{
	ack(&msg_id, 1, flags);
}

static void
rebind(const char *n, uint64_t target)
{
	struct body_rebind b = { str(n), target };

	body_rebind_put(&body, &b);
	req(PROTO_REBIND, 0, 0);
}

static void
chmod_(const char *n, uint32_t mode)
{
	struct body_chmod b = { str(n), mode };

	body_chmod_put(&body, &b);
	req(PROTO_CHMOD, 0, 0);
}

static void
chown_(const char *n, uint32_t uid, uint32_t gid)
{
	struct body_chown b = { str(n), uid, gid };

	body_chown_put(&body, &b);
	req(PROTO_CHOWN, 0, 0);
}

static void
sendv(const char *n, int count)
{
	struct body_sendv b = { (uint32_t)count, { NULL, 0, false } };
	struct body_sendv_item it = { str(n), str("batched") };

	body_sendv_put(&body, &b);
	for (int i = 0; i < count; i++)
		body_sendv_item_put(&body, &it);
	req(PROTO_SENDV, 0, 0);
}

static void
post(uint64_t mailbox_id, const char *data)
{
	struct body_post b = { mailbox_id, false, 0, str(data) };

	body_post_put(&body, &b);
	req(PROTO_POST, 0, 0);
}

static void
grant_check(uint64_t from)
{
	struct body_grant_check b = { from };

	body_grant_check_put(&body, &b);
	req(PROTO_GRANT_CHECK, 0, 0);
}

/* A LIST or CLIENTS, from the first page. */
static void
list(uint16_t type)
{
	struct body_list b = { false, { "", 0 } };

	body_list_put(&body, &b);
	req(type, 0, 0);
}

static void
hello(uint32_t id)
{
	struct body_hello b = { PROTO_VERSION };

	body_hello_put(&body, &b);
	frame_end(PROTO_HELLO, id, 0, 0);
}

/* Every frame type once, valid, for the decoder. */
static void
decoder_corpus(void)
{
	static const char *const names[] = { "hello", "create", "destroy",
	    "bind", "unbind", "send", "send-fd", "recv", "ack", "rebind",
	    "list", "clients", "chmod", "chown", "purge", "sendv", "post" };
	size_t i = 0;

	hello(1);
	decoder_seed(names[i++]);
	create("jobs", 16, 0640);
	decoder_seed(names[i++]);
	named(PROTO_DESTROY, "jobs", 0);
	decoder_seed(names[i++]);
	bind_("jobs", PROTO_BIND_QUEUE);
	decoder_seed(names[i++]);
	named(PROTO_UNBIND, "jobs", PROTO_UNBIND_EVICT);
	decoder_seed(names[i++]);
	send_msg("@12", -1, "hello", PROTO_SEND_SYNC);
	decoder_seed(names[i++]);
	send_fd("jobs", 300000);
	decoder_seed(names[i++]);
	recv_msg("", 250, 64);
	decoder_seed(names[i++]);
	{
		static const uint64_t ids[] = { 7, 8 };

		ack(ids, 2, 0);
	}
	decoder_seed(names[i++]);
	{
		struct body_nack nb = { 7, 250, false };

		body_nack_put(&body, &nb);
		req(PROTO_NACK, PROTO_ACK_REPLY, 0);
	}
	decoder_seed("nack");
	rebind("jobs", 5);
	decoder_seed(names[i++]);
	list(PROTO_LIST);
	decoder_seed(names[i++]);
	list(PROTO_CLIENTS);
	decoder_seed(names[i++]);
	chmod_("jobs", 0666);
	decoder_seed(names[i++]);
	chown_("jobs", 1000, PROTO_ID_NONE);
	decoder_seed(names[i++]);
	named(PROTO_PURGE, "jobs", 0);
	decoder_seed(names[i++]);
	sendv("jobs", 3);
	decoder_seed(names[i++]);
	post(4, "posted");
	decoder_seed(names[i++]);

	/* The daemon's frames. */
	{
		struct body_reply_hello rh = { PROTO_OK, PROTO_VERSION, 42 };

		body_reply_hello_put(&body, &rh);
		frame_end(PROTO_REPLY, 1, 0, 0);
		decoder_seed("reply-hello");
	}
	{
		struct body_reply_page rp = { PROTO_OK,
		    str("[{\"name\":\"jobs\"}]"), false, { "", 0 } };

		body_reply_page_put(&body, &rp);
		frame_end(PROTO_REPLY, 9, 0, 0);
		decoder_seed("reply-list");
	}
	{
		struct body_reply_send rs = { PROTO_OK, true, 4, 16, 4096,
		    1024 * 1024 };

		body_reply_send_put(&body, &rs);
		frame_end(PROTO_REPLY, 3, 0, 0);
		decoder_seed("reply-credit");
	}
	{
		struct body_reply r = { PROTO_EDQUOT };

		body_reply_put(&body, &r);
		frame_end(PROTO_REPLY, 3, 0, 0);
		decoder_seed("reply-edquot");
	}
	{
		struct body_msg m = { 77, str("jobs"), 3, 1234, 1000, 2,
		    str("jobs.dead"), 3, false, 0, str("payload") };

		body_msg_put(&body, &m);
		frame_end(PROTO_MSG, 5, PROTO_MSG_SYNC | PROTO_MSG_MORE, 0);
		decoder_seed("msg");
	}
	grant_check(4096);
	decoder_seed("grant-check");
	{
		struct body_reply_channel rc = { PROTO_OK, CHANNEL_RING_SIZE };

		body_reply_channel_put(&body, &rc);
		frame_end(PROTO_REPLY, 5, 0, 0);
		decoder_seed("reply-channel");
	}
	{
		struct body_reply_grant_check rg = { PROTO_OK, 2,
		    { 4096, 4160 } };

		body_reply_grant_check_put(&body, &rg);
		frame_end(PROTO_REPLY, 6, 0, 0);
		decoder_seed("reply-grant-check");
	}
	{
		struct body_revoke rv = { PROTO_REVOKE_BINDING, str("jobs"),
		    4, 0 };

		body_revoke_put(&body, &rv);
		frame_end(PROTO_REVOKE, 0, 0, 0);
		decoder_seed("revoke");
	}
	{
		struct body_revoke rv = { PROTO_REVOKE_MSG, str("jobs"), 4,
		    77 };

		body_revoke_put(&body, &rv);
		frame_end(PROTO_REVOKE, 0, 0, 0);
		decoder_seed("revoke-msg");
	}
}

/* Sessions that walk the request handlers, for fuzz-requests. */
static void
requests_corpus(void)
{
	char direct[16];

	/* Create, bind, send, receive, acknowledge, look. */
	session_begin(0);
	create("m", 4, 0666);
	on(0);
	bind_("m", PROTO_BIND_EXCLUSIVE);
	on(1);
	send_msg("m", 0, "hello", 0);
	on(0);
	recv_msg("m", 0, 8);
	on(1);
	ack1(1, 0);
	on(1);
	list(PROTO_LIST);
	on(0);
	list(PROTO_CLIENTS);
	on(2);
	write_file("fuzz-requests", "basic");

	/* A rendezvous: a parked receive, a sync send, its ACK. */
	session_begin(0);
	create("r", 0, 0666);
	on(0);
	bind_("r", PROTO_BIND_EXCLUSIVE);
	on(1);
	recv_msg("r", -1, 1);
	on(1);
	send_msg("r", 100, "meet", PROTO_SEND_SYNC);
	on(0);
	ack1(1, PROTO_ACK_REPLY);
	on(1);
	send_msg("r", 50, "late", PROTO_SEND_SYNC);
	on(0);
	clock_advance(200);
	write_file("fuzz-requests", "rendezvous");

	/* A full queue, a parked send, its deadline. */
	session_begin(0);
	create("q", 1, 0600);
	on(0);
	send_msg("q", 0, "one", 0);
	on(0);
	send_msg("q", 50, "two", 0);
	on(0);
	send_msg("q", -1, "three", 0);
	on(0);
	clock_advance(100);
	named(PROTO_DESTROY, "q", 0);
	on(0);
	write_file("fuzz-requests", "timeouts");

	/* Standby, rebind, evict, unbind, destroy with waiters. */
	session_begin(1);
	create("s", 8, 0666);
	on(0);
	bind_("s", PROTO_BIND_EXCLUSIVE);
	on(1);
	bind_("s", PROTO_BIND_QUEUE);
	on(2);
	recv_msg("s", -1, 4);
	on(2);
	send_msg("s", 0, "a", 0);
	on(0);
	recv_msg("s", 0, 4);
	on(1);
	rebind("s", ID2);
	on(0);
	named(PROTO_UNBIND, "s", PROTO_UNBIND_EVICT);
	on(0);
	bind_("s", PROTO_BIND_REPLACE);
	on(1);
	recv_msg("s", -1, 1);
	on(1);
	named(PROTO_DESTROY, "s", 0);
	on(0);
	write_file("fuzz-requests", "bindings");

	/* Permissions: refused, then allowed after chmod and chown. */
	session_begin(1);
	create("p", 8, 0600);
	on(1);
	send_msg("p", 0, "no", 0);
	on(2);
	chmod_("p", 0622);
	on(2);
	chmod_("p", 0622);
	on(1);
	send_msg("p", 0, "yes", 0);
	on(2);
	chown_("p", 1001, 1000);
	on(0);
	named(PROTO_PURGE, "p", 0);
	on(2);
	named(PROTO_DESTROY, "p", 0);
	on(1);
	write_file("fuzz-requests", "permissions");

	/* Batches and credit: SENDV, a SEND that brings credit, a POST. */
	session_begin(0);
	create("v", 100, 0600);
	on(0);
	sendv("v", 3);
	on(0);
	send_msg("v", 0, "credit please", 0);
	on(0);
	post(4, "posted");
	on(0);
	grant_check(0);
	on(0);
	bind_("v", PROTO_BIND_EXCLUSIVE);
	on(0);
	recv_msg("v", 0, 64);
	on(0);
	{
		static const uint64_t ids[] = { 1, 2, 3, 4 };

		ack(ids, 4, 0);
	}
	on(0);
	write_file("fuzz-requests", "batches");

	/* Zero copy: a sealed memfd, refused kinds, delivery. */
	session_begin(0);
	create("z", 8, 0600);
	on(0);
	bind_("z", PROTO_BIND_EXCLUSIVE);
	on(0);
	send_fd("z", 64);
	chunk(0, 1, &frame);
	send_fd("z", 64);
	chunk(0, 2, &frame);
	send_fd("z", 64);
	chunk(0, 3, &frame);
	recv_msg("z", 0, 4);
	on(0);
	ack1(1, 0);
	on(0);
	write_file("fuzz-requests", "zerocopy");

	/* Direct addresses and receive-any. */
	session_begin(0);
	recv_msg("", -1, 4);
	on(1);
	snprintf(direct, sizeof(direct), "@%d", ID1);
	send_msg(direct, 0, "to you", 0);
	on(0);
	recv_msg(direct, 0, 1);
	on(2);
	send_msg("@99", 0, "nobody", 0);
	on(0);
	write_file("fuzz-requests", "direct");

	/* Protocol violations on one connection, the others going on. */
	session_begin(0);
	{
		struct proto_writer g;

		proto_writer_init(&g);
		memset(proto_put_raw(&g, 32), 0xff, 32);
		chunk(2, 0, &g);
		proto_writer_free(&g);
	}
	list(PROTO_LIST);
	on(1);
	hello(7);
	on(0);
	write_file("fuzz-requests", "violations");
}

/*
 * fuzz-ring: a hostile ring holding two valid records and a pad, one
 * whose head is off a record boundary, and an honest script (reserve, publish, take) that laps the ring.
 */
static void
ring_corpus(void)
{
	uint8_t rec[16] = { 0 };

	proto_put_raw(&file, 1)[0] = 0;			/* hostile */
	proto_put_u64(&file, CHANNEL_RING_SIZE - 48);	/* head */
	proto_put_u64(&file, CHANNEL_RING_SIZE + 48);	/* tail */
	proto_put_raw(&file, 1)[0] = 255;		/* the reader's cap */
	rec[0] = 32;
	rec[4] = CHANNEL_PAD;
	memcpy(proto_put_raw(&file, 16), rec, 16);
	memset(proto_put_raw(&file, 32), 0, 32);
	rec[0] = 20;
	rec[4] = CHANNEL_POST;
	memcpy(proto_put_raw(&file, 16), rec, 16);
	memset(proto_put_raw(&file, 32), 'x', 32);
	write_file("fuzz-ring", "pad-then-post");

	/* A head off a record boundary: the reader must refuse it. */
	proto_put_raw(&file, 1)[0] = 0;
	proto_put_u64(&file, CHANNEL_RING_SIZE - 8);	/* head */
	proto_put_u64(&file, CHANNEL_RING_SIZE + 16);	/* tail */
	proto_put_raw(&file, 1)[0] = 255;
	memset(proto_put_raw(&file, 24), 0xe1, 24);
	write_file("fuzz-ring", "misaligned-head");

	proto_put_raw(&file, 1)[0] = 1;			/* honest */
	proto_put_u64(&file, 0);
	for (int i = 0; i < 200; i++) {
		uint8_t *op = proto_put_raw(&file, 6);

		op[0] = (uint8_t)(4 * i);		/* reserve */
		op[1] = (uint8_t)(i % 64);
		op[2] = (uint8_t)i;
		op[3] = i % 3 == 2 ? 1 : 2;		/* publish or take */
		op[4] = 0;
		op[5] = 0;
	}
	write_file("fuzz-ring", "lap");
}

/*
 * fuzz-state: restart states as mbxd writes them (proto/record.h): empty,
 * one mailbox with messages, a delayed one, a work queue and its dead
 * letters.
 */
static void
state_msg(uint64_t id, const char *text, const char *origin)
{
	struct record_msg m = { .seq = id, .sender_id = 4, .pid = 77,
	    .uid = 1000, .attempts = origin != NULL ? 3 : 0,
	    .payload = { text, strlen(text) } };

	if (origin != NULL) {
		m.origin = (struct proto_str){ origin, strlen(origin) };
		m.origin_attempts = 3;
	}
	record_msg_put(&file, &m);
}

static void
state_mailbox(const char *name, int64_t capacity, const char *dead_letter,
    uint32_t max_attempts)
{
	struct record_mailbox rm = { .name = { name, strlen(name) },
	    .attr = { .capacity = capacity, .max_msg = 65536, .mode = 0640,
	    .uid = 1000, .gid = 1000, .max_attempts = max_attempts },
	    .sent = 9, .received = 4, .redelivered = 1 };

	if (dead_letter != NULL)
		rm.attr.dead_letter = (struct proto_str){ dead_letter,
		    strlen(dead_letter) };
	record_mailbox_put(&file, &rm);
}

/* The records built in file, unframed as fuzz-state takes them. */
static void
state_write(const char *name)
{
	struct proto_writer chunks;
	size_t off = 0;

	proto_writer_init(&chunks);
	while (off + RECORD_HEAD + 1 <= file.len) {
		const uint8_t *p = file.buf + off;
		size_t n = (size_t)p[0] | (size_t)p[1] << 8 |
		    (size_t)p[2] << 16 | (size_t)p[3] << 24;
		uint8_t *c = proto_put_raw(&chunks, 3 + n - 1);

		if (c == NULL)
			die("out of memory");
		c[0] = p[RECORD_HEAD];
		c[1] = (uint8_t)(n - 1);
		c[2] = (uint8_t)((n - 1) >> 8);
		memcpy(c + 3, p + RECORD_HEAD + 1, n - 1);
		off += RECORD_HEAD + n;
	}
	proto_writer_free(&file);
	file = chunks;
	write_file("fuzz-state", name);
}

static void
state_corpus(void)
{
	const struct record_state st = { RECORD_STATE_MAJOR,
	    RECORD_STATE_MINOR, 12, 5, 40 };

	record_state_put(&file, &st);
	record_count_put(&file, 0, 0);
	state_write("empty");

	record_state_put(&file, &st);
	state_mailbox("jobs", 16, NULL, 0);
	state_msg(30, "one", NULL);
	state_msg(31, "two", NULL);
	state_msg(33, "", NULL);
	record_count_put(&file, 1, 3);
	state_write("queue");

	record_state_put(&file, &st);
	state_mailbox("work", -1, "dead", 3);
	state_msg(20, "first", NULL);
	state_msg(21, "later", NULL);
	record_delay_put(&file, 123456789);
	state_mailbox("dead", -1, NULL, 0);
	state_msg(19, "failed", "work");
	record_count_put(&file, 2, 3);
	state_write("work");
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen-corpus DIR\n");
		return 2;
	}
	outdir = argv[1];
	if (mkdir(outdir, 0755) < 0 && errno != EEXIST)
		die(outdir);
	decoder_corpus();
	requests_corpus();
	ring_corpus();
	state_corpus();
	return 0;
}
