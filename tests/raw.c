/*
 * raw.c - raw protocol frames for the end-to-end suites (see raw.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"
#include "raw.h"

/*
 * Frames appended
 */

static struct proto_str
raw_str(const char *s, size_t len)
{
	return (struct proto_str){ s, len };
}

void
raw_put_hello(struct proto_writer *w, uint32_t id)
{
	size_t s = proto_frame_begin(w);

	body_hello_put(w, &(struct body_hello){ .version = PROTO_VERSION });
	proto_frame_end(w, s, PROTO_HELLO, id, 0, 0);
}

void
raw_put_create(struct proto_writer *w, uint32_t id, const char *name,
    size_t len, int64_t cap, uint64_t max_msg, uint32_t mode)
{
	size_t s = proto_frame_begin(w);

	body_create_put(w, &(struct body_create){ .name = raw_str(name, len),
	    .capacity = cap, .max_msg = max_msg, .mode = mode,
	    .gid = PROTO_ID_NONE });
	proto_frame_end(w, s, PROTO_CREATE, id, 0, 0);
}

void
raw_put_name(struct proto_writer *w, uint16_t type, uint32_t id,
    const char *name, size_t len)
{
	size_t s = proto_frame_begin(w);

	body_name_put(w, &(struct body_name){ .name = raw_str(name, len) });
	proto_frame_end(w, s, type, id, 0, 0);
}

void
raw_put_bind(struct proto_writer *w, uint32_t id, const char *name,
    size_t len, uint32_t how)
{
	size_t s = proto_frame_begin(w);

	body_bind_put(w, &(struct body_bind){ .name = raw_str(name, len),
	    .how = how });
	proto_frame_end(w, s, PROTO_BIND, id, 0, 0);
}

void
raw_put_send(struct proto_writer *w, uint32_t id, uint32_t flags,
    const char *name, size_t len, int32_t timeout, const void *data,
    size_t dlen)
{
	size_t s = proto_frame_begin(w);

	body_send_put(w, &(struct body_send){ .name = raw_str(name, len),
	    .timeout_ms = timeout, .payload = raw_str(data, dlen) });
	proto_frame_end(w, s, PROTO_SEND, id, flags, 0);
}

void
raw_put_send_fd(struct proto_writer *w, uint32_t id, uint32_t flags,
    const char *name, size_t len, int32_t timeout, uint64_t size)
{
	size_t s = proto_frame_begin(w);

	body_send_put(w, &(struct body_send){ .name = raw_str(name, len),
	    .timeout_ms = timeout, .has_fd = true, .size = size });
	proto_frame_end(w, s, PROTO_SEND, id, PROTO_SEND_FD | flags, 1);
}

void
raw_put_recv(struct proto_writer *w, uint32_t id, const char *name,
    size_t len, int32_t timeout, uint64_t cap, uint32_t max_count,
    uint64_t budget)
{
	size_t s = proto_frame_begin(w);

	body_recv_put(w, &(struct body_recv){ .name = raw_str(name, len),
	    .timeout_ms = timeout, .cap = cap, .max_count = max_count,
	    .budget = budget });
	proto_frame_end(w, s, PROTO_RECV, id, 0, 0);
}

void
raw_put_ack(struct proto_writer *w, uint32_t id, uint32_t flags,
    const uint64_t *ids, size_t n)
{
	size_t s = proto_frame_begin(w);

	body_ack_put(w, &(struct body_ack){ .count = n, .ids = ids });
	proto_frame_end(w, s, PROTO_ACK, id, flags, 0);
}

void
raw_put_list(struct proto_writer *w, uint16_t type, uint32_t id,
    const char *cursor, size_t len)
{
	size_t s = proto_frame_begin(w);

	body_list_put(w, &(struct body_list){ .has_cursor = len > 0,
	    .cursor = raw_str(cursor, len) });
	proto_frame_end(w, s, type, id, 0, 0);
}

void
raw_flush(int fd, struct proto_writer *w)
{
	ck_assert(!proto_writer_failed(w));
	ck_assert_msg(harness_raw_write(fd, w->buf, w->len), "raw write: %s",
	    strerror(errno));
	w->len = 0;
}

/*
 * Frames written
 */

void
raw_frame(int fd, uint16_t type, uint32_t id, uint32_t flags, uint16_t nfds,
    const struct proto_writer *b)
{
	struct proto_writer w;
	size_t start;
	uint8_t *p;

	proto_writer_init(&w);
	start = proto_frame_begin(&w);
	if (b != NULL && b->len > 0 &&
	    (p = proto_put_raw(&w, b->len)) != NULL)
		memcpy(p, b->buf, b->len);
	proto_frame_end(&w, start, type, id, flags, nfds);
	raw_flush(fd, &w);
	proto_writer_free(&w);
}

