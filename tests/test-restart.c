/*
 * test-restart.c - the planned restart (issue 13; PROTOCOL.md, "The
 * restart, as built") against a live mbxd, with the harness as the
 * service manager: SIGUSR2, the descriptors the daemon stores, a fresh
 * daemon given them.  What must survive: every mailbox with its
 * attributes, owner and mode, every queued message in order (messages in
 * flight back at the head), zero-copy ones as copies, durable and
 * configured mailboxes; what a restart state that cannot be trusted gets:
 * a cold start, and the store told to drop it; and under a storm of 8 clients
 * restarted 10 times, no message that a send returned 0 for is lost,
 * duplicated or reordered.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"
#include "proto.h"
#include "record.h"
#include "mbx.h"
#include "suites.h"
#include "users.h"

/*
 * Mailboxes with their attributes, owner and mode, and their queues in
 * order, through one restart; a message in flight comes back first, and
 * the direct address of before names nobody after.
 */
START_TEST(restart_keeps_queues)
{
	struct harness h;
	struct mbx_attr a;
	struct mbx_meta meta;
	char buf[64];
	long old_id;
	int64_t nacked;
	mbx_t *c;

	harness_start(&h, (const char *[]){ "-v", NULL });
	c = harness_open(&h);
	old_id = mbx_id(c);
	mbx_attr_init(&a);
	a.capacity = 20;
	a.max_msg = 4096;
	a.mode = 0640;
	ck_assert_int_eq(mbx_create(c, "jobs", &a), 0);
	mbx_attr_init(&a);
	ck_assert_int_eq(mbx_create(c, "dead", &a), 0);
	mbx_attr_init(&a);
	a.capacity = MBX_UNBOUNDED;
	a.max_attempts = 3;
	a.dead_letter = "dead";
	a.ack_timeout_ms = 60000;
	ck_assert_int_eq(mbx_create(c, "work", &a), 0);
	harness_put_n(c, "jobs", 0, 10);
	harness_put_n(c, "work", 0, 3);
	/* As root, an owner and group that are not the creator's. */
	if (is_root())
		ck_assert_int_eq(mbx_chown(c, "jobs", 65534, 65533), 0);
	/* m0 of work in flight, unacknowledged, when the restart comes. */
	ck_assert_int_eq(mbx_bind(c, "work", MBX_BIND_EXCLUSIVE), 0);
	ck_assert_int_eq(mbx_setopt(c, MBX_OPT_ACK, 4), 0);
	ck_assert_int_eq(mbx_recv(c, "work", buf, sizeof(buf), &meta, 1000),
	    2);
	ck_assert_int_eq(memcmp(buf, "m0", 2), 0);
	/* And one given back for later: its delay runs on across it. */
	mbx_attr_init(&a);
	ck_assert_int_eq(mbx_create(c, "later", &a), 0);
	harness_put(c, "later", "soon");
	/* Counters: 3 sent, 2 received. */
	ck_assert_int_eq(mbx_create(c, "count", NULL), 0);
	harness_put_n(c, "count", 0, 3);
	ck_assert_int_eq(mbx_bind(c, "count", MBX_BIND_EXCLUSIVE), 0);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(mbx_recv(c, "count", buf, sizeof(buf), &meta,
		    1000), 2);
		ck_assert_int_eq(mbx_ack(c, &meta), 0);
	}
	ck_assert_int_eq(mbx_bind(c, "later", MBX_BIND_EXCLUSIVE), 0);
	ck_assert_int_eq(mbx_recv(c, "later", buf, sizeof(buf), &meta, 1000),
	    4);
	ck_assert_int_eq(mbx_nack(c, &meta, 1500), 0);
	nacked = harness_now_ms();

	harness_restart(&h, NULL);
	/* The store: the socket stays; the state, taken, was removed. */
	ck_assert_int_ge(harness_stored_fd(&h, "listen"), 0);
	ck_assert_int_eq(harness_stored_fd(&h, "state"), -1);
	ck_assert_uint_eq(h.removed, 1);
	/* The old connection is gone: a call on it fails, and says so. */
	ck_assert_int_eq(mbx_send(c, "jobs", "x", 1, 0, 0), -1);
	mbx_close(c);
	c = harness_open(&h);
	ck_assert_int_gt(mbx_id(c), old_id);
	ck_assert_int_eq(harness_mailbox_int(c, "jobs", "capacity"), 20);
	ck_assert_int_eq(harness_mailbox_int(c, "jobs", "max_msg"), 4096);
	ck_assert_int_eq(harness_mailbox_int(c, "jobs", "queued"), 10);
	ck_assert_int_eq(harness_mailbox_int(c, "work", "max_attempts"), 3);
	ck_assert_int_eq(harness_mailbox_int(c, "work", "ack_timeout_ms"),
	    60000);
	{
		json_t *mb = harness_mailbox(c, "jobs");

		ck_assert_str_eq(json_string_value(json_object_get(mb,
		    "mode")), "0640");
		ck_assert_int_eq(json_integer_value(json_object_get(mb,
		    "owner")), is_root() ? 65534 : (json_int_t)getuid());
		ck_assert_int_eq(json_integer_value(json_object_get(mb,
		    "group")), is_root() ? 65533 : (json_int_t)getgid());
		ck_assert_int_eq(json_integer_value(json_object_get(mb,
		    "sent")), 10);
		json_decref(mb);
		mb = harness_mailbox(c, "work");
		ck_assert_str_eq(json_string_value(json_object_get(mb,
		    "dead_letter")), "dead");
		json_decref(mb);
		/* m0 went back at the restart: a redelivery. */
		ck_assert_int_eq(harness_mailbox_int(c, "work", "redelivered"),
		    1);
		ck_assert_int_eq(harness_mailbox_int(c, "count", "sent"), 3);
		ck_assert_int_eq(harness_mailbox_int(c, "count", "received"),
		    2);
		ck_assert_int_eq(harness_mailbox_int(c, "count", "queued"), 1);
	}
	ck_assert_int_eq(mbx_bind(c, "jobs", MBX_BIND_EXCLUSIVE), 0);
	ck_assert_int_eq(mbx_bind(c, "work", MBX_BIND_EXCLUSIVE), 0);
	harness_expect_n(c, "jobs", 0, 10);
	harness_expect_empty(c, "jobs");
	/* m0 was in flight: back at the head, its delivery counted. */
	ck_assert_int_eq(mbx_recv(c, "work", buf, sizeof(buf), &meta, 1000),
	    2);
	ck_assert_int_eq(memcmp(buf, "m0", 2), 0);
	ck_assert_int_eq(meta.attempt, 2);
	harness_expect_n(c, "work", 1, 3);
	harness_expect_empty(c, "work");
	/* Not before its due, and then it comes by itself. */
	ck_assert_int_eq(mbx_bind(c, "later", MBX_BIND_EXCLUSIVE), 0);
	if (harness_now_ms() - nacked < 1000)
		harness_expect_empty(c, "later");
	ck_assert_int_eq(mbx_recv(c, "later", buf, sizeof(buf), &meta, 5000),
	    4);
	ck_assert_int_ge(harness_now_ms() - nacked, 1500);
	ck_assert_int_eq(meta.attempt, 2);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/*
 * Zero-copy messages (sealed and shared) come back as copies; a durable
 * mailbox keeps its log (not copied into the state) and a mailbox the
 * configuration declares gets its queue back with the attributes the
 * configuration declares now; a mailbox whose max_msg is over a limit
 * lowered for the next daemon takes the limit and keeps its messages;
 * and message ids stay unique, the durable log's and the state's.
 */
