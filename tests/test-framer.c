/*
 * test-framer.c - the frame splitter (proto/framer.c), fed bytes and
 * descriptors directly: frames cut at every split point, descriptors that
 * come early, late or too many, malformed headers.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

#include "framer.h"
#include "suites.h"

/* Appends a frame to buf at *len (body of blen bytes of k). */
static void
put_frame(uint8_t *buf, size_t *len, uint16_t type, uint32_t id,
    uint16_t nfds, size_t blen, uint8_t k)
{
	struct proto_header h = { (uint32_t)blen, type, nfds, id, 0 };

	proto_header_encode(buf + *len, &h);
	memset(buf + *len + PROTO_HEADER_SIZE, k, blen);
	*len += PROTO_HEADER_SIZE + blen;
}

static bool
fd_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

static int
new_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	return fd;
}

/*
 * The stream of the split tests: a frame without descriptors, one with
 * one, an empty one, one with two.
 */
struct stream {
	uint8_t		 buf[256];
	size_t		 len;
	size_t		 start[4];	/* where each frame starts */
	uint16_t	 nfds[4];
	int		 fds[3];	/* in the order they are sent */
};

static void
stream_make(struct stream *s)
{
	static const uint16_t nfds[4] = { 0, 1, 0, 2 };
	static const size_t blen[4] = { 5, 17, 0, 3 };

	memset(s, 0, sizeof(*s));
	for (int i = 0; i < 4; i++) {
		s->start[i] = s->len;
		s->nfds[i] = nfds[i];
		put_frame(s->buf, &s->len, i == 1 || i == 3 ? PROTO_MSG :
		    PROTO_REPLY, (uint32_t)i + 1, nfds[i], blen[i],
		    (uint8_t)('a' + i));
	}
	for (int i = 0; i < 3; i++)
		s->fds[i] = new_fd();
}

/*
 * Feeds s to f as reads ending at the given offsets (the last one
 * s->len), the descriptors of a frame with the read that holds its
 * first byte, as the kernel does; checks every frame that comes out.
 */
static void
stream_feed(struct stream *s, const size_t *ends, size_t nends)
{
	struct framer f;
	size_t have = 0, pos = 0, sent = 0;
	int frame = 0;

	framer_init(&f, PROTO_MAX_BODY, FRAMER_MAX_FDS);
	for (size_t r = 0; r < nends; r++) {
		struct framer_frame fr;
		enum framer_result res;

		/* This read's descriptors: those of the frames it begins. */
		for (int i = 0; i < 4; i++)
			if (s->start[i] >= have && s->start[i] < ends[r])
				for (int k = 0; k < s->nfds[i]; k++)
					ck_assert_int_eq(framer_push_fd(&f,
					    s->fds[sent++]), FRAMER_FRAME);
		have = ends[r];
		while ((res = framer_next(&f, s->buf + pos, have - pos,
		    &fr)) == FRAMER_FRAME) {
			ck_assert_int_lt(frame, 4);
			ck_assert_uint_eq(pos, s->start[frame]);
			ck_assert_uint_eq(fr.h.id, (uint32_t)frame + 1);
			ck_assert_uint_eq(fr.h.nfds, s->nfds[frame]);
			ck_assert_ptr_eq(fr.body, s->buf + pos +
			    PROTO_HEADER_SIZE);
			for (uint32_t b = 0; b < fr.h.len; b++)
				ck_assert_uint_eq(fr.body[b], 'a' + frame);
			/* Frame 1 has the first descriptor, 3 the others. */
			for (int k = 0; k < fr.h.nfds; k++)
				ck_assert_int_eq(fr.fds[k],
				    s->fds[(frame == 1 ? 0 : 1) + k]);
			pos += fr.size;
			frame++;
		}
		ck_assert_int_eq(res, FRAMER_MORE);
		/* A header in: its size is known before the body comes. */
		if (have - pos >= PROTO_HEADER_SIZE)
			ck_assert_uint_eq(fr.size, PROTO_HEADER_SIZE + fr.h.len);
		else
			ck_assert_uint_eq(fr.size, 0);
		ck_assert(!framer_stray_fds(&f, have - pos));
	}
	ck_assert_int_eq(frame, 4);
	ck_assert_uint_eq(pos, s->len);
	ck_assert_uint_eq(framer_nfds(&f), 0);
	ck_assert(!framer_stray_fds(&f, 0));
	framer_deinit(&f);
}