void
raw_write_fd(int sock, struct proto_writer *w, int fd)
{
	struct iovec iov = { w->buf, w->len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	union proto_fd_control cbuf;

	if (fd >= 0)
		proto_attach_fd(&mh, &cbuf, fd);
	ck_assert_int_eq(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)w->len);
	proto_writer_free(w);
}

bool
raw_send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 16)];
	} cbuf;
	struct iovec iov = { (void *)(uintptr_t)buf, len };
	struct msghdr mh;
	struct cmsghdr *cm;

	ck_assert(nfds > 0 && nfds <= 16);
	memset(&cbuf, 0, sizeof(cbuf));
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len;
}

/* The tail is any bytes at all: the body may well not be valid. */
bool
raw_named(int sock, uint16_t type, uint32_t id, const char *name,
    const void *tail, size_t tail_len)
{
	struct proto_writer w;
	size_t start;
	bool ok;

	proto_writer_init(&w);
	start = proto_frame_begin(&w);
	proto_put_str(&w, name, strlen(name));
	memcpy(proto_put_raw(&w, tail_len), tail, tail_len);
	proto_frame_end(&w, start, type, id, 0, 0);
	ok = harness_raw_write(sock, w.buf, w.len);
	proto_writer_free(&w);
	return ok;
}

void
raw_name_req(int fd, uint16_t type, uint32_t id, const char *name,
    size_t len)
{
	struct proto_writer w;

	proto_writer_init(&w);
	raw_put_name(&w, type, id, name, len);
	raw_flush(fd, &w);
	proto_writer_free(&w);
}

void
raw_create(int fd, uint32_t id, const char *name, size_t len, int64_t cap)
{
	struct proto_writer w;

	proto_writer_init(&w);
	raw_put_create(&w, id, name, len, cap, MBX_DEFAULT_MAX_MSG, 0666);
	raw_flush(fd, &w);
	proto_writer_free(&w);
}

void
raw_bind(int fd, uint32_t id, const char *name, size_t len, uint32_t how)
{
	struct proto_writer w;

	proto_writer_init(&w);
	raw_put_bind(&w, id, name, len, how);
	raw_flush(fd, &w);
	proto_writer_free(&w);
}

void
raw_bind_ok(int sock, uint32_t id, const char *name)
{
	uint64_t none;

	raw_bind(sock, id, name, strlen(name), PROTO_BIND_EXCLUSIVE);
	ck_assert_uint_eq(raw_reply_skip(sock, id, NULL, &none), PROTO_OK);
}

void
raw_recv(int fd, uint32_t id, const char *name, size_t len, int32_t timeout,
    uint64_t cap)
{
	struct proto_writer w;

	proto_writer_init(&w);
	raw_put_recv(&w, id, name, len, timeout, cap, 1, cap);
	raw_flush(fd, &w);
	proto_writer_free(&w);
}

void
raw_send(int fd, uint32_t id, const char *name, size_t len,
    const void *data, size_t dlen, uint32_t flags, int32_t timeout)
{
	struct proto_writer w;

	proto_writer_init(&w);
	raw_put_send(&w, id, flags, name, len, timeout, data, dlen);
	raw_flush(fd, &w);
	proto_writer_free(&w);
}

void
raw_send_fd(int sock, const char *name, uint32_t id, uint32_t flags, int fd,
    uint64_t size)
{
	struct proto_writer w;

	proto_writer_init(&w);
	raw_put_send_fd(&w, id, flags, name, strlen(name), 0, size);
	raw_write_fd(sock, &w, fd);
}

void
raw_post_fd(int sock, uint32_t id, uint64_t mailbox_id, uint32_t flags,
    int fd, uint64_t size)
{
	struct proto_writer w;
	size_t start;

	proto_writer_init(&w);
	start = proto_frame_begin(&w);
	body_post_put(&w, &(struct body_post){ .mailbox_id = mailbox_id,
	    .has_fd = true, .size = size });
	proto_frame_end(&w, start, PROTO_POST, id, PROTO_POST_FD | flags, 1);
	raw_write_fd(sock, &w, fd);
}

void
raw_ack(int fd, uint32_t id, uint64_t msg_id)
{
	struct proto_writer w;

	proto_writer_init(&w);
	raw_put_ack(&w, id, 0, &msg_id, 1);
	raw_flush(fd, &w);
	proto_writer_free(&w);
}

uint32_t
raw_ack_reply(int fd, uint32_t id, uint64_t msg_id)
{
	struct proto_writer w;

	proto_writer_init(&w);
	raw_put_ack(&w, id, PROTO_ACK_REPLY, &msg_id, 1);
	raw_flush(fd, &w);
	proto_writer_free(&w);
	return raw_status(fd, id);
}

void
raw_sync(int fd, uint32_t id)
{
	raw_frame(fd, PROTO_LIST, id, 0, 0, NULL);
	ck_assert_uint_eq(raw_status(fd, id), PROTO_OK);
}

