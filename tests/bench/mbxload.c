/*
 * mbxload.c - the benchmark's workloads through libmbx and a real mbxd:
 * the same roles, clock and last-message convention as the baselines
 * (run.c, baseline.c), so the figures compare one to one.
 *
 * Each run gets a fresh mailbox (created and destroyed by a short-lived
 * admin handle of the parent), each role its own mbx_t opened after the
 * fork.  The last message of a sender is one byte short; a receiver
 * passes meta NULL and copies every payload into its own buffer, as the
 * socket baselines do.
 *
 * Modes: mbx_send/mbx_recv, mbx_sendv/mbx_recvv of up to 64, each with
 * MBX_OPT_CREDIT off (the default) and on; and for messages of 1 MiB and
 * more the zero-copy calls, sealed and MBX_SHARED.  In those, the sender
 * writes one byte in every page of the buffer it fills and the receiver
 * reads one byte of every page it maps (touch_pages()): the first touch
 * of a page is what shared memory costs on a VM, and a real producer and
 * consumer touch every page at least once.  No payload is copied.
 *
 * Between two users (P_MBX_USERS, for root only): the mailbox lets others
 * read it and the receiver becomes BENCH_OTHER_UID for good before it
 * connects; everything else is mbx_send/mbx_recv as in P_MBX.
 *
 * The zero-copy calls are referenced weakly, so that this file builds and
 * every other mode runs against a libmbx that does not have them yet.
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "bench.h"

#pragma weak mbx_msg_alloc
#pragma weak mbx_msg_data
#pragma weak mbx_msg_len
#pragma weak mbx_sendmsg
#pragma weak mbx_recvmsg
#pragma weak mbx_msg_free

/*
 * Mailbox depth: the default (1024) for small messages, at most 8 MiB of
 * payload and at least 4 messages for large ones: about what a socket
 * and its reader's buffer hold, and within the sender's pool of recycled
 * MBX_SHARED buffers (SHM_POOL_MAX, 16), so that a sender running ahead
 * of its receiver does not fall back to fresh memory for each message.
 * A batch always fits: a mailbox shallower than the sender's batches
 * measures refusals, not batches.
 */
#define QUEUE_BYTES	(8 * MIB)
#define QUEUE_MIN	4

static const char *
errname(int err)
{
	const char *s = strerrorname_np(err);

	return s != NULL ? s : strerror(err);
}

bool
mbxload_zerocopy_built(void)
{
	return mbx_msg_alloc != NULL && mbx_msg_data != NULL &&
	    mbx_msg_len != NULL && mbx_sendmsg != NULL &&
	    mbx_recvmsg != NULL && mbx_msg_free != NULL;
}

/* A role's connection to the daemon, with the run's credit setting. */
static mbx_t *
role_open(struct runctx *ctx, const struct spec *s)
{
	mbx_t *c = mbx_open(s->sock);

	if (c == NULL) {
		run_fail(ctx, "mbx_open: %s", errname(errno));
		return NULL;
	}
	if (mbx_setopt(c, MBX_OPT_CREDIT, path_info[s->path].credit) < 0) {
		run_fail(ctx, "mbx_setopt(MBX_OPT_CREDIT): %s", errname(errno));
		mbx_close(c);
		return NULL;
	}
	return c;
}

static int
role_fail(struct runctx *ctx, const char *call, mbx_t *c)
{
	int err = errno;

	run_fail(ctx, "%s: %s", call, errname(err));
	mbx_close(c);
	return -1;
}

static int
send_each(struct runctx *ctx, const struct spec *s, unsigned idx, void *arg)
{
	mbx_t *c = role_open(ctx, s);
	char *buf = malloc(s->size);

	(void)idx;
	(void)arg;
	if (c == NULL || buf == NULL)
		return run_fail(ctx, "set-up failed");
	memset(buf, 0x5a, s->size);
	run_ready(ctx);
	while (!run_stopped(ctx))
		if (mbx_send(c, s->mailbox, buf, s->size, 0, -1) < 0)
			return role_fail(ctx, "mbx_send", c);
	if (mbx_send(c, s->mailbox, buf, s->size - 1, 0, -1) < 0)
		return role_fail(ctx, "mbx_send", c);
	mbx_close(c);
	return 0;
}