static void
stream_close(struct stream *s)
{
	for (int i = 0; i < 3; i++) {
		ck_assert(fd_open(s->fds[i]));
		close(s->fds[i]);
	}
}

START_TEST(split_at_every_byte)
{
	struct stream s;

	stream_make(&s);
	/* Two reads, cut at every point. */
	for (size_t cut = 0; cut <= s.len; cut++) {
		size_t ends[2] = { cut, s.len };

		stream_feed(&s, ends, 2);
	}
	stream_close(&s);
}
END_TEST

START_TEST(one_byte_at_a_time)
{
	struct stream s;
	size_t ends[256];

	stream_make(&s);
	for (size_t i = 0; i < s.len; i++)
		ends[i] = i + 1;
	stream_feed(&s, ends, s.len);
	/* And all of it in one read, every descriptor with it. */
	ends[0] = s.len;
	stream_feed(&s, ends, 1);
	stream_close(&s);
}
END_TEST

/* Descriptors of a later frame, come early, wait for it in order. */
START_TEST(fds_early)
{
	uint8_t buf[128];
	size_t len = 0, pos = 0;
	struct framer f;
	struct framer_frame fr;
	int a = new_fd(), b = new_fd();

	put_frame(buf, &len, PROTO_MSG, 1, 1, 4, 'x');
	put_frame(buf, &len, PROTO_REPLY, 2, 0, 4, 'y');
	put_frame(buf, &len, PROTO_MSG, 3, 1, 4, 'z');
	framer_init(&f, PROTO_MAX_BODY, FRAMER_MAX_FDS);
	ck_assert_int_eq(framer_push_fd(&f, a), FRAMER_FRAME);
	ck_assert_int_eq(framer_push_fd(&f, b), FRAMER_FRAME);
	ck_assert_int_eq(framer_next(&f, buf, len, &fr), FRAMER_FRAME);
	ck_assert_int_eq(fr.fds[0], a);
	pos += fr.size;
	ck_assert_int_eq(framer_next(&f, buf + pos, len - pos, &fr),
	    FRAMER_FRAME);
	ck_assert_uint_eq(fr.h.nfds, 0);
	pos += fr.size;
	/* Still b's frame to come: not stray. */
	ck_assert(!framer_stray_fds(&f, len - pos));
	ck_assert_int_eq(framer_next(&f, buf + pos, len - pos, &fr),
	    FRAMER_FRAME);
	ck_assert_int_eq(fr.fds[0], b);
	pos += fr.size;
	ck_assert_uint_eq(pos, len);
	ck_assert_uint_eq(framer_nfds(&f), 0);
	framer_deinit(&f);
	ck_assert(fd_open(a) && fd_open(b));
	close(a);
	close(b);
}
END_TEST

/*
 * A frame whose descriptor has not come with its first byte: malformed
 * once it is whole, and nothing is taken; one that comes after it can
 * only be stray.
 */
START_TEST(fds_late)
{
	uint8_t buf[64];
	size_t len = 0;
	struct framer f;
	struct framer_frame fr;
	int a = new_fd();

	put_frame(buf, &len, PROTO_MSG, 1, 2, 8, 'x');
	framer_init(&f, PROTO_MAX_BODY, FRAMER_MAX_FDS);
	/* Not whole yet: not judged yet. */
	ck_assert_int_eq(framer_next(&f, buf, len - 1, &fr), FRAMER_MORE);
	ck_assert_uint_eq(fr.size, len);
	ck_assert_int_eq(framer_push_fd(&f, a), FRAMER_FRAME);
	ck_assert_int_eq(framer_next(&f, buf, len, &fr), FRAMER_MALFORMED);
	ck_assert_uint_eq(framer_nfds(&f), 1);
	framer_close_fds(&f);
	ck_assert(!fd_open(a));
	ck_assert_uint_eq(framer_nfds(&f), 0);

	/* A frame without any, then a descriptor: nobody claims it. */
	len = 0;
	put_frame(buf, &len, PROTO_REPLY, 2, 0, 0, 0);
	ck_assert_int_eq(framer_next(&f, buf, len, &fr), FRAMER_FRAME);
	ck_assert(!framer_stray_fds(&f, 0));
	ck_assert_int_eq(framer_push_fd(&f, new_fd()), FRAMER_FRAME);
	ck_assert(framer_stray_fds(&f, 0));
	ck_assert(!framer_stray_fds(&f, 1));
	framer_deinit(&f);
}
END_TEST

