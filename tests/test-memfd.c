/*
 * test-memfd.c - hostile clients (issue 9): shared buffers and memfds are
 * checked on every path, against a real mbxd, with raw descriptors and
 * raw frames where libmbx would never send what is tested.
 *
 * What each part stands for:
 * - a memfd the daemon accepts can be mapped by every receiver, whatever
 *   its sender does to it afterwards; anything else is refused at send
 *   time (EINVAL) and never reaches the head of a queue;
 * - sizes near UINT64_MAX / SIZE_MAX are refused, never wrapped;
 * - the shared-buffer rule holds on SEND, on credit POSTs and on direct
 *   addresses, whoever receives;
 * - no descriptor is closed twice or leaked, and no shared buffer is
 *   released twice, on the failure paths.
 */
#include <check.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "mbxd-proc.h"
#include "memfd.h"
#include "proto.h"
#include "shm.h"
#include "suites.h"
#include "users.h"

#define PAYLOAD	64

/* mbxd's open descriptors; a failed read fails the test. */
static int
fd_count(pid_t pid)
{
	int n = proc_fd_count(pid);

	ck_assert_msg(n >= 0, "cannot read /proc/%d/fd", (int)pid);
	return n;
}

/* Waits (bounded) for mbxd to hold n descriptors; true if it does. */
static bool __attribute__((unused))
fd_count_reaches(pid_t pid, int n)
{
	int64_t end = harness_now_ms() + bound_ms(5000);

	do {
		if (fd_count(pid) == n)
			return true;
		usleep(5 * 1000);
	} while (harness_now_ms() < end);
	return false;
}

static void
mk(mbx_t *c, const char *name, long capacity, unsigned mode)
{
	struct mbx_attr a;

	mbx_attr_init(&a);
	a.capacity = capacity;
	a.mode = mode;
	ASSERT_OK(mbx_create(c, name, &a));
}

/*
 * A memfd laid out as libmbx lays one out: PAYLOAD bytes of c after the
 * header page, its state word busy, sealed (write, grow, shrink, seal)
 * or shared (grow, shrink).
 */
static int
memfd_of(char c, bool sealed)
{
	unsigned char data[PAYLOAD];
	const uint32_t busy = SHM_BUSY;
	int fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	ck_assert_int_ge(fd, 0);
	memset(data, c, sizeof(data));
	ck_assert_int_eq(ftruncate(fd, PROTO_SHARED_HEADER + sizeof(data)), 0);
	ck_assert(pwrite(fd, &busy, sizeof(busy), 0) == sizeof(busy));
	ck_assert(pwrite(fd, data, sizeof(data), PROTO_SHARED_HEADER) ==
	    (ssize_t)sizeof(data));
	ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, sealed ? F_SEAL_WRITE |
	    F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL :
	    F_SEAL_GROW | F_SEAL_SHRINK), 0);
	return fd;
}

/* The same open file again, through /proc, with access mode how. */
static int
reopen(int fd, int how)
{
	char path[64];
	int fd2;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fd2 = open(path, how | O_CLOEXEC);
	ck_assert_msg(fd2 >= 0, "reopen %s", path);
	close(fd);
	return fd2;
}

/* Writes the frame in w with fd attached (none if -1), raw. */
static void
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

/* A memfd SEND of size bytes to name, raw; the descriptor stays ours. */
static void
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

/* A memfd POST on the grant of mailbox_id, raw. */
static void
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

/*
 * Reads the REPLY to request id: its status; *flags and, when the reply
 * carries a grant, *mailbox_id (else 0).
 */