static int
send_batch(struct runctx *ctx, const struct spec *s, unsigned idx,
    void *arg)
{
	struct mbx_smsg v[BATCH_MAX];
	mbx_t *c = role_open(ctx, s);
	char *buf = malloc(s->size);

	(void)idx;
	(void)arg;
	if (c == NULL || buf == NULL)
		return run_fail(ctx, "set-up failed");
	memset(buf, 0x5a, s->size);
	for (unsigned i = 0; i < s->batch; i++)
		v[i] = (struct mbx_smsg){ s->mailbox, buf, s->size };
	run_ready(ctx);
	while (!run_stopped(ctx)) {
		for (size_t off = 0; off < s->batch;) {
			ssize_t k = mbx_sendv(c, v + off, s->batch - off, -1);

			if (k <= 0)
				return role_fail(ctx, "mbx_sendv", c);
			off += (size_t)k;
		}
	}
	v[0].len = s->size - 1;
	if (mbx_sendv(c, v, 1, -1) != 1)
		return role_fail(ctx, "mbx_sendv", c);
	mbx_close(c);
	return 0;
}

static int
send_zerocopy(struct runctx *ctx, const struct spec *s, unsigned idx,
    void *arg)
{
	int flags = s->path == P_MBX_SHARED ? MBX_SHARED : 0;
	mbx_t *c = role_open(ctx, s);
	bool more = true;

	(void)idx;
	(void)arg;
	if (c == NULL)
		return -1;
	run_ready(ctx);
	while (more) {
		size_t len = s->size;
		mbx_msg_t *m;

		if (run_stopped(ctx)) {
			len--;
			more = false;
		}
		if ((m = mbx_msg_alloc(c, len)) == NULL)
			return role_fail(ctx, "mbx_msg_alloc", c);
		touch_pages(mbx_msg_data(m), len, true);
		if (mbx_sendmsg(c, s->mailbox, m, flags, -1) < 0) {
			int err = errno;

			mbx_msg_free(m);
			errno = err;
			return role_fail(ctx, flags ?
			    "mbx_sendmsg(MBX_SHARED)" : "mbx_sendmsg", c);
		}
	}
	mbx_close(c);
	return 0;
}

/*
 * The receiver of P_MBX_USERS becomes another user for good.  A change
 * of credentials clears the parent-death signal (prctl(2)): set again.
 */
static int
become_other(struct runctx *ctx)
{
	pid_t parent = getppid();

	if (setgroups(0, NULL) < 0 || setgid(BENCH_OTHER_GID) < 0 ||
	    setuid(BENCH_OTHER_UID) < 0)
		return run_fail(ctx, "setuid(%d): %s", BENCH_OTHER_UID,
		    errname(errno));
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(4);
	return 0;
}

/* A receiver's connection, bound to the run's mailbox. */
static mbx_t *
receiver_open(struct runctx *ctx, const struct spec *s)
{
	mbx_t *c;

	if (s->path == P_MBX_USERS && become_other(ctx) < 0)
		return NULL;
	c = role_open(ctx, s);

	if (c != NULL && mbx_bind(c, s->mailbox, MBX_BIND_EXCLUSIVE) < 0) {
		role_fail(ctx, "mbx_bind", c);
		return NULL;
	}
	return c;
}

static int
recv_each(struct runctx *ctx, const struct spec *s, unsigned idx, void *arg)
{
	mbx_t *c = receiver_open(ctx, s);
	char *buf = malloc(s->size);
	uint64_t msgs = 0, bytes = 0;
	unsigned lasts = 0;

	(void)idx;
	(void)arg;
	if (c == NULL || buf == NULL)
		return run_fail(ctx, "set-up failed");
	run_ready(ctx);
	while (lasts < s->senders) {
		ssize_t n = mbx_recv(c, s->mailbox, buf, s->size, NULL, -1);

		if (n < 0)
			return role_fail(ctx, "mbx_recv", c);
		msgs++;
		bytes += (uint64_t)n;
		lasts += (size_t)n < s->size;
		run_tick(ctx, msgs, bytes);
	}
	run_report(ctx, msgs, bytes);
	mbx_close(c);
	return 0;
}