/* A frame peeked and dropped unread still takes its descriptors. */
START_TEST(peek_then_bind)
{
	uint8_t buf[64];
	size_t len = 0;
	struct framer f;
	struct framer_frame fr;
	int a = new_fd(), b = new_fd();

	put_frame(buf, &len, PROTO_SEND, 7, 1, 40, 'x');
	framer_init(&f, PROTO_MAX_BODY, FRAMER_MAX_FDS);
	ck_assert_int_eq(framer_push_fd(&f, a), FRAMER_FRAME);
	ck_assert_int_eq(framer_push_fd(&f, b), FRAMER_FRAME);
	ck_assert_int_eq(framer_peek(&f, buf, PROTO_HEADER_SIZE, &fr),
	    FRAMER_MORE);
	ck_assert_uint_eq(fr.h.id, 7);
	ck_assert_uint_eq(fr.size, PROTO_HEADER_SIZE + 40);
	ck_assert_ptr_null(fr.body);
	ck_assert_uint_eq(framer_nfds(&f), 2);
	ck_assert_int_eq(framer_bind(&f, &fr), FRAMER_FRAME);
	ck_assert_int_eq(fr.fds[0], a);
	ck_assert_uint_eq(framer_nfds(&f), 1);
	/* Peeking a whole frame takes nothing either. */
	ck_assert_int_eq(framer_peek(&f, buf, len, &fr), FRAMER_FRAME);
	ck_assert_uint_eq(framer_nfds(&f), 1);
	framer_deinit(&f);
	ck_assert(!fd_open(b));
	ck_assert(fd_open(a));
	close(a);
}
END_TEST

/* More descriptors than the caller's queue: the excess closed, malformed. */
START_TEST(fds_too_many)
{
	struct framer f;
	int fds[PROTO_MAX_FDS + 1];

	framer_init(&f, PROTO_MAX_BODY, PROTO_MAX_FDS);
	for (int i = 0; i <= PROTO_MAX_FDS; i++)
		fds[i] = new_fd();
	for (int i = 0; i < PROTO_MAX_FDS; i++)
		ck_assert_int_eq(framer_push_fd(&f, fds[i]), FRAMER_FRAME);
	ck_assert_int_eq(framer_push_fd(&f, fds[PROTO_MAX_FDS]),
	    FRAMER_MALFORMED);
	ck_assert(!fd_open(fds[PROTO_MAX_FDS]));
	ck_assert_uint_eq(framer_nfds(&f), PROTO_MAX_FDS);
	framer_deinit(&f);
	for (int i = 0; i < PROTO_MAX_FDS; i++)
		ck_assert(!fd_open(fds[i]));
	/* The queue is at most FRAMER_MAX_FDS, whatever is asked. */
	framer_init(&f, PROTO_MAX_BODY, 1000);
	ck_assert_uint_eq(f.max_fds, FRAMER_MAX_FDS);
}
END_TEST