/*
 * Frames read
 */

uint32_t
raw_reply(int fd, uint32_t id, uint32_t *flags, uint64_t *mailbox_id)
{
	struct proto_reader rd;
	uint8_t *body;
	size_t len;
	uint16_t type;
	uint32_t rid, status, fl;

	ck_assert_int_eq(harness_raw_read(fd, &type, &rid, &fl, &body,
	    &len), 1);
	ck_assert_int_eq(type, PROTO_REPLY);
	ck_assert_uint_eq(rid, id);
	proto_reader_init(&rd, body, len);
	status = proto_get_u32(&rd);
	if (mailbox_id != NULL)
		*mailbox_id = rd.left > 0 ? proto_get_u64(&rd) : 0;
	if (flags != NULL)
		*flags = fl;
	free(body);
	return status;
}

uint32_t
raw_status(int fd, uint32_t id)
{
	return raw_reply(fd, id, NULL, NULL);
}

uint32_t
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

uint64_t
raw_msg_id(int fd, uint32_t id)
{
	struct proto_reader r;
	uint8_t *body;
	size_t len;
	uint16_t type;
	uint32_t rid, flags;
	uint64_t msg_id;

	ck_assert_int_eq(harness_raw_read(fd, &type, &rid, &flags, &body,
	    &len), 1);
	ck_assert_int_eq(type, PROTO_MSG);
	ck_assert_uint_eq(rid, id);
	proto_reader_init(&r, body, len);
	msg_id = proto_get_u64(&r);
	free(body);
	return msg_id;
}

uint32_t
raw_reply_send(int fd, uint32_t id, uint32_t *flags,
    struct body_reply_send *out)
{
	uint8_t *body;
	size_t len;
	uint16_t type;
	uint32_t rid, fl;

	ck_assert_int_eq(harness_raw_read(fd, &type, &rid, &fl, &body,
	    &len), 1);
	ck_assert_int_eq(type, PROTO_REPLY);
	ck_assert_uint_eq(rid, id);
	ck_assert(body_reply_send_get(body, len, fl, out));
	if (flags != NULL)
		*flags = fl;
	free(body);
	return out->status;
}

void
raw_expect(int fd, uint16_t type, uint32_t id, uint32_t *flags,
    uint8_t **body, size_t *len)
{
	uint16_t t;
	uint32_t i, fl;

	for (int k = 0; k < 16; k++) {
		ck_assert_msg(harness_raw_read(fd, &t, &i, &fl, body,
		    len) == 1, "no answer to request %u", id);
		if (t != PROTO_REVOKE || i != 0)
			break;
		free(*body);
	}
	ck_assert_msg(t == type && i == id, "expected frame %u for request "
	    "%u, got frame %u for %u", type, id, t, i);
	if (flags != NULL)
		*flags = fl;
}

uint32_t
raw_expect_status(int fd, uint32_t id)
{
	uint8_t *body;
	size_t len;
	uint32_t status;

	raw_expect(fd, PROTO_REPLY, id, NULL, &body, &len);
	ck_assert(body_reply_status(body, len, &status));
	free(body);
	return status;
}

int
raw_next(int sock, uint16_t *type, uint32_t *id, uint32_t *flags,
    uint8_t **body, size_t *len, int *fd)
{
	for (int i = 0; i < 64; i++) {
		int r = harness_raw_read_fd(sock, type, id, flags, body, len,
		    fd);

		if (r != 1 || *type != PROTO_REVOKE)
			return r;
		free(*body);
		if (*fd >= 0)
			close(*fd);
	}
	return -1;
}

uint32_t
raw_reply_skip(int sock, uint32_t id, uint32_t *flags, uint64_t *mailbox_id)
{
	struct proto_reader rd;
	uint8_t *body;
	size_t len;
	uint16_t type;
	uint32_t rid, status, fl;
	int fd;

	ck_assert_int_eq(raw_next(sock, &type, &rid, flags != NULL ? flags :
	    &fl, &body, &len, &fd), 1);
	ck_assert_int_eq(type, PROTO_REPLY);
	ck_assert_uint_eq(rid, id);
	ck_assert_int_eq(fd, -1);
	proto_reader_init(&rd, body, len);
	status = proto_get_u32(&rd);
	*mailbox_id = rd.left > 0 ? proto_get_u64(&rd) : 0;
	free(body);
	return status;
}

bool
raw_closed(int fd, int frames)
{
	uint8_t *body = NULL;
	size_t len;
	uint16_t type;
	uint32_t id, flags;

	for (int i = 0; i < frames; i++) {
		int r = harness_raw_read(fd, &type, &id, &flags, &body, &len);

		free(body);
		body = NULL;
		if (r != 1)
			return r == 0;
	}
	return false;
}