static int
recv_batch(struct runctx *ctx, const struct spec *s, unsigned idx,
    void *arg)
{
	struct mbx_rmsg v[BATCH_MAX];
	mbx_t *c = receiver_open(ctx, s);
	/* A buffer per slot, unless that would be a lot of memory. */
	bool own = s->size * s->batch <= 64 * MIB;
	char *buf = malloc(own ? s->size * s->batch : s->size);
	uint64_t msgs = 0, bytes = 0;
	unsigned lasts = 0;

	(void)idx;
	(void)arg;
	if (c == NULL || buf == NULL)
		return run_fail(ctx, "set-up failed");
	for (unsigned i = 0; i < s->batch; i++) {
		memset(&v[i], 0, sizeof(v[i]));
		v[i].buf = buf + (own ? i * s->size : 0);
		v[i].cap = s->size;
	}
	run_ready(ctx);
	while (lasts < s->senders) {
		ssize_t n = mbx_recvv(c, s->mailbox, v, s->batch, -1);

		if (n <= 0)
			return role_fail(ctx, "mbx_recvv", c);
		for (ssize_t i = 0; i < n; i++) {
			bytes += v[i].len;
			lasts += v[i].len < s->size;
		}
		msgs += (uint64_t)n;
		run_tick(ctx, msgs, bytes);
	}
	run_report(ctx, msgs, bytes);
	mbx_close(c);
	return 0;
}

static int
recv_zerocopy(struct runctx *ctx, const struct spec *s, unsigned idx,
    void *arg)
{
	mbx_t *c = receiver_open(ctx, s);
	uint64_t msgs = 0, bytes = 0;
	unsigned lasts = 0;

	(void)idx;
	(void)arg;
	if (c == NULL)
		return -1;
	run_ready(ctx);
	while (lasts < s->senders) {
		mbx_msg_t *m;
		size_t len;

		if (mbx_recvmsg(c, s->mailbox, &m, NULL, -1) < 0)
			return role_fail(ctx, "mbx_recvmsg", c);
		len = mbx_msg_len(m);
		touch_pages(mbx_msg_data(m), len, false);
		mbx_msg_free(m);
		msgs++;
		bytes += len;
		lasts += len < s->size;
		run_tick(ctx, msgs, bytes);
	}
	run_report(ctx, msgs, bytes);
	mbx_close(c);
	return 0;
}

/* Ping-pong: a request to the mailbox, the answer to the sender's @ID. */
static int
ping(struct runctx *ctx, const struct spec *s, unsigned idx, void *arg)
{
	mbx_t *c = role_open(ctx, s);
	char *buf = malloc(s->size);
	uint64_t n = 0;
	int64_t t0;

	(void)idx;
	(void)arg;
	if (c == NULL || buf == NULL)
		return run_fail(ctx, "set-up failed");
	memset(buf, 0x5a, s->size);
	run_ready(ctx);
	while (!run_stopped(ctx)) {
		t0 = now_ns();
		if (mbx_send(c, s->mailbox, buf, s->size, 0, -1) < 0)
			return role_fail(ctx, "mbx_send", c);
		if (mbx_recv(c, NULL, buf, s->size, NULL, -1) < 0)
			return role_fail(ctx, "mbx_recv", c);
		if (run_timing(ctx))
			run_latency(ctx, (uint64_t)(now_ns() - t0));
		n++;
		run_tick(ctx, n, n * s->size);
	}
	run_report(ctx, n, n * s->size);
	if (mbx_send(c, s->mailbox, buf, s->size - 1, 0, -1) < 0)
		return role_fail(ctx, "mbx_send", c);
	mbx_close(c);
	return 0;
}