START_TEST(restart_zero_copy_durable_config)
{
	static const int flags[] = { 0, MBX_SHARED };
	char path[HARNESS_PATH_MAX], buf[128 * 1024];
	const char *args[] = { "-c", path, NULL };
	uint64_t ids[16];
	size_t nids = 0;
	struct harness h;
	struct mbx_attr a;
	mbx_t *c;

	harness_init(&h);
	harness_write_file(&h, "mbxd.json", "{ \"mailboxes\": [ { \"name\": "
	    "\"cfg\", \"mode\": \"0666\", \"capacity\": 50 } ] }\n", path,
	    sizeof(path));
	harness_launch(&h, args);
	c = harness_open(&h);
	mbx_attr_init(&a);
	ck_assert_int_eq(mbx_create(c, "zc", &a), 0);
	a.durable = 1;
	ck_assert_int_eq(mbx_create(c, "dur", &a), 0);
	for (int k = 0; k < 2; k++) {
		mbx_msg_t *m = mbx_msg_alloc(c, sizeof(buf));

		ck_assert_ptr_nonnull(m);
		memset(mbx_msg_data(m), 'a' + k, sizeof(buf));
		ck_assert_msg(mbx_sendmsg(c, "zc", m, flags[k], 1000) == 0,
		    "sendmsg: %s", harness_errname(errno));
	}
	harness_put_n(c, "dur", 0, 5);
	harness_put_n(c, "cfg", 0, 7);
	mbx_attr_init(&a);
	a.max_msg = 256 * 1024;
	ck_assert_int_eq(mbx_create(c, "big", &a), 0);
	harness_put_n(c, "big", 0, 2);
	mbx_close(c);

	/* The next daemon's file: another capacity, a lower max_msg. */
	harness_write_file(&h, "mbxd.json", "{ \"limits\": { \"max_msg\": "
	    "\"128K\" }, \"mailboxes\": [ { \"name\": \"cfg\", \"mode\": "
	    "\"0666\", \"capacity\": 80 } ] }\n", path, sizeof(path));
	harness_restart(&h, args);
	c = harness_open(&h);
	ck_assert_int_eq(harness_mailbox_int(c, "cfg", "capacity"), 80);
	ck_assert_int_eq(harness_mailbox_int(c, "big", "max_msg"), 128 * 1024);
	ck_assert_int_eq(harness_mailbox_int(c, "big", "queued"), 2);
	ck_assert_int_eq(mbx_bind(c, "zc", MBX_BIND_EXCLUSIVE), 0);
	for (int k = 0; k < 2; k++) {
		struct mbx_meta meta;

		ck_assert_int_eq(mbx_recv(c, "zc", buf, sizeof(buf), &meta,
		    2000), (ssize_t)sizeof(buf));
		for (size_t i = 0; i < sizeof(buf); i += 4096)
			ck_assert_int_eq(buf[i], 'a' + k);
		ids[nids++] = meta.id;
	}
	harness_expect_empty(c, "zc");
	ck_assert_int_eq(mbx_bind(c, "dur", MBX_BIND_EXCLUSIVE), 0);
	ck_assert_int_eq(mbx_bind(c, "cfg", MBX_BIND_EXCLUSIVE), 0);
	ck_assert_int_eq(mbx_bind(c, "big", MBX_BIND_EXCLUSIVE), 0);
	for (int i = 0; i < 14; i++) {
		struct mbx_meta meta;
		const char *from = i < 5 ? "dur" : i < 12 ? "cfg" : "big";
		char want[16];

		snprintf(want, sizeof(want), "m%d", i < 5 ? i : i < 12 ?
		    i - 5 : i - 12);
		ck_assert_int_eq(mbx_recv(c, from, buf, sizeof(buf), &meta,
		    2000), (ssize_t)strlen(want));
		ck_assert_int_eq(memcmp(buf, want, strlen(want)), 0);
		ids[nids++] = meta.id;
	}
	harness_expect_empty(c, "dur");
	harness_expect_empty(c, "cfg");
	harness_expect_empty(c, "big");
	for (size_t i = 0; i < nids; i++)
		for (size_t j = i + 1; j < nids; j++)
			ck_assert_msg(ids[i] != ids[j], "message id %llu twice",
			    (unsigned long long)ids[i]);
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

/* A restart state made by hand: mailbox "kept" with messages m0..m2. */
static void
state_build(struct proto_writer *w, uint32_t major, bool count)
{
	const struct record_state st = { major, RECORD_STATE_MINOR, 100, 100,
	    100 };
	const struct record_mailbox rm = { .name = { "kept", 4 },
	    .attr = { .capacity = -1, .max_msg = 65536, .mode = 0600 } };

	proto_writer_init(w);
	ck_assert(record_state_put(w, &st));
	ck_assert(record_mailbox_put(w, &rm));
	for (int i = 0; i < 3; i++) {
		char text[16];
		struct record_msg m = { .seq = 10 + (uint64_t)i, .uid = 0 };

		snprintf(text, sizeof(text), "m%d", i);
		m.payload = (struct proto_str){ text, strlen(text) };
		ck_assert(record_msg_put(w, &m));
	}
	if (count)
		ck_assert(record_count_put(w, 1, 3));
}

/* len bytes of buf in a memfd, sealed when sealed. */
static int
state_memfd(const uint8_t *buf, size_t len, bool sealed)
{
	int fd = memfd_create("test-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	ck_assert(fd >= 0);
	ck_assert(write(fd, buf, len) == (ssize_t)len);
	if (sealed)
		ck_assert(fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK |
		    F_SEAL_GROW | F_SEAL_WRITE) == 0);
	return fd;
}

/*
 * What the next daemon is handed as "state": one that is whole is
 * taken (mailbox "kept" and its messages); one that is not sealed,
 * torn, cut short, or of another major version is refused whole, a cold
 * start; either way the store is told to drop it.
 */
START_TEST(restart_state_refused)
{
	enum { GOOD, UNSEALED, TORN, SHORT, MAJOR, NCASES };
	struct harness h;

	for (int k = 0; k < NCASES; k++) {
		struct proto_writer w;
		mbx_t *c;
		int fd;

		harness_init(&h);
		state_build(&w, k == MAJOR ? RECORD_STATE_MAJOR + 1 :
		    RECORD_STATE_MAJOR, k != SHORT);
		if (k == TORN)
			w.buf[w.len / 2] ^= 0x40;
		fd = state_memfd(w.buf, w.len, k != UNSEALED);
		proto_writer_free(&w);
		harness_store_fd(&h, "state", fd);
		harness_launch(&h, NULL);
		ck_assert_uint_eq(h.removed, 1);
		ck_assert_int_eq(harness_stored_fd(&h, "state"), -1);
		c = harness_open(&h);
		if (k == GOOD) {
			ck_assert_int_eq(mbx_bind(c, "kept",
			    MBX_BIND_EXCLUSIVE), 0);
			harness_expect_n(c, "kept", 0, 3);
			/* Ids go on from the state's counters. */
			ck_assert_int_ge(mbx_id(c), 100);
		} else {
			ck_assert_int_eq(mbx_bind(c, "kept",
			    MBX_BIND_EXCLUSIVE), -1);
			ck_assert_str_eq(harness_errname(errno), "ENOENT");
		}
		mbx_close(c);
		harness_stop(&h);
	}
}
END_TEST

/*
 * The storm: STORM_PAIRS senders, each into a mailbox of its own, and as
 * many receivers, one bound to each, while the daemon restarts
 * STORM_RESTARTS times.  A call that fails (the connection went with
 * the old daemon) did nothing: the sender sends the same number again
 * on a new connection, the receiver binds again.  Each receiver must see
 * 0, 1, 2, ... with no gap (lost), no repeat (duplicated) and nothing
 * out of order, up to the count its sender reports at the end; and no
 * receive waits longer than its timeout by more than STORM_SLACK_MS.
 * MBX_TEST_RESTARTS sets the number of restarts (make soak-restart).
 */
#define STORM_PAIRS	4
#define STORM_RESTARTS	10
#define STORM_RECV_MS	300
#define STORM_SLACK_MS	3000
/* A connection is tried that long (the next daemon answers it). */
#define STORM_CONNECT_MS	10000

static bool
storm_file(const struct harness *h, const char *name, int k, long *value)
{
	char path[HARNESS_PATH_MAX];
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "%s/%s%d", h->dir, name, k);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	ok = value == NULL || fscanf(f, "%ld", value) == 1;
	fclose(f);
	return ok;
}