/* Sends n descriptors of /dev/null over s with one byte. */
static void
send_fds(int s, int n)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 8)];
	struct iovec iov = { (void *)(uintptr_t)"x", 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	int fds[8];

	memset(cbuf, 0, sizeof(cbuf));
	mh.msg_control = cbuf;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
	for (int i = 0; i < n; i++)
		fds[i] = new_fd();
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)n);
	ck_assert_int_eq(sendmsg(s, &mh, 0), 1);
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* Receives one byte with a control buffer of cap bytes into f. */
static enum framer_result
recv_fds(int s, struct framer *f, size_t cap)
{
	union framer_control cbuf;
	char c;
	struct iovec iov = { &c, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	ck_assert_uint_le(cap, sizeof(cbuf.buf));
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = cap;
	ck_assert_int_eq(recvmsg(s, &mh, MSG_CMSG_CLOEXEC), 1);
	return framer_take_fds(f, &mh);
}

/* The control data of real reads: whole, one too many, truncated. */
START_TEST(take_fds_from_recvmsg)
{
	struct framer f;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv), 0);
	framer_init(&f, PROTO_MAX_BODY, PROTO_MAX_FDS);
	send_fds(sv[0], PROTO_MAX_FDS - 1);
	ck_assert_int_eq(recv_fds(sv[1], &f, sizeof(union framer_control)),
	    FRAMER_FRAME);
	ck_assert_uint_eq(framer_nfds(&f), PROTO_MAX_FDS - 1);
	for (size_t i = 0; i < framer_nfds(&f); i++)
		ck_assert_int_eq(fcntl(f.fds[i], F_GETFD) & FD_CLOEXEC,
		    FD_CLOEXEC);
	send_fds(sv[0], 2);
	ck_assert_int_eq(recv_fds(sv[1], &f, sizeof(union framer_control)),
	    FRAMER_MALFORMED);
	ck_assert_uint_eq(framer_nfds(&f), PROTO_MAX_FDS);
	framer_close_fds(&f);
	/*
	 * Room for one or two (alignment), four sent: the kernel truncates,
	 * MSG_CTRUNC.
	 */
	send_fds(sv[0], PROTO_MAX_FDS);
	ck_assert_int_eq(recv_fds(sv[1], &f, CMSG_SPACE(sizeof(int))),
	    FRAMER_MALFORMED);
	ck_assert_uint_le(framer_nfds(&f), 2);
	framer_deinit(&f);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

/* A bad header is malformed as soon as it is whole, before any body. */
START_TEST(malformed_headers)
{
	static const struct proto_header bad[] = {
		{ 101, PROTO_SEND, 0, 1, 0 },		/* over max_body */
		{ PROTO_MAX_BODY + 1, PROTO_SEND, 0, 1, 0 },
		{ 0, 999, 0, 1, 0 },			/* unknown type */
		{ 0, 0, 0, 1, 0 },
		{ 4, PROTO_SEND, PROTO_MAX_FDS + 1, 1, 0 },	/* fds */
		{ 4, PROTO_SEND, 0xffff, 1, 0 },
	};
	uint8_t buf[PROTO_HEADER_SIZE + 8];
	struct framer f;
	struct framer_frame fr;

	memset(buf, 0, sizeof(buf));
	framer_init(&f, 100, FRAMER_MAX_FDS);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		proto_header_encode(buf, &bad[i]);
		for (size_t n = 0; n < PROTO_HEADER_SIZE; n++) {
			ck_assert_int_eq(framer_next(&f, buf, n, &fr),
			    FRAMER_MORE);
			ck_assert_uint_eq(fr.size, 0);
		}
		for (size_t n = PROTO_HEADER_SIZE; n <= sizeof(buf); n++)
			ck_assert_int_eq(framer_next(&f, buf, n, &fr),
			    FRAMER_MALFORMED);
	}
	/* The limit is the caller's: 100 passes, a whole frame. */
	{
		uint8_t big[PROTO_HEADER_SIZE + 100];
		size_t len = 0;

		put_frame(big, &len, PROTO_SEND, 1, 0, 100, 'x');
		ck_assert_int_eq(framer_next(&f, big, len, &fr), FRAMER_FRAME);
		ck_assert_uint_eq(fr.size, sizeof(big));
	}
	framer_deinit(&f);
}
END_TEST

Suite *
framer_suite(void)
{
	Suite *s = suite_create("framer");
	TCase *tc = tcase_create("framer");

	tcase_add_test(tc, split_at_every_byte);
	tcase_add_test(tc, one_byte_at_a_time);
	tcase_add_test(tc, fds_early);
	tcase_add_test(tc, fds_late);
	tcase_add_test(tc, peek_then_bind);
	tcase_add_test(tc, fds_too_many);
	tcase_add_test(tc, take_fds_from_recvmsg);
	tcase_add_test(tc, malformed_headers);
	suite_add_tcase(s, tc);
	return s;
}