static int
pong(struct runctx *ctx, const struct spec *s, unsigned idx, void *arg)
{
	mbx_t *c = receiver_open(ctx, s);
	char *buf = malloc(s->size);
	char to[32] = "";
	long to_id = 0;
	struct mbx_meta meta;

	(void)idx;
	(void)arg;
	if (c == NULL || buf == NULL)
		return run_fail(ctx, "set-up failed");
	run_ready(ctx);
	for (;;) {
		ssize_t n = mbx_recv(c, s->mailbox, buf, s->size, &meta, -1);

		if (n < 0)
			return role_fail(ctx, "mbx_recv", c);
		if ((size_t)n < s->size)
			break;
		if (meta.sender_id != to_id) {
			to_id = meta.sender_id;
			snprintf(to, sizeof(to), "@%ld", to_id);
		}
		if (mbx_send(c, to, buf, (size_t)n, 0, -1) < 0)
			return role_fail(ctx, "mbx_send (reply)", c);
	}
	mbx_close(c);
	return 0;
}

static const char *
mailbox_prefix(enum kind k)
{
	switch (k) {
	case K_PINGPONG:
		return "bench.pp";
	case K_FANIN:
		return "bench.fanin";
	case K_SCALE:
		return "bench.scale";
	default:
		return "bench.tput";
	}
}

void
mbxload_run(const struct spec *s0, struct result *r)
{
	static unsigned seq;
	struct spec s = *s0;
	struct job j = { 0 };
	struct mbx_attr a;
	char name[64];
	mbx_t *admin;
	size_t depth;

	memset(r, 0, sizeof(*r));
	r->spec = s;
	if ((s.path == P_MBX_SEALED || s.path == P_MBX_SHARED) &&
	    !mbxload_zerocopy_built()) {
		snprintf(r->err, sizeof(r->err), "zero-copy calls not in "
		    "this libmbx");
		return;
	}
	if (s.path == P_MBX_USERS && geteuid() != 0) {
		snprintf(r->err, sizeof(r->err), "needs root to receive "
		    "as uid %d", BENCH_OTHER_UID);
		return;
	}
	snprintf(name, sizeof(name), "%s.%u", mailbox_prefix(s.kind), seq++);
	s.mailbox = name;
	if ((admin = mbx_open(s.sock)) == NULL) {
		snprintf(r->err, sizeof(r->err), "mbx_open: %s",
		    errname(errno));
		return;
	}
	mbx_attr_init(&a);
	depth = QUEUE_BYTES / s.size;
	if (depth < QUEUE_MIN)
		depth = QUEUE_MIN;
	if (depth < s.batch)
		depth = s.batch;
	if (depth < (size_t)a.capacity)
		a.capacity = (long)depth;
	if (a.max_msg < s.size)
		a.max_msg = s.size;
	if (s.path == P_MBX_USERS)
		a.mode = 0604;
	if (mbx_create(admin, name, &a) < 0) {
		snprintf(r->err, sizeof(r->err), "mbx_create: %s",
		    errname(errno));
		mbx_close(admin);
		return;
	}

	if (s.kind == K_PINGPONG) {
		j.sender = ping;
		j.receiver = pong;
	} else if (s.path == P_MBX_SEALED || s.path == P_MBX_SHARED) {
		j.sender = send_zerocopy;
		j.receiver = recv_zerocopy;
	} else if (path_info[s.path].batch) {
		j.sender = send_batch;
		j.receiver = recv_batch;
	} else {
		j.sender = send_each;
		j.receiver = recv_each;
	}
	run_job(&s, &j, r);
	r->spec.mailbox = NULL;
	if (mbx_destroy(admin, name) < 0 && r->ok) {
		r->ok = false;
		snprintf(r->err, sizeof(r->err), "mbx_destroy: %s",
		    errname(errno));
	}
	mbx_close(admin);
}

/* Creates the idle mailboxes prefix.from .. prefix.(to - 1). */
int
mbxload_create(mbx_t *admin, const char *prefix, long from, long to)
{
	char name[64];

	for (long i = from; i < to; i++) {
		snprintf(name, sizeof(name), "%s.%ld", prefix, i);
		if (mbx_create(admin, name, NULL) < 0) {
			fprintf(stderr, "mbx-bench: mbx_create %s: %s\n", name,
			    errname(errno));
			return -1;
		}
	}
	return 0;
}