static int
storm_sender(const struct harness *h, void *arg)
{
	int k = (int)(intptr_t)arg;
	char name[16], text[32], path[HARNESS_PATH_MAX];
	mbx_t *c = NULL;
	long seq = 0;
	FILE *f;

	snprintf(name, sizeof(name), "q%d", k);
	while (!storm_file(h, "stop", 0, NULL)) {
		if (c == NULL && (c = harness_open_wait(h->sock,
		    STORM_CONNECT_MS)) == NULL)
			return 10;
		snprintf(text, sizeof(text), "%ld", seq);
		if (mbx_send(c, name, text, strlen(text), 0, 2000) == 0)
			seq++;
		else {
			mbx_close(c);
			c = NULL;
		}
	}
	mbx_close(c);
	snprintf(path, sizeof(path), "%s/sent%d", h->dir, k);
	if ((f = fopen(path, "w")) == NULL)
		return 11;
	fprintf(f, "%ld\n", seq);
	fclose(f);
	harness_report(seq);
	return 0;
}

static int
storm_receiver(const struct harness *h, void *arg)
{
	int k = (int)(intptr_t)arg;
	char name[16], buf[64];
	mbx_t *c = NULL;
	long next = 0, sent = -1;
	int64_t progress = harness_now_ms();

	snprintf(name, sizeof(name), "q%d", k);
	while (sent < 0 || next < sent) {
		int64_t t0;
		ssize_t n;

		/* All sent, and the rest does not come: lost, say so. */
		if (sent >= 0 && harness_now_ms() - progress > 15000) {
			fprintf(stderr, "receiver %d: %ld of %ld, then nothing "
			    "for 15 s (lost)\n", k, next, sent);
			return 5;
		}
		if (c == NULL) {
			if ((c = harness_open_wait(h->sock,
			    STORM_CONNECT_MS)) == NULL)
				return 10;
			if (mbx_bind(c, name, MBX_BIND_EXCLUSIVE) < 0) {
				mbx_close(c);
				c = NULL;
				poll(NULL, 0, 5);
				continue;
			}
		}
		t0 = harness_now_ms();
		n = mbx_recv(c, name, buf, sizeof(buf) - 1, NULL,
		    STORM_RECV_MS);
		if (harness_now_ms() - t0 > STORM_RECV_MS + STORM_SLACK_MS) {
			fprintf(stderr, "receiver %d: a receive of %d ms took "
			    "%lld ms\n", k, STORM_RECV_MS,
			    (long long)(harness_now_ms() - t0));
			return 4;
		}
		if (n >= 0) {
			long got;

			buf[n] = '\0';
			got = strtol(buf, NULL, 10);
			if (got != next) {
				fprintf(stderr, "receiver %d: got %ld, "
				    "expected %ld (%s)\n", k, got, next,
				    got < next ? "a duplicate" :
				    "one lost or out of order");
				return got < next ? 2 : 3;
			}
			next++;
			progress = harness_now_ms();
			continue;
		}
		if (errno == ETIMEDOUT || errno == EAGAIN) {
			if (sent < 0)
				(void)storm_file(h, "sent", k, &sent);
			continue;
		}
		mbx_close(c);
		c = NULL;
	}
	mbx_close(c);
	harness_report(next);
	return 0;
}

