/*
 * test-durable.c - durable mailboxes (issue 13) against a live mbxd:
 * what a send that returned put there survives kill -9, a receive that
 * returned never comes back, what was in flight comes back as a
 * redelivery, attributes survive, a destroy removes the log, a torn log
 * is cut and a corrupt one refused while the other mailboxes start, and
 * a full disk fails a send with ENOSPC and nothing half-written.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "mbx.h"
#include "suites.h"
#include "users.h"

static void
create_durable(mbx_t *c, const char *name, long capacity)
{
	struct mbx_attr a;

	mbx_attr_init(&a);
	a.capacity = capacity;
	a.durable = 1;
	ck_assert_msg(mbx_create(c, name, &a) == 0, "create %s: %s", name,
	    harness_errname(errno));
}

/* kill -9, then a fresh daemon on the same socket and state directory. */
static void
crash_and_restart_with(struct harness *h, const char *const *extra)
{
	harness_kill(h, SIGKILL);
	harness_launch(h, extra);
}

static void
crash_and_restart(struct harness *h)
{
	crash_and_restart_with(h, NULL);
}

/*
 * Every send that returned is there after kill -9, in order; every
 * receive that returned is not.
 */
START_TEST(durable_survives_kill)
{
	struct harness h;
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create_durable(c, "jobs", 1000);
	harness_put_n(c, "jobs", 0, 200);
	ck_assert_int_eq(mbx_bind(c, "jobs", MBX_BIND_EXCLUSIVE), 0);
	harness_expect_n(c, "jobs", 0, 50);
	/* Nothing closes the connection first: the daemon just dies. */
	crash_and_restart(&h);
	mbx_close(c);
	c = harness_open(&h);
	ck_assert_int_eq(harness_mailbox_int(c, "jobs", "capacity"), 1000);
	ck_assert_int_eq(mbx_bind(c, "jobs", MBX_BIND_EXCLUSIVE), 0);
	harness_expect_n(c, "jobs", 50, 200);
	harness_expect_empty(c, "jobs");
	/* And it goes on: new sends, a second crash. */
	harness_put_n(c, "jobs", 200, 210);
	crash_and_restart(&h);
	mbx_close(c);
	c = harness_open(&h);
	ck_assert_int_eq(mbx_bind(c, "jobs", MBX_BIND_EXCLUSIVE), 0);
	harness_expect_n(c, "jobs", 200, 210);
	harness_expect_empty(c, "jobs");
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * A message received with explicit acknowledgement and not acknowledged
 * comes back after a crash as a redelivery (attempt 2); one acknowledged
 * does not.
 */
START_TEST(durable_inflight_redelivered)
{
	struct harness h;
	struct mbx_meta meta;
	char buf[64];
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create_durable(c, "work", 100);
	harness_put_n(c, "work", 0, 3);
	ck_assert_int_eq(mbx_setopt(c, MBX_OPT_ACK, 1), 0);
	ck_assert_int_eq(mbx_bind(c, "work", MBX_BIND_EXCLUSIVE), 0);
	ck_assert_int_eq(mbx_recv(c, "work", buf, sizeof(buf), &meta, 1000),
	    2);
	ck_assert_int_eq(mbx_ack(c, &meta), 0);
	ck_assert_int_eq(mbx_recv(c, "work", buf, sizeof(buf), &meta, 1000),
	    2);
	ck_assert(memcmp(buf, "m1", 2) == 0);
	ck_assert_uint_eq(meta.attempt, 1);
	crash_and_restart(&h);
	mbx_close(c);
	c = harness_open(&h);
	ck_assert_int_eq(mbx_bind(c, "work", MBX_BIND_EXCLUSIVE), 0);
	ck_assert_int_eq(mbx_recv(c, "work", buf, sizeof(buf), &meta, 1000),
	    2);
	ck_assert(memcmp(buf, "m1", 2) == 0);
	ck_assert_uint_eq(meta.attempt, 2);
	harness_expect(c, "work", 1000, "m2");
	harness_expect_empty(c, "work");
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * Attributes and their changes survive; a destroy removes the log, so
 * the mailbox stays gone; a plain mailbox is not durable.
 */
START_TEST(durable_attributes_and_destroy)
{
	struct harness h;
	struct mbx_attr a;
	char path[HARNESS_PATH_MAX + 32];
	struct stat st;
	json_t *mb;
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	mbx_attr_init(&a);
	a.capacity = 10;
	a.mode = 0640;
	a.durable = 1;
	ck_assert_int_eq(mbx_create(c, "kept/one", &a), 0);
	ck_assert_int_eq(mbx_chmod(c, "kept/one", 0660), 0);
	create_durable(c, "gone", 5);
	ck_assert_int_eq(mbx_create(c, "plain", NULL), 0);
	harness_put(c, "plain", "lost");
	mb = harness_mailbox(c, "kept/one");
	ck_assert(json_is_true(json_object_get(mb, "durable")));
	json_decref(mb);
	mb = harness_mailbox(c, "plain");
	ck_assert(json_is_false(json_object_get(mb, "durable")));
	json_decref(mb);
	snprintf(path, sizeof(path), "%s/state/m/gone", h.dir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(mbx_destroy(c, "gone"), 0);
	ck_assert_int_ne(stat(path, &st), 0);
	crash_and_restart(&h);
	mbx_close(c);
	c = harness_open(&h);
	ck_assert_int_eq(harness_mailbox_int(c, "kept/one", "capacity"), 10);
	mb = harness_mailbox(c, "kept/one");
	ck_assert_str_eq(json_string_value(json_object_get(mb, "mode")),
	    "0660");
	ck_assert(json_is_true(json_object_get(mb, "durable")));
	json_decref(mb);
	ck_assert_ptr_null(harness_mailbox(c, "gone"));
	ck_assert_ptr_null(harness_mailbox(c, "plain"));
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* What a durable mailbox refuses, each with nothing done. */
START_TEST(durable_refusals)
{
	struct harness h;
	struct mbx_attr a;
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	mbx_attr_init(&a);
	a.capacity = 0;
	a.durable = 1;
	ck_assert_int_eq(mbx_create(c, "rdv", &a), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(harness_mailbox(c, "rdv"));
	create_durable(c, "d", 2);
	ck_assert_int_eq(mbx_send(c, "d", "x", 1, MBX_SYNC, 100), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(harness_mailbox_int(c, "d", "queued"), 0);
	/* Full: EAGAIN, and the capacity counts exactly. */
	harness_put(c, "d", "a");
	harness_put(c, "d", "b");
	ck_assert_int_eq(mbx_send(c, "d", "c", 1, 0, 0), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(harness_mailbox_int(c, "d", "queued"), 2);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * Eight senders at once, each in order: all land, each sender's order
 * is kept, and a crash after they returned loses none (one commit covers
 * the sends of a pass).
 */
static int
sender(const struct harness *h, void *arg)
{
	long k = (long)(intptr_t)arg;
	char buf[32];
	mbx_t *c = mbx_open(h->sock);

	if (c == NULL)
		return 1;
	for (int i = 0; i < 100; i++) {
		snprintf(buf, sizeof(buf), "%ld:%d", k, i);
		if (mbx_send(c, "fan", buf, strlen(buf), 0, -1) != 0)
			return 2;
	}
	mbx_close(c);
	return 0;
}

START_TEST(durable_eight_senders)
{
	struct harness h;
	struct harness_child ch[8];
	int next[8] = { 0 };
	char buf[32];
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create_durable(c, "fan", 1000);
	for (long k = 0; k < 8; k++)
		harness_child_start(&ch[k], &h, sender, (void *)(intptr_t)k);
	for (int k = 0; k < 8; k++)
		ck_assert_int_eq(harness_child_join(&ch[k]), 0);
	crash_and_restart(&h);
	mbx_close(c);
	c = harness_open(&h);
	ck_assert_int_eq(mbx_bind(c, "fan", MBX_BIND_EXCLUSIVE), 0);
	for (int n = 0; n < 800; n++) {
		ssize_t len = mbx_recv(c, "fan", buf, sizeof(buf) - 1, NULL,
		    2000);
		int k, i;

		ck_assert_int_gt(len, 0);
		buf[len] = '\0';
		ck_assert_int_eq(sscanf(buf, "%d:%d", &k, &i), 2);
		ck_assert(k >= 0 && k < 8);
		ck_assert_int_eq(i, next[k]);
		next[k]++;
	}
	harness_expect_empty(c, "fan");
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * kill -9 at random moments of a storm of durable sends and receives:
 * KILL_SENDERS senders number their messages and write down the last
 * one whose send returned; a receiver writes down each one its receive
 * returned.  After each crash and cold start, what the receiver got and
 * what is left in the mailbox must be, for each sender, every number
 * from where the round began up to the last acknowledged (or one past
 * it: a send the crash cut before its answer), each once, in order; but
 * for the receiver's last message, which may come once more as a
 * redelivery (attempt 2 or more): its receive returned when the crash
 * cut its acknowledgement's answer (mbx(7), "Durable mailboxes").
 */
#define KILL_SENDERS	4
#define KILL_ROUNDS	5

struct kill_round {
	int	 k;		/* the sender, or KILL_SENDERS: the receiver */
	long	 from;		/* the sender's first number this round */
};

/* Writes v to DIR/name<k>, replacing what was there. */
static void
kill_note(const struct harness *h, const char *name, int k, long v)
{
	char path[HARNESS_PATH_MAX], text[32];
	int fd, n;

	snprintf(path, sizeof(path), "%s/%s%d", h->dir, name, k);
	n = snprintf(text, sizeof(text), "%ld\n", v);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0) {
		(void)!write(fd, text, (size_t)n);
		close(fd);
	}
}

static int
kill_sender(const struct harness *h, void *arg)
{
	const struct kill_round *r = arg;
	mbx_t *c = mbx_open(h->sock);
	char buf[32];

	if (c == NULL)
		return 1;
	for (long i = r->from;; i++) {
		snprintf(buf, sizeof(buf), "%d:%ld", r->k, i);
		if (mbx_send(c, "storm", buf, strlen(buf), 0, -1) != 0)
			break;
		kill_note(h, "acked", r->k, i);
	}
	mbx_close(c);
	return 0;
}

static int
kill_receiver(const struct harness *h, void *arg)
{
	char path[HARNESS_PATH_MAX], buf[64];
	mbx_t *c = mbx_open(h->sock);
	FILE *f;

	(void)arg;
	snprintf(path, sizeof(path), "%s/got", h->dir);
	if (c == NULL || (f = fopen(path, "w")) == NULL)
		return 1;
	if (mbx_bind(c, "storm", MBX_BIND_EXCLUSIVE) != 0)
		return 2;
	for (;;) {
		ssize_t n = mbx_recv(c, "storm", buf, sizeof(buf) - 1, NULL,
		    200);

		if (n < 0 && errno == ETIMEDOUT)
			continue;
		if (n < 0)
			break;
		buf[n] = '\0';
		fprintf(f, "%s\n", buf);
		fflush(f);
	}
	fclose(f);
	mbx_close(c);
	return 0;
}

/* One message "k:i" seen, in order after the last of k. */
static void
kill_check(long next[], const char *text, const char *where)
{
	int k;
	long i;

	ck_assert_msg(sscanf(text, "%d:%ld", &k, &i) == 2 && k >= 0 &&
	    k < KILL_SENDERS, "%s: \"%s\"", where, text);
	ck_assert_msg(i == next[k], "%s: sender %d's %ld where %ld was due "
	    "(%s)", where, k, i, next[k], i < next[k] ? "a duplicate" :
	    "one lost or out of order");
	next[k]++;
}

START_TEST(durable_kill_storm)
{
	struct harness_child ch[KILL_SENDERS + 1];
	struct kill_round r[KILL_SENDERS];
	long next[KILL_SENDERS] = { 0 };
	char path[HARNESS_PATH_MAX], buf[64], last[64];
	struct harness h;
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create_durable(c, "storm", MBX_UNBOUNDED);
	mbx_close(c);
	for (int round = 0; round < KILL_ROUNDS; round++) {
		long acked[KILL_SENDERS];
		FILE *f;

		for (int k = 0; k < KILL_SENDERS; k++) {
			r[k] = (struct kill_round){ k, next[k] };
			acked[k] = next[k] - 1;
			kill_note(&h, "acked", k, acked[k]);
			harness_child_start(&ch[k], &h, kill_sender, &r[k]);
		}
		harness_child_start(&ch[KILL_SENDERS], &h, kill_receiver,
		    NULL);
		/* A different moment each round, while all of them run. */
		poll(NULL, 0, 100 + (round * 73) % 300);
		harness_kill(&h, SIGKILL);
		for (int k = 0; k <= KILL_SENDERS; k++)
			ck_assert_int_eq(harness_child_join(&ch[k]), 0);
		harness_launch(&h, NULL);
		for (int k = 0; k < KILL_SENDERS; k++) {
			snprintf(path, sizeof(path), "%s/acked%d", h.dir, k);
			ck_assert((f = fopen(path, "r")) != NULL);
			ck_assert(fscanf(f, "%ld", &acked[k]) == 1);
			fclose(f);
		}
		/* What the receiver's receives returned, then the rest. */
		snprintf(path, sizeof(path), "%s/got", h.dir);
		ck_assert((f = fopen(path, "r")) != NULL);
		last[0] = '\0';
		while (fgets(buf, sizeof(buf), f) != NULL) {
			kill_check(next, buf, "received before the crash");
			buf[strcspn(buf, "\n")] = '\0';
			snprintf(last, sizeof(last), "%s", buf);
		}
		fclose(f);
		c = harness_open(&h);
		ck_assert_int_eq(mbx_bind(c, "storm", MBX_BIND_EXCLUSIVE), 0);
		for (bool again = false;; again = true) {
			struct mbx_meta meta;
			ssize_t n = mbx_recv(c, "storm", buf, sizeof(buf) - 1,
			    &meta, 0);

			if (n < 0) {
				ck_assert_int_eq(errno, EAGAIN);
				break;
			}
			buf[n] = '\0';
			/* First, and only then: the last one, delivered again. */
			if (!again && strcmp(buf, last) == 0 &&
			    meta.attempt > 1)
				continue;
			kill_check(next, buf, "back after the crash");
		}
		mbx_close(c);
		for (int k = 0; k < KILL_SENDERS; k++)
			ck_assert_msg(next[k] == acked[k] + 1 ||
			    next[k] == acked[k] + 2, "round %d, sender %d: "
			    "%ld acknowledged, %ld came back", round, k,
			    acked[k] + 1 - r[k].from, next[k] - r[k].from);
	}
	harness_stop(&h);
}
END_TEST

/*
 * A zero-copy message (sealed, and recycled with MBX_SHARED) sent to a
 * durable mailbox is copied into the log: it survives a crash, and mbxd
 * keeps no descriptor of it.
 */
START_TEST(durable_zero_copy)
{
	static const int flags[] = { 0, MBX_SHARED };
	struct harness h;
	char buf[128 * 1024];
	int fds_before;
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create_durable(c, "zc", 10);
	fds_before = harness_proc_fd_count(h.pid);
	for (int k = 0; k < 2; k++) {
		mbx_msg_t *m = mbx_msg_alloc(c, sizeof(buf));

		ck_assert_ptr_nonnull(m);
		memset(mbx_msg_data(m), 'a' + k, sizeof(buf));
		ck_assert_msg(mbx_sendmsg(c, "zc", m, flags[k], 1000) == 0,
		    "sendmsg: %s", harness_errname(errno));
	}
	/* The journal's descriptors came, the memfds did not stay. */
	ck_assert_int_le(harness_proc_fd_count(h.pid), fds_before + 2);
	crash_and_restart(&h);
	mbx_close(c);
	c = harness_open(&h);
	ck_assert_int_eq(mbx_bind(c, "zc", MBX_BIND_EXCLUSIVE), 0);
	for (int k = 0; k < 2; k++) {
		ck_assert_int_eq(mbx_recv(c, "zc", buf, sizeof(buf), NULL,
		    2000), (ssize_t)sizeof(buf));
		for (size_t i = 0; i < sizeof(buf); i += 4096)
			ck_assert_int_eq(buf[i], 'a' + k);
	}
	harness_expect_empty(c, "zc");
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* The file of segment 1 of mailbox dir's log. */
static void
segment_path(const struct harness *h, const char *dir, int seg, char *buf,
    size_t len)
{
	snprintf(buf, len, "%s/state/m/%s/%08d.log", h->dir, dir, seg);
}

/*
 * A torn last record (cut short by a crash in mid-write) is cut and the
 * mailbox serves what was whole; a bad record in an earlier segment
 * takes only that mailbox out of service (EIO), and the others start.
 */
START_TEST(durable_torn_and_corrupt)
{
	struct harness h;
	char seg1[HARNESS_PATH_MAX + 64], seg2[HARNESS_PATH_MAX + 64];
	char buf[4096];
	struct stat st;
	ssize_t n;
	mbx_t *c;
	int in, out;

	harness_start(&h, NULL);
	c = harness_open(&h);
	create_durable(c, "torn", 100);
	create_durable(c, "bad", 100);
	harness_put_n(c, "torn", 0, 3);
	harness_put_n(c, "bad", 0, 3);
	mbx_close(c);
	ck_assert_int_eq(harness_terminate(&h), 0);
	segment_path(&h, "torn", 1, seg1, sizeof(seg1));
	ck_assert_int_eq(stat(seg1, &st), 0);
	ck_assert_int_eq(truncate(seg1, st.st_size - 2), 0);
	/*
	 * "bad": a second segment (its ATTR alone, as a roll makes it),
	 * then a byte of segment 1's last record flipped.
	 */
	segment_path(&h, "bad", 1, seg1, sizeof(seg1));
	segment_path(&h, "bad", 2, seg2, sizeof(seg2));
	in = open(seg1, O_RDWR);
	ck_assert_int_ge(in, 0);
	n = pread(in, buf, sizeof(buf), 0);
	ck_assert_int_gt(n, 20);
	out = open(seg2, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(out, 0);
	{
		/* The ATTR record: u32 length + u32 CRC + what they cover. */
		uint32_t len = (uint32_t)(unsigned char)buf[0] |
		    (uint32_t)(unsigned char)buf[1] << 8;

		ck_assert_int_eq(write(out, buf, 8 + len), (ssize_t)(8 + len));
	}
	close(out);
	buf[n - 2] ^= 0x40;
	ck_assert_int_eq(pwrite(in, buf + n - 2, 1, n - 2), 1);
	close(in);
	harness_launch(&h, NULL);
	c = harness_open(&h);
	ck_assert_int_eq(mbx_bind(c, "torn", MBX_BIND_EXCLUSIVE), 0);
	harness_expect_n(c, "torn", 0, 2);
	harness_expect_empty(c, "torn");
	/* The refused one answers EIO, and its files are left alone. */
	ck_assert_int_eq(mbx_send(c, "bad", "x", 1, 0, 0), -1);
	ck_assert_int_eq(errno, EIO);
	ck_assert_int_eq(mbx_recv(c, "bad", buf, sizeof(buf), NULL, 0), -1);
	ck_assert_int_eq(errno, EIO);
	{
		json_t *mb = harness_mailbox(c, "bad");

		ck_assert(json_is_true(json_object_get(mb, "failed")));
		json_decref(mb);
	}
	ck_assert_int_eq(stat(seg1, &st), 0);
	/* The others work, and a new durable one can be made. */
	create_durable(c, "fresh", 10);
	harness_put(c, "fresh", "ok");
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * A state directory on a full disk (a 256 KiB tmpfs; root, as in CI): a
 * send that does not fit fails with ENOSPC and leaves nothing, the ones
 * before it stay, and a small one afterwards goes.
 */
START_TEST(durable_full_disk)
{
	struct harness h;
	char state[HARNESS_DIR_MAX + 16];
	const char *extra[] = { "--state-dir", state, NULL };
	struct mbx_attr a;
	char *big;
	mbx_t *c;

	harness_init(&h);
	snprintf(state, sizeof(state), "%s/small", h.dir);
	ck_assert_int_eq(mkdir(state, 0700), 0);
	if (geteuid() != 0 || mount("tmpfs", state, "tmpfs", 0,
	    "size=256k") < 0) {
		ck_assert(geteuid() != 0 || errno == EPERM);
		fprintf(stderr, "durable_full_disk: cannot mount a small "
		    "tmpfs (not root): not run\n");
		harness_cleanup(&h);
		return;
	}
	harness_launch(&h, extra);
	c = harness_open(&h);
	mbx_attr_init(&a);
	a.capacity = 100;
	a.max_msg = 1 << 20;
	a.durable = 1;
	ck_assert_int_eq(mbx_create(c, "full", &a), 0);
	harness_put(c, "full", "before");
	big = malloc(600 * 1024);
	memset(big, 'z', 600 * 1024);
	ck_assert_int_eq(mbx_send(c, "full", big, 600 * 1024, 0, 0), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(harness_mailbox_int(c, "full", "queued"), 1);
	harness_put(c, "full", "after");
	free(big);
	crash_and_restart_with(&h, extra);
	mbx_close(c);
	c = harness_open(&h);
	ck_assert_int_eq(mbx_bind(c, "full", MBX_BIND_EXCLUSIVE), 0);
	harness_expect(c, "full", 1000, "before");
	harness_expect(c, "full", 1000, "after");
	harness_expect_empty(c, "full");
	mbx_close(c);
	ck_assert_int_eq(harness_terminate(&h), 0);
	ck_assert_int_eq(umount(state), 0);
	harness_cleanup(&h);
}
END_TEST

/* mbxctl create --durable, and the list's "durable" key. */
START_TEST(durable_mbxctl)
{
	struct harness h;
	struct harness_ctl r;
	mbx_t *c;

	harness_start(&h, NULL);
	ck_assert_int_eq(harness_ctl(&h, NULL, &r, "create", "q", "--durable",
	    NULL), 0);
	ck_assert_int_eq(r.status, 0);
	harness_ctl_free(&r);
	ck_assert_int_eq(harness_ctl(&h, NULL, &r, "send", "q", "hello",
	    NULL), 0);
	ck_assert_int_eq(r.status, 0);
	harness_ctl_free(&r);
	ck_assert_int_eq(harness_ctl(&h, NULL, &r, "create", "z", "--durable",
	    "--capacity", "0", NULL), 0);
	ck_assert_int_ne(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.err, "--durable needs a capacity"));
	harness_ctl_free(&r);
	crash_and_restart(&h);
	c = harness_open(&h);
	{
		json_t *mb = harness_mailbox(c, "q");

		ck_assert(json_is_true(json_object_get(mb, "durable")));
		json_decref(mb);
	}
	mbx_close(c);
	ck_assert_int_eq(harness_ctl(&h, NULL, &r, "recv", "q", NULL), 0);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, "hello\n");
	harness_ctl_free(&r);
	harness_stop(&h);
}
END_TEST

/*
 * mbxd.json(5): a declared durable mailbox, state_dir and sync; bad
 * values of the three are configuration errors.  A declared durable
 * mailbox comes back from its log, messages and all, and is declared
 * again as it is.
 */
START_TEST(durable_config)
{
	static const char *const bad[] = {
		"{ \"sync\": \"sometimes\" }",
		"{ \"sync\": 0 }",
		"{ \"sync\": 60001 }",
		"{ \"state_dir\": \"relative/dir\" }",
		"{ \"mailboxes\": [ { \"name\": \"d\", \"durable\": 1 } ] }",
	};
	char path[HARNESS_PATH_MAX], text[512];
	char state[HARNESS_DIR_MAX + 16];
	struct harness h;
	json_t *mb;
	mbx_t *c;

	harness_init(&h);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *const args[] = { "-c", path, "--check-config",
		    NULL };
		int st;

		harness_write_file(&h, "bad.json", bad[i], path, sizeof(path));
		st = harness_run_mbxd(&h, args);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 0,
		    "mbxd --check-config accepted %s", bad[i]);
	}
	snprintf(state, sizeof(state), "%s/kept", h.dir);
	snprintf(text, sizeof(text), "{ \"state_dir\": \"%s\", \"sync\": 5, "
	    "\"mailboxes\": [ { \"name\": \"cfg\", \"mode\": \"0666\", "
	    "\"capacity\": 50, \"durable\": true } ] }\n", state);
	harness_write_file(&h, "mbxd.json", text, path, sizeof(path));
	{
		/* The harness passes a --state-dir of its own: this one wins. */
		const char *const args[] = { "-c", path, "--state-dir", state,
		    NULL };

		harness_launch(&h, args);
		c = harness_open(&h);
		mb = harness_mailbox(c, "cfg");
		ck_assert(json_is_true(json_object_get(mb, "durable")));
		json_decref(mb);
		harness_put_n(c, "cfg", 0, 5);
		/* sync 5: answered when written; the kernel keeps that. */
		crash_and_restart_with(&h, args);
		mbx_close(c);
		c = harness_open(&h);
		ck_assert_int_eq(harness_mailbox_int(c, "cfg", "capacity"), 50);
		ck_assert_int_eq(mbx_bind(c, "cfg", MBX_BIND_EXCLUSIVE), 0);
		harness_expect_n(c, "cfg", 0, 5);
		harness_expect_empty(c, "cfg");
		mbx_close(c);
	}
	snprintf(path, sizeof(path), "%s/m/cfg", state);
	{
		struct stat st;

		ck_assert_int_eq(stat(path, &st), 0);
	}
	harness_stop(&h);
}
END_TEST

/*
 * mbxd(8): a state directory that hides its logs for a reason other than
 * permission (here it is a file) stops mbxd from starting; one that the
 * daemon's user cannot search (the system service's, next to a private
 * mbxd) holds none of that user's logs: mbxd starts, warns, and a durable
 * create fails with EACCES while a plain one works.  As root the daemon
 * runs as OTHER, since root searches every directory.
 */
START_TEST(durable_state_dir_unreachable)
{
	char file[HARNESS_PATH_MAX], locked[HARNESS_DIR_MAX + 16];
	char own[HARNESS_DIR_MAX + 16], sock[HARNESS_DIR_MAX + 32];
	char logpath[HARNESS_PATH_MAX], *log;
	struct harness h;
	struct mbx_attr a;
	const char *mbxd = getenv("MBXD");
	mbx_t *c = NULL;
	pid_t pid;
	int st;

	harness_init(&h);
	harness_write_file(&h, "not-a-dir", "x\n", file, sizeof(file));
	{
		const char *const args[] = { "--state-dir", file, NULL };

		st = harness_run_mbxd(&h, args);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1,
		    "mbxd with a file as its state directory: status %d", st);
	}

	snprintf(locked, sizeof(locked), "%s/locked", h.dir);
	snprintf(own, sizeof(own), "%s/own", h.dir);
	snprintf(sock, sizeof(sock), "%s/mbxd.sock", own);
	snprintf(logpath, sizeof(logpath), "%s/locked.log", h.dir);
	ck_assert_int_eq(mkdir(locked, is_root() ? 0700 : 0), 0);
	ck_assert_int_eq(mkdir(own, 0700), 0);
	share_dirs(&h);
	if (is_root())
		ck_assert_int_eq(chown(own, OTHER.uid, OTHER.gid), 0);
	ck_assert(mbxd != NULL);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0666);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0 ||
		    !drop_to(&OTHER))
			_exit(126);
		execl(mbxd, mbxd, "-s", sock, "--state-dir", locked,
		    (char *)NULL);
		_exit(127);
	}
	if ((c = harness_open_wait(sock, 5000)) == NULL) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		log = harness_read_file(logpath, NULL);
		ck_abort_msg("mbxd with a state directory it cannot search "
		    "did not start: %s", log);
	}
	mbx_attr_init(&a);
	a.durable = 1;
	ck_assert_int_eq(mbx_create(c, "d", &a), -1);
	ck_assert_str_eq(harness_errname(errno), "EACCES");
	mbx_attr_init(&a);
	ck_assert_int_eq(mbx_create(c, "plain", &a), 0);
	mbx_close(c);
	kill(pid, SIGTERM);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	log = harness_read_file(logpath, NULL);
	ck_assert_msg(strstr(log, "no durable mailbox can be created") !=
	    NULL, "no warning in the log: %s", log);
	free(log);
	rmdir(locked);
	harness_cleanup(&h);
}
END_TEST

Suite *
durable_suite(void)
{
	Suite *s = suite_create("durable");
	TCase *tc = tcase_create("durable");

	tcase_set_timeout(tc, harness_tcase_timeout());
	tcase_add_test(tc, durable_survives_kill);
	tcase_add_test(tc, durable_inflight_redelivered);
	tcase_add_test(tc, durable_attributes_and_destroy);
	tcase_add_test(tc, durable_refusals);
	tcase_add_test(tc, durable_eight_senders);
	tcase_add_test(tc, durable_kill_storm);
	tcase_add_test(tc, durable_torn_and_corrupt);
	tcase_add_test(tc, durable_full_disk);
	tcase_add_test(tc, durable_mbxctl);
	tcase_add_test(tc, durable_config);
	tcase_add_test(tc, durable_zero_copy);
	tcase_add_test(tc, durable_state_dir_unreachable);
	suite_add_tcase(s, tc);
	return s;
}