static uint32_t
raw_reply(int sock, uint32_t id, uint32_t *flags, uint64_t *mailbox_id)
{
	struct proto_reader rd;
	uint8_t *body;
	size_t len;
	uint16_t type;
	uint32_t rid, status, fl;

	ck_assert_int_eq(harness_raw_read(sock, &type, &rid, &fl, &body,
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

static uint32_t
raw_status(int sock, uint32_t id)
{
	return raw_reply(sock, id, NULL, NULL);
}

/* Receives from name through libmbx, both ways, and checks the payload. */
static void
want_payload(mbx_t *c, const char *name, char k)
{
	mbx_msg_t *m = NULL;

	ASSERT_OK(mbx_recvmsg(c, name, &m, NULL, bound_ms(2000)));
	ck_assert_uint_eq(mbx_msg_len(m), PAYLOAD);
	for (size_t i = 0; i < PAYLOAD; i++)
		ck_assert_int_eq(((char *)mbx_msg_data(m))[i], k);
	mbx_msg_free(m);
}

/*
 * Access modes.  Every receiver's descriptor shares the open file of the
 * sender's: a sealed memfd reopened write-only through /proc cannot be
 * mapped by anyone, and a shared one must be mapped read-write (its state
 * word).  The daemon refuses those at send time; the mailbox goes on.
 */
START_TEST(memfd_access_mode_is_checked)
{
	struct harness h;
	mbx_t *c;
	int sock, fd;

	harness_start(&h, NULL);
	c = harness_open(&h);
	mk(c, "box", 8, 0600);
	sock = harness_raw_connect(&h);
	harness_raw_hello(sock);

	fd = reopen(memfd_of('w', true), O_WRONLY);
	raw_send_fd(sock, "box", 2, 0, fd, PAYLOAD);
	ck_assert_uint_eq(raw_status(sock, 2), PROTO_EINVAL);
	close(fd);
	/* Shared, write-only or read-only: neither maps read-write. */
	fd = reopen(memfd_of('w', false), O_WRONLY);
	raw_send_fd(sock, "box", 3, PROTO_SEND_SHARED, fd, PAYLOAD);
	ck_assert_uint_eq(raw_status(sock, 3), PROTO_EINVAL);
	close(fd);
	fd = reopen(memfd_of('r', false), O_RDONLY);
	raw_send_fd(sock, "box", 4, PROTO_SEND_SHARED, fd, PAYLOAD);
	ck_assert_uint_eq(raw_status(sock, 4), PROTO_EINVAL);
	close(fd);
	ck_assert_int_eq(harness_mailbox_int(c, "box", "queued"), 0);
	/* Sealed and read-only maps fine: accepted, and received. */
	fd = reopen(memfd_of('a', true), O_RDONLY);
	raw_send_fd(sock, "box", 5, 0, fd, PAYLOAD);
	ck_assert_uint_eq(raw_status(sock, 5), PROTO_OK);
	close(fd);
	ASSERT_OK(mbx_bind(c, "box", MBX_BIND_EXCLUSIVE));
	want_payload(c, "box", 'a');
	close(sock);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * Seals after the send.  A shared buffer is writable, so its sender could
 * add F_SEAL_FUTURE_WRITE (or, unmapped, F_SEAL_WRITE) once it is queued,
 * and no receiver could map it read-write any more: given out, refused,
 * back at the head, for every receiver in turn.  The daemon freezes the
 * seals of the shared buffers it takes, and refuses one already sealed so.
 */
START_TEST(seals_after_the_send_cannot_poison_a_queue)
{
	static const int later[] = { F_SEAL_FUTURE_WRITE, F_SEAL_WRITE };
	struct harness h;
	char buf[PAYLOAD];
	mbx_t *c, *r;
	int sock, fd;

	harness_start(&h, NULL);
	c = harness_open(&h);
	r = harness_open(&h);
	mk(c, "own", 8, 0600);
	sock = harness_raw_connect(&h);
	harness_raw_hello(sock);
	for (size_t i = 0; i < 2; i++) {
		fd = memfd_of('a' + (char)i, false);
		raw_send_fd(sock, "own", 2 + (uint32_t)i, PROTO_SEND_SHARED, fd,
		    PAYLOAD);
		ck_assert_uint_eq(raw_status(sock, 2 + (uint32_t)i), PROTO_OK);
		/* The sender tries; the receivers below say whether it took. */
		(void)fcntl(fd, F_ADD_SEALS, later[i]);
		close(fd);
	}
	ck_assert_int_eq(harness_mailbox_int(c, "own", "queued"), 2);
	/* Both map read-write, through libmbx's two receive paths. */
	ASSERT_OK(mbx_bind(r, "own", MBX_BIND_EXCLUSIVE));
	want_payload(r, "own", 'a');
	ck_assert_int_eq(mbx_recv(r, "own", buf, sizeof(buf), NULL,
	    bound_ms(2000)), PAYLOAD);
	ck_assert_int_eq(buf[0], 'b');
	/* Write-sealed before the send: refused, nothing queued. */
	for (size_t i = 0; i < 2; i++) {
		fd = memfd_of('x', false);
		ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, later[i]), 0);
		raw_send_fd(sock, "own", 4 + (uint32_t)i, PROTO_SEND_SHARED, fd,
		    PAYLOAD);
		ck_assert_uint_eq(raw_status(sock, 4 + (uint32_t)i),
		    PROTO_EINVAL);
		close(fd);
	}
	ck_assert_int_eq(harness_mailbox_int(c, "own", "queued"), 0);
	/* A shared buffer already frozen, without write seals, is fine. */
	fd = memfd_of('c', false);
	ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL), 0);
	raw_send_fd(sock, "own", 6, PROTO_SEND_SHARED, fd, PAYLOAD);
	ck_assert_uint_eq(raw_status(sock, 6), PROTO_OK);
	close(fd);
	want_payload(r, "own", 'c');
	close(sock);
	mbx_close(c);
	mbx_close(r);
	harness_stop(&h);
}
END_TEST