START_TEST(restart_storm)
{
	struct harness_child senders[STORM_PAIRS], receivers[STORM_PAIRS];
	const char *env = getenv("MBX_TEST_RESTARTS");
	int restarts = env != NULL ? atoi(env) : STORM_RESTARTS;
	char path[HARNESS_PATH_MAX];
	struct harness h;
	struct mbx_attr a;
	mbx_t *c;
	FILE *f;

	harness_start(&h, NULL);
	c = harness_open(&h);
	for (int k = 0; k < STORM_PAIRS; k++) {
		char name[16];

		snprintf(name, sizeof(name), "q%d", k);
		mbx_attr_init(&a);
		/* Bounded: senders wait for room now and then. */
		a.capacity = 64;
		ck_assert_int_eq(mbx_create(c, name, &a), 0);
	}
	mbx_close(c);
	for (int k = 0; k < STORM_PAIRS; k++) {
		harness_child_start(&senders[k], &h, storm_sender,
		    (void *)(intptr_t)k);
		harness_child_start(&receivers[k], &h, storm_receiver,
		    (void *)(intptr_t)k);
	}
	for (int i = 0; i < (restarts > 0 ? restarts : STORM_RESTARTS); i++) {
		poll(NULL, 0, 50 + (i * 37) % 100);
		harness_restart(&h, NULL);
	}
	poll(NULL, 0, 100);
	snprintf(path, sizeof(path), "%s/stop0", h.dir);
	ck_assert((f = fopen(path, "w")) != NULL && fclose(f) == 0);
	for (int k = 0; k < STORM_PAIRS; k++) {
		long sent = harness_child_read(&senders[k]);

		ck_assert_int_eq(harness_child_join(&senders[k]), 0);
		ck_assert_int_gt(sent, 0);
		ck_assert_int_eq(harness_child_read(&receivers[k]), sent);
		ck_assert_int_eq(harness_child_join(&receivers[k]), 0);
	}
	harness_stop(&h);
}
END_TEST

