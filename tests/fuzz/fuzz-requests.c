/*
 * fuzz-requests.c - libFuzzer target over whole request handling: the
 * daemon's own objects (a broker, a session set, conns) on a libevent base,
 * fed through socketpairs, as mbxd runs them minus the listener.
 *
 * Each input is one run of three connections:
 *
 *	byte 0		flags: bit 0, connection 2 starts with a HELLO
 *	then chunks	op (1 byte), len (2 bytes, LE), len bytes
 *
 *	op & 3		0, 1, 2: write the bytes to that connection;
 *			3: advance the broker's clock by len ms, expire
 *	(op >> 2) & 3	a descriptor sent with the bytes: 0 none, 1 a
 *			sealed memfd, 2 an unsealed memfd, 3 a pipe
 *	op & 0x10	then close our end of that connection
 *
 * Connections 0 and 1 start with a valid HELLO so that the fuzzer reaches
 * the request handlers at once.  Connection 0 is root (an admin);
 * connections 1 and 2 become uids 1000 and 1001 (1001 also in group
 * 1000), so the permission and quota paths are reached too.  After every
 * chunk the loop runs without blocking until idle, and everything the
 * daemon wrote is read and dropped.  At the end every connection is
 * closed and everything freed; the process must then hold exactly the
 * descriptors it held when the input began (a leaked descriptor aborts),
 * and LeakSanitizer checks the memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <dirent.h>

#include <event2/event.h>

#include "account.h"
#include "body.h"
#include "broker.h"
#include "mailbox.h"
#include "peer.h"
#include "proto.h"
#include "session.h"

int	LLVMFuzzerInitialize(int *argc, char ***argv);
int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NCONN		3
#define MAX_PASSES	512

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz-requests: %s:%d: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

static struct event_base *base;
static int baseline_fds = -1;
static uint64_t fake_now;

static uint64_t
fake_clock(void)
{
	return fake_now;
}

static int
count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the directory's own descriptor */
}

/* For a report: what each open descriptor is. */
static void
list_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[300], target[256];
		ssize_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		target[n > 0 ? n : 0] = '\0';
		fprintf(stderr, "  fd %s -> %s\n", e->d_name, target);
	}
	closedir(d);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	CHECK(base != NULL);
	return 0;
}

struct run {
	struct broker	*b;
	struct session_set set;
	int		 fd[NCONN];	/* our ends; -1 once closed */
};

/* Reads and drops what the daemon wrote; returns the bytes seen. */
static size_t
drain(struct run *s)
{
	static uint8_t buf[65536];
	size_t total = 0;

	for (int i = 0; i < NCONN; i++) {
		for (int k = 0; k < 1024 && s->fd[i] >= 0; k++) {
			union {
				struct cmsghdr align;
				char buf[CMSG_SPACE(sizeof(int) * 8)];
			} cbuf;
			struct iovec iov = { buf, sizeof(buf) };
			struct msghdr mh = { 0 };
			struct cmsghdr *cm;
			ssize_t n;

			mh.msg_iov = &iov;
			mh.msg_iovlen = 1;
			mh.msg_control = cbuf.buf;
			mh.msg_controllen = sizeof(cbuf.buf);
			n = recvmsg(s->fd[i], &mh, MSG_DONTWAIT |
			    MSG_CMSG_CLOEXEC);
			if (n <= 0) {
				if (n == 0 || (errno != EAGAIN &&
				    errno != EINTR)) {
					/* The daemon closed it. */
					close(s->fd[i]);
					s->fd[i] = -1;
				}
				break;
			}
			/* Descriptors the daemon passed (zero copy). */
			for (cm = CMSG_FIRSTHDR(&mh); cm != NULL;
			    cm = CMSG_NXTHDR(&mh, cm))
				if (cm->cmsg_level == SOL_SOCKET &&
				    cm->cmsg_type == SCM_RIGHTS)
					for (size_t j = 0; j < (cm->cmsg_len -
					    CMSG_LEN(0)) / sizeof(int); j++) {
						int fd;

						memcpy(&fd, CMSG_DATA(cm) + j *
						    sizeof(int), sizeof(fd));
						close(fd);
					}
			total += (size_t)n;
		}
	}
	return total;
}

/* Runs the loop without blocking until nothing moves any more. */
static void
run_idle(struct run *s)
{
	int quiet = 0;

	for (int i = 0; i < MAX_PASSES && quiet < 3; i++) {
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (drain(s) > 0 || event_base_get_num_events(base,
		    EVENT_BASE_COUNT_ACTIVE) > 0)
			quiet = 0;
		else
			quiet++;
	}
}