/*
 * A memfd the daemon could neither hand over nor copy: hugetlbfs maps only
 * in whole huge pages (and not at all with none reserved) and has no
 * copy_file_range().  Refused at send time, sealed or shared.
 */
START_TEST(hugetlb_memfds_are_refused)
{
	struct harness h;
	mbx_t *c;
	int sock, fd;

	fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB);
	if (fd < 0 || ftruncate(fd, 2 * 1024 * 1024) < 0) {
		skip("hugetlb_memfds_are_refused", "no hugetlb memfd here");
		if (fd >= 0)
			close(fd);
		return;
	}
	ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK), 0);
	harness_start(&h, NULL);
	c = harness_open(&h);
	mk(c, "own", 8, 0600);
	sock = harness_raw_connect(&h);
	harness_raw_hello(sock);
	raw_send_fd(sock, "own", 2, PROTO_SEND_SHARED, fd, PAYLOAD);
	ck_assert_uint_eq(raw_status(sock, 2), PROTO_EINVAL);
	ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SEAL), 0);
	raw_send_fd(sock, "own", 3, 0, fd, PAYLOAD);
	ck_assert_uint_eq(raw_status(sock, 3), PROTO_EINVAL);
	ck_assert_int_eq(harness_mailbox_int(c, "own", "queued"), 0);
	close(fd);
	close(sock);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * Sizes near UINT64_MAX: size + the header page must not wrap into a
 * small number that a small memfd satisfies.
 */
START_TEST(memfd_len_does_not_wrap)
{
	size_t len = 0;

	ck_assert(proto_memfd_len(0, &len));
	ck_assert_uint_eq(len, PROTO_SHARED_HEADER);
	ck_assert(proto_memfd_len(1u << 30, &len));
	ck_assert_uint_eq(len, (1u << 30) + PROTO_SHARED_HEADER);
	ck_assert(!proto_memfd_len(UINT64_MAX, &len));
	ck_assert(!proto_memfd_len(UINT64_MAX - PROTO_SHARED_HEADER + 1, &len));
	ck_assert(!proto_memfd_len(SIZE_MAX, &len));
	/* No memfd is larger than an off_t. */
	ck_assert(!proto_memfd_len((uint64_t)INT64_MAX, &len));
	ck_assert(proto_memfd_len((uint64_t)INT64_MAX - PROTO_SHARED_HEADER,
	    &len));
}
END_TEST

