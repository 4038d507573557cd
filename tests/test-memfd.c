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
#include <event2/event.h>
#include <signal.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../daemon/conn.h"
#include "harness.h"
#include "mbxd-proc.h"
#include "memfd.h"
#include "proto.h"
#include "raw.h"
#include "shm.h"
#include "suites.h"
#include "users.h"

#define PAYLOAD	64

static mbx_msg_t *msg_of(mbx_t *c, char k);

/* mbxd's open descriptors; a failed read fails the test. */
static int
fd_count(pid_t pid)
{
	int n = proc_fd_count(pid);

	ck_assert_msg(n >= 0, "cannot read /proc/%d/fd", (int)pid);
	return n;
}

/* Waits (bounded) for mbxd to hold n descriptors; true if it does. */
static bool
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

/* Waits (bounded) for client id's "output_fds" to be n; true if it is. */
static bool
output_fds_reach(mbx_t *c, long id, long n)
{
	int64_t end = harness_now_ms() + bound_ms(5000);

	do {
		json_t *o = harness_client(c, id);
		long v = o != NULL ? (long)json_integer_value(
		    json_object_get(o, "output_fds")) : -1;

		json_decref(o);
		if (v == n)
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

/*
 * The daemon freezes the seals of a shared buffer it is offered, even one
 * it then refuses (EPERM): libmbx must not try to seal that buffer for a
 * later sealed send.  For a pooled buffer it never did; for a one-off (the
 * pool full of buffers the caller holds) it now moves the payload to a
 * fresh memfd too.
 */
START_TEST(refused_shared_buffer_can_go_sealed)
{
	struct harness h;
	mbx_msg_t *held[SHM_POOL_MAX], *m;
	mbx_t *c;
	char buf[PAYLOAD];

	harness_start(&h, NULL);
	c = harness_open(&h);
	mk(c, "open", 8, 0644);
	for (int i = 0; i < SHM_POOL_MAX; i++)
		held[i] = msg_of(c, 'h');
	for (int i = 0; i < 2; i++) {
		/* i 0: a one-off (the pool is full); i 1: a pooled one. */
		if (i == 1)
			mbx_msg_free(held[0]);
		m = msg_of(c, 'a' + (char)i);
		ASSERT_ERR(mbx_sendmsg(c, "open", m, MBX_SHARED, 0), EPERM);
		ASSERT_OK(mbx_sendmsg(c, "open", m, 0, 0));
	}
	ASSERT_OK(mbx_bind(c, "open", MBX_BIND_EXCLUSIVE));
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(mbx_recv(c, "open", buf, sizeof(buf), NULL,
		    bound_ms(2000)), PAYLOAD);
		ck_assert_int_eq(buf[0], 'a' + i);
	}
	for (int i = 1; i < SHM_POOL_MAX; i++)
		mbx_msg_free(held[i]);
	mbx_close(c);
	harness_stop(&h);
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

/*
 * Double closes, daemon side.  conn_attach_fd() closed a descriptor it
 * could not queue, and session_deliver() closed it again.  Now the conn
 * owns the descriptor only on success: after a refusal it is the caller's,
 * still open, and closed once by it.
 */
static int conn_frame_none(void *ctx, const struct proto_header *h,
    const uint8_t *body, int *fds) { return -1; }
static void conn_closed_none(void *ctx) { }
static int conn_charge_none(void *ctx, const struct proto_header *h,
    int64_t delta) { return 0; }
static int conn_refused_none(void *ctx, const struct proto_header *h)
    { return -1; }

START_TEST(attach_fd_failure_leaves_the_fd_to_its_caller)
{
	static const struct conn_ops ops = { conn_frame_none,
	    conn_closed_none, conn_charge_none, conn_refused_none, NULL, NULL };
	struct event_base *base = event_base_new();
	struct conn *c;
	int sv[2], memfd, fd = -1, before, n = 0;

	ck_assert_ptr_nonnull(base);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, sv), 0);
	memfd = memfd_of('a', true);
	before = fd_count(getpid());
	c = conn_new(base, sv[0], PROTO_MAX_BODY, &ops, NULL);
	ck_assert_ptr_nonnull(c);
	for (; n < 4096; n++) {
		fd = fcntl(memfd, F_DUPFD_CLOEXEC, 0);
		ck_assert_int_ge(fd, 0);
		if (conn_attach_fd(c, 0, fd) < 0)
			break;
	}
	ck_assert_msg(n > 0 && n < 4096, "attached %d", n);
	/* Refused: still open, and ours. */
	ck_assert_int_ne(fcntl(fd, F_GETFD), -1);
	ck_assert_int_eq(close(fd), 0);
	/* The conn closes the n it queued (and its socket), once each. */
	conn_free(c);
	ck_assert_int_eq(fd_count(getpid()), before - 1);
	close(sv[1]);
	close(memfd);
	event_base_free(base);
}
END_TEST

