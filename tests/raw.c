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
	ck_assert(!proto_writer_failed(&w));
	ck_assert_msg(harness_raw_write(fd, w.buf, w.len), "raw write: %s",
	    strerror(errno));
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
	struct proto_writer b;

	proto_writer_init(&b);
	proto_put_str(&b, name, len);
	raw_frame(fd, type, id, 0, 0, &b);
	proto_writer_free(&b);
}

void
raw_create(int fd, uint32_t id, const char *name, size_t len, int64_t cap)
{
	struct proto_writer b;

	proto_writer_init(&b);
	proto_put_str(&b, name, len);
	proto_put_i64(&b, cap);
	proto_put_u64(&b, MBX_DEFAULT_MAX_MSG);
	proto_put_u32(&b, 0666);
	proto_put_u32(&b, PROTO_ID_NONE);
	raw_frame(fd, PROTO_CREATE, id, 0, 0, &b);
	proto_writer_free(&b);
}

void
raw_bind(int fd, uint32_t id, const char *name, size_t len, uint32_t how)
{
	struct proto_writer b;

	proto_writer_init(&b);
	proto_put_str(&b, name, len);
	proto_put_u32(&b, how);
	raw_frame(fd, PROTO_BIND, id, 0, 0, &b);
	proto_writer_free(&b);
}

void
raw_bind_ok(int sock, uint32_t id, const char *name)
{
	struct proto_writer t;
	uint64_t none;

	proto_writer_init(&t);
	proto_put_u32(&t, PROTO_BIND_EXCLUSIVE);
	ck_assert(raw_named(sock, PROTO_BIND, id, name, t.buf, t.len));
	proto_writer_free(&t);
	ck_assert_uint_eq(raw_reply_skip(sock, id, NULL, &none), PROTO_OK);
}

void
raw_recv(int fd, uint32_t id, const char *name, size_t len, int32_t timeout,
    uint64_t cap)
{
	struct proto_writer b;

	proto_writer_init(&b);
	proto_put_str(&b, name, len);
	proto_put_i32(&b, timeout);
	proto_put_u64(&b, cap);		/* cap */
	proto_put_u32(&b, 1);		/* max_count */
	proto_put_u64(&b, cap);		/* budget */
	raw_frame(fd, PROTO_RECV, id, 0, 0, &b);
	proto_writer_free(&b);
}

void
raw_send(int fd, uint32_t id, const char *name, size_t len,
    const void *data, size_t dlen, uint32_t flags, int32_t timeout)
{
	struct proto_writer b;

	proto_writer_init(&b);
	proto_put_str(&b, name, len);
	proto_put_i32(&b, timeout);
	proto_put_blob(&b, data, dlen);
	raw_frame(fd, PROTO_SEND, id, flags, 0, &b);
	proto_writer_free(&b);
}

void
raw_send_fd(int sock, const char *name, uint32_t id, uint32_t flags, int fd,
    uint64_t size)
{
	struct proto_writer w;
	size_t start;

	proto_writer_init(&w);
	start = proto_frame_begin(&w);
	proto_put_str(&w, name, strlen(name));
	proto_put_i32(&w, 0);
	proto_put_u64(&w, size);
	proto_frame_end(&w, start, PROTO_SEND, id, PROTO_SEND_FD | flags, 1);
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
	proto_put_u64(&w, mailbox_id);
	proto_put_u64(&w, size);
	proto_frame_end(&w, start, PROTO_POST, id, PROTO_POST_FD | flags, 1);
	raw_write_fd(sock, &w, fd);
}

void
raw_ack(int fd, uint32_t id, uint64_t msg_id)
{
	struct proto_writer b;

	proto_writer_init(&b);
	proto_put_u64(&b, msg_id);
	raw_frame(fd, PROTO_ACK, id, 0, 0, &b);
	proto_writer_free(&b);
}

uint32_t
raw_ack_reply(int fd, uint32_t id, uint64_t msg_id)
{
	struct proto_writer b;

	proto_writer_init(&b);
	proto_put_u64(&b, msg_id);
	raw_frame(fd, PROTO_ACK, id, PROTO_ACK_REPLY, 0, &b);
	proto_writer_free(&b);
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