/* The daemon's check, with sizes that would wrap to what the memfd has. */
START_TEST(daemon_refuses_wrapping_sizes)
{
	struct harness h;
	mbx_t *c;
	int sock, fd;
	long id;

	/* memfd_check() itself: sealed and shared. */
	for (int sealed = 0; sealed < 2; sealed++) {
		fd = memfd_of('s', sealed);
		ck_assert_int_eq(memfd_check(fd, PAYLOAD, !sealed), 0);
		ck_assert_int_eq(memfd_check(fd, UINT64_MAX, !sealed), -EINVAL);
		ck_assert_int_eq(memfd_check(fd,
		    UINT64_MAX - PROTO_SHARED_HEADER + 1, !sealed), -EINVAL);
		close(fd);
	}
	/* Through a real daemon: SEND is answered EINVAL, ... */
	harness_start(&h, NULL);
	c = harness_open(&h);
	mk(c, "own", 8, 0600);
	sock = harness_raw_connect(&h);
	id = harness_raw_hello(sock);
	fd = memfd_of('s', true);
	raw_send_fd(sock, "own", 2, 0, fd, UINT64_MAX - PROTO_SHARED_HEADER + 1);
	ck_assert_uint_eq(raw_status(sock, 2), PROTO_EINVAL);
	raw_send_fd(sock, "own", 3, 0, fd, UINT64_MAX);
	ck_assert_uint_eq(raw_status(sock, 3), PROTO_EINVAL);
	ck_assert_int_eq(harness_mailbox_int(c, "own", "queued"), 0);
	/* ... and a POST closes the connection, queueing nothing. */
	raw_post_fd(sock, 4, 1, 0, fd, UINT64_MAX - PROTO_SHARED_HEADER + 1);
	ck_assert(harness_wait_client_gone(c, id));
	ck_assert_int_eq(harness_mailbox_int(c, "own", "queued"), 0);
	close(fd);
	close(sock);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* libmbx's side: what it allocates, and what it is told it receives. */
START_TEST(library_sizes_do_not_wrap)
{
	struct harness h;
	struct shm s;
	mbx_msg_t *m;
	mbx_t *c;
	int fd;

	/*
	 * A memfd of 4096 bytes; told SIZE_MAX bytes follow the header page
	 * (4096 + SIZE_MAX wraps to 4095): refused, not mapped.
	 */
	shm_init(&s);
	for (int shared = 0; shared < 2; shared++) {
		fd = memfd_create("t", MFD_CLOEXEC);
		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(ftruncate(fd, PROTO_SHARED_HEADER), 0);
		errno = 0;
		m = shm_receive(&s, fd, SIZE_MAX, shared);
		ck_assert_ptr_null(m);
		ck_assert_int_eq(errno, EPROTO);
	}
	shm_deinit(&s);
	harness_start(&h, NULL);
	c = harness_open(&h);
	errno = 0;
	ck_assert_ptr_null(mbx_msg_alloc(c, SIZE_MAX));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(mbx_msg_alloc(c, SIZE_MAX - PROTO_SHARED_HEADER));
	ck_assert_int_eq(errno, ENOMEM);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

Suite *
memfd_suite(void)
{
	Suite *s = suite_create("memfd");
	TCase *tc = tcase_create("memfd");

	tcase_set_timeout(tc, harness_tcase_timeout());
	tcase_add_test(tc, memfd_access_mode_is_checked);
	tcase_add_test(tc, seals_after_the_send_cannot_poison_a_queue);
	tcase_add_test(tc, hugetlb_memfds_are_refused);
	tcase_add_test(tc, memfd_len_does_not_wrap);
	tcase_add_test(tc, daemon_refuses_wrapping_sizes);
	tcase_add_test(tc, library_sizes_do_not_wrap);
	suite_add_tcase(s, tc);
	return s;
}