/*
 * Without a service manager (no NOTIFY_SOCKET) nothing could keep the
 * queues: SIGUSR2 stops the daemon as SIGTERM does, exit 0, socket gone.
 */
START_TEST(restart_without_manager)
{
	const char *mbxd = getenv("MBXD");
	struct harness h;
	mbx_t *c = NULL;
	pid_t pid;
	int st;

	harness_init(&h);
	ck_assert(mbxd != NULL);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		char state[HARNESS_PATH_MAX];

		snprintf(state, sizeof(state), "%s/state", h.dir);
		unsetenv("NOTIFY_SOCKET");
		execl(mbxd, mbxd, "-s", h.sock, "--state-dir", state,
		    (char *)NULL);
		_exit(127);
	}
	c = harness_open_wait(h.sock, 5000);
	ck_assert_ptr_nonnull(c);
	mbx_close(c);
	ck_assert_int_eq(kill(pid, SIGUSR2), 0);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_int_eq(access(h.sock, F_OK), -1);
	harness_cleanup(&h);
}
END_TEST

/*
 * A handle whose connection a restart ended hands out nothing more, not
 * even the messages it had read ahead (prefetch): the daemon puts them
 * back, and the next handle gets each once.  Also through mbx_recvv().
 */
START_TEST(restart_broken_handle)
{
	struct mbx_rmsg v[4];
	char bufs[4][32], buf[32];
	struct harness h;
	mbx_t *c;

	harness_start(&h, NULL);
	c = harness_open(&h);
	ck_assert_int_eq(mbx_create(c, "pre", NULL), 0);
	harness_put_n(c, "pre", 0, 10);
	ck_assert_int_eq(mbx_bind(c, "pre", MBX_BIND_EXCLUSIVE), 0);
	harness_expect(c, "pre", 1000, "m0");
	harness_restart(&h, NULL);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(mbx_recv(c, "pre", buf, sizeof(buf), NULL, 0),
		    -1);
		ck_assert_str_eq(harness_errname(errno), "ECONNRESET");
	}
	for (int i = 0; i < 4; i++)
		v[i] = (struct mbx_rmsg){ .buf = bufs[i], .cap = 32 };
	ck_assert_int_eq(mbx_recvv(c, "pre", v, 4, 0), -1);
	ck_assert_str_eq(harness_errname(errno), "ECONNRESET");
	mbx_close(c);
	c = harness_open(&h);
	ck_assert_int_eq(mbx_bind(c, "pre", MBX_BIND_EXCLUSIVE), 0);
	harness_expect_n(c, "pre", 1, 10);
	harness_expect_empty(c, "pre");
	mbx_close(c);
	harness_stop(&h);
}
END_TEST

Suite *
restart_suite(void)
{
	Suite *s = suite_create("restart");
	TCase *tc = tcase_create("restart");

	tcase_set_timeout(tc, harness_tcase_timeout());
	tcase_add_test(tc, restart_keeps_queues);
	tcase_add_test(tc, restart_zero_copy_durable_config);
	tcase_add_test(tc, restart_state_refused);
	tcase_add_test(tc, restart_storm);
	tcase_add_test(tc, restart_without_manager);
	tcase_add_test(tc, restart_broken_handle);
	suite_add_tcase(s, tc);
	return s;
}