static int
make_fd(unsigned kind)
{
	static const char payload[64] = "a zero-copy payload";
	int fd, p[2];

	if (kind == 3) {
		if (pipe2(p, O_CLOEXEC) < 0)
			return -1;
		close(p[1]);
		return p[0];
	}
	fd = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -1;
	if (write(fd, payload, sizeof(payload)) != sizeof(payload) ||
	    (kind == 1 && fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW |
	    F_SEAL_SHRINK | F_SEAL_SEAL) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Writes len bytes (with a descriptor of kind, 0: none) to connection i.
 * When its socket is full the loop runs and the output is drained, so
 * the daemon reads on; if nothing moves for a while the rest is dropped.
 */
static void
put_bytes(struct run *s, int i, const uint8_t *p, size_t len,
    unsigned kind)
{
	int passed = kind != 0 ? make_fd(kind) : -1;
	int stuck = 0;

	while (len > 0 && s->fd[i] >= 0 && stuck < 64) {
		union proto_fd_control cbuf;
		struct iovec iov = { (void *)(uintptr_t)p, len };
		struct msghdr mh = { 0 };
		ssize_t n;

		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		if (passed >= 0)
			proto_attach_fd(&mh, &cbuf, passed);
		n = sendmsg(s->fd[i], &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			if (passed >= 0) {
				close(passed);
				passed = -1;
			}
			p += n;
			len -= (size_t)n;
			stuck = 0;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			break;
		event_base_loop(base, EVLOOP_NONBLOCK);
		drain(s);
		stuck++;
	}
	if (passed >= 0)
		close(passed);
}

static void
hello(struct run *s, int i)
{
	struct body_hello b = { PROTO_VERSION };
	struct proto_writer w;
	size_t start;

	proto_writer_init(&w);
	start = proto_frame_begin(&w);
	body_hello_put(&w, &b);
	proto_frame_end(&w, start, PROTO_HELLO, 1, 0, 0);
	CHECK(!proto_writer_failed(&w));
	put_bytes(s, i, w.buf, w.len, 0);
	proto_writer_free(&w);
}

/* Makes the newest peer a user: uid (and one supplementary group). */
static void
become(struct broker *b, uid_t uid, gid_t group)
{
	struct peer *p = NULL, *q;

	TAILQ_FOREACH(q, &b->peers, entry)
		p = q;
	if (p == NULL || account_move(&b->accounts, &p->charge, uid) < 0)
		return;
	p->acct = p->charge.acct;
	p->uid = uid;
	p->gid = uid;
	p->direct->uid = uid;
	p->direct->gid = uid;
	free(p->groups);
	p->groups = NULL;
	p->ngroups = 0;
	if (group != (gid_t)-1 && (p->groups = malloc(sizeof(gid_t))) != NULL) {
		p->groups[0] = group;
		p->ngroups = 1;
	}
}

static void
run_start(struct run *s, uint8_t flags)
{
	struct broker_limits l;

	memset(&l, 0, sizeof(l));
	l.max_memory = 1024 * 1024;
	l.max_msg = 64 * 1024;
	l.max_bytes_per_uid = 256 * 1024;
	l.max_connections = 8;
	l.max_connections_per_uid = 4;
	l.max_mailboxes_per_uid = 8;
	l.max_pending_per_connection = 8;
	l.max_standby_per_mailbox = 2;
	l.admin_gids[0] = 1002;
	l.nadmin_gids = 1;
	s->b = broker_new(&l);
	CHECK(s->b != NULL);
	fake_now = 1000;
	s->b->clock = fake_clock;
	session_set_init(&s->set, base, s->b, NULL, NULL);
	for (int i = 0; i < NCONN; i++) {
		int sv[2];

		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0, sv) == 0);
		CHECK(session_new(&s->set, sv[0]) == 0);
		s->fd[i] = sv[1];
		if (i == 1)
			become(s->b, 1000, (gid_t)-1);
		else if (i == 2)
			become(s->b, 1001, 1000);
	}
	hello(s, 0);
	hello(s, 1);
	if (flags & 1)
		hello(s, 2);
	run_idle(s);
}

static void
run_end(struct run *s)
{
	for (int i = 0; i < NCONN; i++)
		if (s->fd[i] >= 0) {
			close(s->fd[i]);
			s->fd[i] = -1;
		}
	/* The daemon sees EOF and frees each session on the next turn. */
	for (int i = 0; i < MAX_PASSES && !TAILQ_EMPTY(&s->set.list); i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	session_set_free_all(&s->set);
	broker_free(s->b);
	if (count_fds() != baseline_fds) {
		fprintf(stderr, "fuzz-requests: %d descriptors open, %d at the "
		    "start\n", count_fds(), baseline_fds);
		list_fds();
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run s;
	size_t off = 1;

	if (size < 1)
		return 0;
	/* Counted per input: libFuzzer itself opens descriptors between
	 * inputs (-close_fd_mask, the symbolizer's pipes). */
	baseline_fds = count_fds();
	run_start(&s, data[0]);
	for (int n = 0; n < 4096 && off + 3 <= size; n++) {
		uint8_t op = data[off];
		size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
		int i = op & 3;

		off += 3;
		if (len > size - off)
			len = size - off;
		if (i == 3) {
			fake_now += len;
			broker_expire(s.b, fake_now);
		} else {
			put_bytes(&s, i, data + off, len, (op >> 2) & 3);
			off += len;
			if ((op & 0x10) && s.fd[i] >= 0) {
				close(s.fd[i]);
				s.fd[i] = -1;
			}
		}
		run_idle(&s);
	}
	run_end(&s);
	return 0;
}