/*
 * The same end to end: a receiver that asks for memfd messages and never
 * reads is held to the descriptors its connection may hold unread (its
 * later RECVs are answered EMFILE, see test-memory.c); when it goes, its
 * messages go back and mbxd holds exactly the descriptors it held before,
 * each closed once.
 */
START_TEST(stalled_memfd_reader_costs_no_descriptor)
{
	enum { N = 1200 };
	struct harness h;
	struct proto_writer t;
	mbx_t *c;
	int sock, before;
	long id;

	harness_start(&h, NULL);
	c = harness_open(&h);
	mk(c, "many", N, 0600);
	for (int i = 0; i < N; i++) {
		mbx_msg_t *m = mbx_msg_alloc(c, PAYLOAD);

		ck_assert_ptr_nonnull(m);
		memset(mbx_msg_data(m), 'm', PAYLOAD);
		ASSERT_OK(mbx_sendmsg(c, "many", m, 0, 0));
	}
	before = fd_count(h.pid);
	sock = harness_raw_connect(&h);
	id = harness_raw_hello(sock);
	proto_writer_init(&t);
	proto_put_u32(&t, PROTO_BIND_EXCLUSIVE);
	ck_assert(raw_named(sock, PROTO_BIND, 2, "many", t.buf, t.len));
	proto_writer_free(&t);
	ck_assert_uint_eq(raw_status(sock, 2), PROTO_OK);
	/* RECVs of 16 memfd messages each, none of their answers read. */
	proto_writer_init(&t);
	proto_put_i32(&t, 0);
	proto_put_u64(&t, UINT64_MAX);
	proto_put_u32(&t, 16);
	proto_put_u64(&t, 256 * 1024);
	for (uint32_t i = 0; i < N / 16; i++)
		ck_assert(raw_named(sock, PROTO_RECV, 3 + i, "many", t.buf,
		    t.len));
	proto_writer_free(&t);
	/* Every RECV answered (the last ones EMFILE), none read: it goes. */
	ck_assert(output_fds_reach(c, id, 256));
	close(sock);
	ck_assert(harness_wait_client_gone(c, id));
	/* Everything it had in flight is back, each descriptor held once. */
	ck_assert(harness_wait_mailbox_int(c, "many", "queued", N));
	ck_assert(fd_count_reaches(h.pid, before));
	ASSERT_OK(mbx_bind(c, "many", MBX_BIND_EXCLUSIVE));
	want_payload(c, "many", 'm');
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * STALE, library side.  A receiver is handed a synchronous shared
 * message, but its sender's send times out before the ACK arrives: the
 * ACK is answered STALE and the receive retried.  The withdrawn message's
 * buffer went back to its sender with the failed send (state word free);
 * were the receiver to free it again, a later message in the same buffer,
 * still queued or held, would be marked free and overwritten.  And the
 * withdrawn message must not leak.
 */
struct stale_arg {
	bool	copy;		/* mbx_recv() (copies out) or mbx_recvmsg() */
};

int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static int
stale_receiver(const struct harness *h, void *arg)
{
	const struct stale_arg *a = arg;
	mbx_t *c = mbx_open(h->sock);
	char buf[PAYLOAD];
	mbx_msg_t *m = NULL;
	char got;

	CHILD_REQUIRE(c != NULL);
	CHILD_REQUIRE(mbx_bind(c, "own", MBX_BIND_EXCLUSIVE) == 0);
	CHILD_REQUIRE(mbx_bind(c, "go", MBX_BIND_EXCLUSIVE) == 0);
	harness_report(1);
	if (a->copy) {
		CHILD_REQUIRE(mbx_recv(c, "own", buf, sizeof(buf), NULL, -1) ==
		    PAYLOAD);
		got = buf[0];
	} else {
		CHILD_REQUIRE(mbx_recvmsg(c, "own", &m, NULL, -1) == 0);
		CHILD_REQUIRE(mbx_msg_len(m) == PAYLOAD);
		got = ((char *)mbx_msg_data(m))[0];
	}
	harness_report(got);
	/* Holds m until told: its buffer is busy meanwhile. */
	CHILD_REQUIRE(mbx_recv(c, "go", buf, sizeof(buf), NULL, -1) >= 0);
	mbx_msg_free(m);
	mbx_close(c);
	/* An ASan build: nothing of the withdrawn message may be left. */
	if (__lsan_do_recoverable_leak_check != NULL)
		CHILD_REQUIRE(__lsan_do_recoverable_leak_check() == 0);
	return 0;
}

/* The state word of the shared memfd fd. */
static uint32_t
state_of(int fd)
{
	uint32_t v;

	ck_assert(pread(fd, &v, sizeof(v), 0) == sizeof(v));
	return v;
}

static void
stale_case(bool copy)
{
	struct stale_arg arg = { copy };
	struct harness h;
	struct harness_child ch;
	const uint32_t busy = SHM_BUSY, free_ = SHM_FREE;
	mbx_t *c;
	int sock, fd;

	harness_start(&h, NULL);
	c = harness_open(&h);
	mk(c, "own", 8, 0600);
	mk(c, "go", 8, 0600);
	harness_child_start(&ch, &h, stale_receiver, &arg);
	ck_assert_int_eq(harness_child_read(&ch), 1);
	harness_wait_blocked(c, &ch);
	/* Its RECV is parked: stop it before it can read the message. */
	ck_assert_int_eq(kill(ch.pid, SIGSTOP), 0);
	sock = harness_raw_connect(&h);
	harness_raw_hello(sock);
	fd = memfd_of('a', false);
	{
		struct proto_writer w;
		size_t start;

		proto_writer_init(&w);
		start = proto_frame_begin(&w);
		proto_put_str(&w, "own", 3);
		proto_put_i32(&w, 100);
		proto_put_u64(&w, PAYLOAD);
		proto_frame_end(&w, start, PROTO_SEND, 2, PROTO_SEND_FD |
		    PROTO_SEND_SHARED | PROTO_SEND_SYNC, 1);
		raw_write_fd(sock, &w, fd);
	}
	/* Handed to the stopped receiver, then withdrawn at the deadline. */
	ck_assert_uint_eq(raw_status(sock, 2), PROTO_ETIMEDOUT);
	/* The sender takes its buffer back and reuses it, as libmbx does. */
	ck_assert(pwrite(fd, &free_, sizeof(free_), 0) == sizeof(free_));
	ck_assert(pwrite(fd, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	    "bbbbbbbbbb", PAYLOAD, PROTO_SHARED_HEADER) == PAYLOAD);
	ck_assert(pwrite(fd, &busy, sizeof(busy), 0) == sizeof(busy));
	raw_send_fd(sock, "own", 3, PROTO_SEND_SHARED, fd, PAYLOAD);
	ck_assert_uint_eq(raw_status(sock, 3), PROTO_OK);
	ck_assert_int_eq(kill(ch.pid, SIGCONT), 0);
	/* STALE, retried: the receiver has the second message. */
	ck_assert_int_eq(harness_child_read(&ch), 'b');
	if (!copy) {
		/* It holds it: the buffer is busy, whatever the STALE did. */
		ck_assert_uint_eq(state_of(fd), SHM_BUSY);
	}
	ASSERT_OK(mbx_send(c, "go", "", 0, 0, 0));
	ck_assert_int_eq(harness_child_join(&ch), 0);
	/* Freed once received: the sender may write it again. */
	ck_assert_uint_eq(state_of(fd), SHM_FREE);
	close(fd);
	close(sock);
	mbx_close(c);
	harness_stop(&h);
}

START_TEST(stale_shared_message_is_released_once_held)
{
	stale_case(false);
}
END_TEST

START_TEST(stale_shared_message_is_not_leaked_copied)
{
	stale_case(true);
}
END_TEST

/*
 * One message from name at raw connection sock, acknowledged: its first
 * payload byte, and whether it came as a shared buffer (-1: none there).
 */
static int
raw_take(int sock, uint32_t id, const char *name, bool *shared)
{
	struct proto_writer t;
	struct proto_reader rd;
	uint8_t *body;
	size_t len;
	uint16_t type;
	uint32_t rid, flags;
	uint64_t msg_id, none;
	char k;
	int fd;

	proto_writer_init(&t);
	proto_put_i32(&t, 0);
	proto_put_u64(&t, UINT64_MAX);
	proto_put_u32(&t, 1);
	proto_put_u64(&t, 0);
	ck_assert(raw_named(sock, PROTO_RECV, id, name, t.buf, t.len));
	proto_writer_free(&t);
	ck_assert_int_eq(raw_next(sock, &type, &rid, &flags, &body, &len, &fd),
	    1);
	ck_assert_uint_eq(rid, id);
	if (type == PROTO_REPLY) {
		proto_reader_init(&rd, body, len);
		ck_assert_uint_eq(proto_get_u32(&rd), PROTO_EAGAIN);
		free(body);
		return -1;
	}
	ck_assert_int_eq(type, PROTO_MSG);
	ck_assert(flags & PROTO_MSG_FD);
	ck_assert_int_ge(fd, 0);
	proto_reader_init(&rd, body, len);
	msg_id = proto_get_u64(&rd);
	free(body);
	*shared = (flags & PROTO_MSG_SHARED) != 0;
	/* What came as not shared is sealed: nobody can write it. */
	if (!*shared)
		ck_assert_int_eq(fcntl(fd, F_GET_SEALS) & F_SEAL_WRITE,
		    F_SEAL_WRITE);
	ck_assert(pread(fd, &k, 1, PROTO_SHARED_HEADER) == 1);
	close(fd);
	proto_writer_init(&t);
	{
		size_t start = proto_frame_begin(&t);

		proto_put_u64(&t, msg_id);
		proto_frame_end(&t, start, PROTO_ACK, id + 1, PROTO_ACK_REPLY,
		    0);
	}
	ck_assert(harness_raw_write(sock, t.buf, t.len));
	proto_writer_free(&t);
	ck_assert_uint_eq(raw_reply_skip(sock, id + 1, NULL, &none), PROTO_OK);
	return k;
}

/* A memfd SEND with credit, raw: its status, and the grant's flags. */
static uint32_t
raw_send_credit(int sock, const char *name, uint32_t id, int fd,
    uint32_t *flags, uint64_t *mailbox_id)
{
	raw_send_fd(sock, name, id, PROTO_SEND_CREDIT, fd, PAYLOAD);
	return raw_reply_skip(sock, id, flags, mailbox_id);
}

static mbx_t *
open_credit(const struct harness *h, const struct ident *id)
{
	mbx_t *c = open_as(h, id);

	ASSERT_OK(mbx_setopt(c, MBX_OPT_CREDIT, 1));
	return c;
}

/* A message of PAYLOAD bytes of k from c's pool. */
static mbx_msg_t *
msg_of(mbx_t *c, char k)
{
	mbx_msg_t *m = mbx_msg_alloc(c, PAYLOAD);

	ck_assert_ptr_nonnull(m);
	memset(mbx_msg_data(m), k, PAYLOAD);
	return m;
}

/* mbx_sendmsg() that frees m when it fails; its result and errno. */
static int
send_msg(mbx_t *c, const char *name, char k, int flags, int *err)
{
	mbx_msg_t *m = msg_of(c, k);
	int r;

	errno = 0;
	r = mbx_sendmsg(c, name, m, flags, 0);
	*err = r == 0 ? 0 : errno;
	if (r != 0)
		mbx_msg_free(m);
	return r;
}

/*
 * SEND, across users: the mailbox's owner and mode decide, not the
 * sender's rights (root's included) nor who is bound (root, here).
 */
START_TEST(shared_rule_on_send_across_users)
{
	struct harness h;
	struct mbx_attr a;
	mbx_t *own, *oth, *root;
	bool shared;
	int rx, err;

	if (!is_root()) {
		skip("shared_rule_on_send_across_users", "needs root");
		return;
	}
	daemon_start(&h, NULL);
	own = open_as(&h, &OWNER);
	oth = open_as(&h, &OTHER);
	root = open_as(&h, &ROOT);
	mbx_attr_init(&a);
	a.mode = 0622;
	ASSERT_OK(mbx_create(oth, "theirs", &a));
	mk(own, "mine", 8, 0600);
	mbx_attr_init(&a);
	a.mode = 0660;
	a.gid = G_MBOX;
	ASSERT_OK(mbx_create(own, "group", &a));
	rx = harness_raw_connect(&h);		/* root binds them all */
	harness_raw_hello(rx);
	raw_bind_ok(rx, 2, "theirs");
	raw_bind_ok(rx, 3, "mine");
	raw_bind_ok(rx, 4, "group");
	/* Into another user's mailbox, or one the group reads: EPERM. */
	ck_assert_int_eq(send_msg(own, "theirs", 'a', MBX_SHARED, &err), -1);
	ck_assert_int_eq(err, EPERM);
	ck_assert_int_eq(send_msg(own, "group", 'a', MBX_SHARED, &err), -1);
	ck_assert_int_eq(err, EPERM);
	/* Root may write anywhere, but no shared buffer into others'. */
	ck_assert_int_eq(send_msg(root, "mine", 'a', MBX_SHARED, &err), -1);
	ck_assert_int_eq(err, EPERM);
	ck_assert_int_eq(send_msg(root, "theirs", 'a', MBX_SHARED, &err), -1);
	ck_assert_int_eq(err, EPERM);
	ck_assert_int_eq(harness_mailbox_int(own, "mine", "queued"), 0);
	/* Its own 0600 mailbox: accepted, and root gets the buffer. */
	ck_assert_int_eq(send_msg(own, "mine", 'b', MBX_SHARED, &err), 0);
	ck_assert_int_eq(raw_take(rx, 10, "mine", &shared), 'b');
	ck_assert(shared);
	/* Sealed, it goes wherever the sender may write. */
	ck_assert_int_eq(send_msg(own, "theirs", 'c', 0, &err), 0);
	ck_assert_int_eq(raw_take(rx, 12, "theirs", &shared), 'c');
	ck_assert(!shared);
	close(rx);
	mbx_close(own);
	mbx_close(oth);
	mbx_close(root);
	harness_stop(&h);
}
END_TEST

/*
 * Credit POSTs, through libmbx and raw: a grant earned by a sealed send
 * into another user's mailbox does not carry shared posts (EPERM, as a
 * SEND), a chmod that breaks the rule revokes the credit of a holder that
 * was told it may, and a shared POST that fails the rule all the same
 * reaches no receiver as a writable buffer, root included.
 */
START_TEST(shared_rule_on_credit_posts)
{
	struct harness h;
	struct mbx_attr a;
	mbx_t *own, *cr, *oth;
	uint64_t mbid;
	uint32_t flags;
	bool shared;
	int tx, rx, err;

	if (!is_root()) {
		skip("shared_rule_on_credit_posts", "needs root");
		return;
	}
	daemon_start(&h, NULL);
	own = open_as(&h, &OWNER);
	cr = open_credit(&h, &OWNER);
	oth = open_as(&h, &OTHER);
	mbx_attr_init(&a);
	a.mode = 0622;
	ASSERT_OK(mbx_create(oth, "theirs", &a));
	mk(own, "mine", 16, 0600);
	mk(own, "mine2", 16, 0600);
	rx = harness_raw_connect(&h);		/* root */
	harness_raw_hello(rx);
	raw_bind_ok(rx, 2, "theirs");
	raw_bind_ok(rx, 3, "mine");

	/* libmbx: a sealed send earns memfd credit; a shared one is EPERM. */
	ck_assert_int_eq(send_msg(cr, "theirs", 'a', 0, &err), 0);
	ck_assert_int_eq(send_msg(cr, "theirs", 'b', MBX_SHARED, &err), -1);
	ck_assert_int_eq(err, EPERM);
	ck_assert_int_eq(harness_mailbox_int(own, "theirs", "queued"), 1);
	/* Own mailbox: shared posts; until a chmod gives others read. */
	ck_assert_int_eq(send_msg(cr, "mine2", 'c', MBX_SHARED, &err), 0);
	ck_assert_int_eq(send_msg(cr, "mine2", 'd', MBX_SHARED, &err), 0);
	ASSERT_OK(mbx_chmod(own, "mine2", 0604));
	ck_assert_int_eq(send_msg(cr, "mine2", 'e', MBX_SHARED, &err), -1);
	ck_assert_int_eq(err, EPERM);
	ck_assert_int_eq(harness_mailbox_int(own, "mine2", "queued"), 2);

	/* Raw: the grant says whether shared posts may use it. */
	tx = raw_connect_as(&h, &OWNER);
	harness_raw_hello(tx);
	ck_assert_uint_eq(raw_send_credit(tx, "theirs", 10, memfd_of('f',
	    true), &flags, &mbid), PROTO_OK);
	ck_assert(flags & PROTO_REPLY_ZEROCOPY);
	ck_assert(!(flags & PROTO_REPLY_SHARED));
	/* Posted shared anyway: root, the receiver, gets a sealed copy. */
	raw_post_fd(tx, 11, mbid, PROTO_POST_SHARED, memfd_of('g', false),
	    PAYLOAD);
	ck_assert(harness_wait_mailbox_int(own, "theirs", "queued", 3));
	ck_assert_int_eq(raw_take(rx, 20, "theirs", &shared), 'a');
	ck_assert_int_eq(raw_take(rx, 22, "theirs", &shared), 'f');
	ck_assert_int_eq(raw_take(rx, 24, "theirs", &shared), 'g');
	ck_assert(!shared);
	/* Told shared in its own mailbox; then others may read it. */
	ck_assert_uint_eq(raw_send_credit(tx, "mine", 12, memfd_of('h',
	    true), &flags, &mbid), PROTO_OK);
	/* The rule holds there: even a sealed send's grant says so. */
	ck_assert(flags & PROTO_REPLY_SHARED);
	raw_send_fd(tx, "mine", 13, PROTO_SEND_SHARED | PROTO_SEND_CREDIT,
	    memfd_of('i', false), PAYLOAD);
	ck_assert_uint_eq(raw_reply_skip(tx, 13, &flags, &mbid), PROTO_OK);
	ck_assert(flags & PROTO_REPLY_SHARED);
	ASSERT_OK(mbx_chmod(own, "mine", 0640));
	{
		uint8_t *body;
		size_t len;
		uint16_t type;
		uint32_t rid, fl;
		int fd;

		/* The holder is told to stop posting there. */
		ck_assert_int_eq(harness_raw_read_fd(tx, &type, &rid, &fl,
		    &body, &len, &fd), 1);
		ck_assert_int_eq(type, PROTO_REVOKE);
		{
			struct proto_reader rd;

			proto_reader_init(&rd, body, len);
			ck_assert_uint_eq(proto_get_u32(&rd),
			    PROTO_REVOKE_CREDIT);
		}
		free(body);
		if (fd >= 0)
			close(fd);
	}
	/* A post written before it knew: taken, as a sealed copy. */
	raw_post_fd(tx, 14, mbid, PROTO_POST_SHARED, memfd_of('j', false),
	    PAYLOAD);
	ck_assert(harness_wait_mailbox_int(own, "mine", "queued", 3));
	ck_assert_int_eq(raw_take(rx, 30, "mine", &shared), 'h');
	ck_assert_int_eq(raw_take(rx, 32, "mine", &shared), 'i');
	ck_assert(shared);		/* root, before the chmod */
	ck_assert_int_eq(raw_take(rx, 34, "mine", &shared), 'j');
	ck_assert(!shared);
	close(tx);
	close(rx);
	mbx_close(own);
	mbx_close(cr);
	mbx_close(oth);
	harness_stop(&h);
}
END_TEST

/*
 * Direct addresses: only a connection of the sender's uid may be sent a
 * shared buffer, root's and from root included, with or without credit.
 */
START_TEST(shared_rule_on_direct_addresses)
{
	struct harness h;
	mbx_t *a, *b, *o, *r, *cr;
	char at_b[32], at_o[32], at_r[32], at_a[32];
	mbx_msg_t *m;
	int err;

	if (!is_root()) {
		skip("shared_rule_on_direct_addresses", "needs root");
		return;
	}
	daemon_start(&h, NULL);
	a = open_as(&h, &OWNER);
	b = open_as(&h, &OWNER);
	o = open_as(&h, &OTHER);
	r = open_as(&h, &ROOT);
	cr = open_credit(&h, &OWNER);
	snprintf(at_a, sizeof(at_a), "@%ld", mbx_id(a));
	snprintf(at_b, sizeof(at_b), "@%ld", mbx_id(b));
	snprintf(at_o, sizeof(at_o), "@%ld", mbx_id(o));
	snprintf(at_r, sizeof(at_r), "@%ld", mbx_id(r));
	ck_assert_int_eq(send_msg(a, at_b, 'a', MBX_SHARED, &err), 0);
	ck_assert_int_eq(send_msg(a, at_o, 'b', MBX_SHARED, &err), -1);
	ck_assert_int_eq(err, EPERM);
	ck_assert_int_eq(send_msg(a, at_r, 'c', MBX_SHARED, &err), -1);
	ck_assert_int_eq(err, EPERM);
	ck_assert_int_eq(send_msg(r, at_a, 'd', MBX_SHARED, &err), -1);
	ck_assert_int_eq(err, EPERM);
	/* With credit earned by sealed sends: the same. */
	for (int i = 0; i < 3; i++) {
		const char *to = i == 0 ? at_o : i == 1 ? at_r : at_b;

		ck_assert_int_eq(send_msg(cr, to, 'e', 0, &err), 0);
		ck_assert_int_eq(send_msg(cr, to, 'f', MBX_SHARED, &err),
		    i == 2 ? 0 : -1);
		if (i < 2)
			ck_assert_int_eq(err, EPERM);
	}
	ASSERT_OK(mbx_recvmsg(b, at_b, &m, NULL, 0));
	mbx_msg_free(m);
	mbx_close(a);
	mbx_close(b);
	mbx_close(o);
	mbx_close(r);
	mbx_close(cr);
	harness_stop(&h);
}
END_TEST

/*
 * Randomized: users, modes, groups, paths (SEND, libmbx credit, raw credit
 * POST, direct addresses), shared and sealed buffers, a chmod between a
 * grant and its use; every outcome checked against the rule.
 */
static uint32_t
rnd(uint32_t *st)
{
	*st ^= *st << 13;
	*st ^= *st >> 17;
	*st ^= *st << 5;
	return *st;
}

#define NIDS	4

/* May identity id use bit (0400 read, 0200 write) of a mailbox? */
static bool
may(const struct ident *id, uid_t uid, gid_t gid, unsigned mode, unsigned bit)
{
	if (id->uid == 0)
		return true;
	if (id->uid == uid)
		return (mode & bit) != 0;
	if (id->gid == gid || id->group == gid)
		return (mode & (bit >> 3)) != 0;
	return (mode & (bit >> 6)) != 0;
}

START_TEST(shared_rule_fuzz)
{
	static const unsigned modes[] = { 0600, 0640, 0604, 0660, 0622, 0666,
	    0620, 0602, 0644, 0700 };
	const struct ident *ids[NIDS] = { &OWNER, &GROUPMATE, &OTHER, &ROOT };
	const char *seed_env = getenv("MBX_TEST_SEED");
	uint32_t seed = seed_env != NULL ? (uint32_t)strtoul(seed_env, NULL, 0) :
	    0x5eed1234u, st;
	struct harness h;
	mbx_t *plain[NIDS], *credit[NIDS];
	int rx[NIDS], tx[NIDS];
	long rx_id[NIDS];
	uint32_t req = 100;
	int rounds = scaled(160), checked = 0;

	if (!is_root()) {
		skip("shared_rule_fuzz", "needs root");
		return;
	}
	fprintf(stderr, "shared_rule_fuzz: seed 0x%08x (MBX_TEST_SEED), %d "
	    "rounds\n", seed, rounds);
	st = seed != 0 ? seed : 1;
	daemon_start(&h, NULL);
	for (int i = 0; i < NIDS; i++) {
		plain[i] = open_as(&h, ids[i]);
		credit[i] = open_credit(&h, ids[i]);
		rx[i] = raw_connect_as(&h, ids[i]);
		rx_id[i] = harness_raw_hello(rx[i]);
		tx[i] = raw_connect_as(&h, ids[i]);
		harness_raw_hello(tx[i]);
	}
	for (int round = 0; round < rounds; round++) {
		int c = (int)(rnd(&st) % 3), snd = (int)(rnd(&st) % NIDS);
		int path = (int)(rnd(&st) % 3), rcv;
		bool direct = rnd(&st) % 4 == 0, shared = rnd(&st) % 2 == 0;
		bool chmod_between = !direct && rnd(&st) % 3 == 0;
		unsigned mode = modes[rnd(&st) % (sizeof(modes) /
		    sizeof(modes[0]))];
		const struct ident *C, *S = ids[snd];
		char name[32], what[160];
		uid_t uid;
		gid_t gid;
		char sent[4];
		bool sent_shared[4];
		int nsent = 0, err;

		if (c == 1)
			c = 2;			/* OWNER, OTHER or ROOT */
		else if (c == 2)
			c = 3;
		C = ids[c];
		if (direct) {
			rcv = (int)(rnd(&st) % NIDS);
			snprintf(name, sizeof(name), "@%ld", rx_id[rcv]);
			uid = ids[rcv]->uid;
			gid = ids[rcv]->gid;
		} else {
			struct mbx_attr a;
			int cand[NIDS], n = 0;

			snprintf(name, sizeof(name), "fz%d", round);
			uid = C->uid;
			gid = C == &OWNER ? G_MBOX : C->gid;
			mbx_attr_init(&a);
			a.capacity = 16;
			a.mode = mode;
			a.gid = C == &OWNER ? G_MBOX : (gid_t)-1;
			ASSERT_OK(mbx_create(plain[c], name, &a));
			for (int i = 0; i < NIDS; i++)
				if (may(ids[i], uid, gid, mode, 0400))
					cand[n++] = i;
			rcv = cand[rnd(&st) % (uint32_t)n];
			raw_bind_ok(rx[rcv], req++, name);
		}
		snprintf(what, sizeof(what), "round %d: %s -> %s (%s, mode %o, "
		    "owner %s), path %d, %s%s, receiver %s", round, S->what,
		    name, direct ? "direct" : "named", mode, direct ?
		    ids[rcv]->what : C->what, path, shared ? "shared" :
		    "sealed", chmod_between ? ", chmod between" : "",
		    ids[rcv]->what);
		bool wr = direct || may(S, uid, gid, mode, 0200);
#define RULE() (uid == S->uid && (direct || (mode & 044) == 0))
		if (path == 0) {
			/* A plain SEND. */
			int r = send_msg(plain[snd], name, 'A', shared ?
			    MBX_SHARED : 0, &err);
			int want = !wr ? EACCES : shared && !RULE() ? EPERM : 0;

			ck_assert_msg(r == (want ? -1 : 0) && err == want,
			    "%s: got %s, want %s", what, harness_errname(err),
			    harness_errname(want));
			if (r == 0) {
				sent[nsent] = 'A';
				sent_shared[nsent++] = shared;
			}
		} else {
			/* A sealed send with credit first, then the one. */
			uint32_t flags = 0;
			uint64_t mbid = 0;
			int r0;

			if (path == 1) {
				r0 = send_msg(credit[snd], name, 'P', 0, &err);
			} else {
				int fd = memfd_of('P', true);

				r0 = raw_send_credit(tx[snd], name, req++, fd,
				    &flags, &mbid) == PROTO_OK ? 0 : -1;
				close(fd);
			}
			ck_assert_msg(r0 == (wr ? 0 : -1), "%s: prime %d",
			    what, r0);
			if (r0 != 0)
				goto done;
			sent[nsent] = 'P';
			sent_shared[nsent++] = false;
			if (chmod_between) {
				mode ^= (rnd(&st) % 2) ? 040 : 004;
				ASSERT_OK(mbx_chmod(plain[c], name, mode));
			}
			if (path == 1) {
				int r = send_msg(credit[snd], name, 'Q',
				    shared ? MBX_SHARED : 0, &err);
				int want = shared && !RULE() ? EPERM : 0;

				ck_assert_msg(r == (want ? -1 : 0) &&
				    err == want, "%s: credit send: got %s, "
				    "want %s", what, harness_errname(err),
				    harness_errname(want));
				if (r == 0) {
					sent[nsent] = 'Q';
					sent_shared[nsent++] = shared &&
					    RULE();
				}
			} else if (mbid != 0 &&
			    (flags & PROTO_REPLY_ZEROCOPY)) {
				/*
				 * A raw client posts shared whatever it was
				 * told: judged now, a sealed copy if it fails.
				 */
				int fd = memfd_of('Q', !shared);

				raw_post_fd(tx[snd], req++, mbid, shared ?
				    PROTO_POST_SHARED : 0, fd, PAYLOAD);
				close(fd);
				sent[nsent] = 'Q';
				sent_shared[nsent++] = shared && RULE();
			}
		}
		/* Each message arrives, once, shared only where the rule
		 * allowed it (the receiver then is the sender's uid or root). */
		for (int i = 0; i < nsent; i++) {
			bool got_shared;
			int k = -1;

			for (int tries = 0; tries < 200 && k < 0; tries++) {
				k = raw_take(rx[rcv], req, name, &got_shared);
				req += 2;
				if (k < 0)
					usleep(2000);
			}
			ck_assert_msg(k == sent[i], "%s: message %d: got %d, "
			    "want %c", what, i, k, sent[i]);
			/*
			 * Accepted shared, it reaches a receiver of another
			 * user (bound before a chmod narrowed the mode) only
			 * as the daemon's sealed copy; root excepted.
			 */
			ck_assert_msg(got_shared == (sent_shared[i] &&
			    (ids[rcv]->uid == S->uid || ids[rcv]->uid == 0)),
			    "%s: message %c came %s", what, sent[i],
			    got_shared ? "shared" : "sealed");
			ck_assert_msg(!got_shared || ids[rcv]->uid == S->uid ||
			    ids[rcv]->uid == 0, "%s: a writable buffer for "
			    "another user", what);
			checked++;
		}
		{
			bool got_shared;

			ck_assert_msg(raw_take(rx[rcv], req, name, &got_shared)
			    == -1, "%s: one message too many", what);
			req += 2;
		}
done:
		if (!direct)
			ASSERT_OK(mbx_destroy(plain[c], name));
#undef RULE
	}
	fprintf(stderr, "shared_rule_fuzz: %d messages checked\n", checked);
	ck_assert_int_gt(checked, rounds / 2);
	for (int i = 0; i < NIDS; i++) {
		mbx_close(plain[i]);
		mbx_close(credit[i]);
		close(rx[i]);
		close(tx[i]);
	}
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
	tcase_add_test(tc, refused_shared_buffer_can_go_sealed);
	tcase_add_test(tc, memfd_len_does_not_wrap);
	tcase_add_test(tc, daemon_refuses_wrapping_sizes);
	tcase_add_test(tc, library_sizes_do_not_wrap);
	tcase_add_test(tc, attach_fd_failure_leaves_the_fd_to_its_caller);
	tcase_add_test(tc, stalled_memfd_reader_costs_no_descriptor);
	tcase_add_test(tc, stale_shared_message_is_released_once_held);
	tcase_add_test(tc, stale_shared_message_is_not_leaked_copied);
	tcase_add_test(tc, shared_rule_on_send_across_users);
	tcase_add_test(tc, shared_rule_on_credit_posts);
	tcase_add_test(tc, shared_rule_on_direct_addresses);
	tcase_add_test(tc, shared_rule_fuzz);
	suite_add_tcase(s, tc);
	return s;
}
