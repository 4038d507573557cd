/*
 * run.c - one measured run: the roles of a workload forked into their own
 * processes, started together, watched, and their figures collected.
 *
 * Invariants:
 * - Every role process signals "ready" once its set-up (connect, bind,
 *   open) is done and then waits for "go", which the parent gives all of
 *   them at once (closing the go pipe): set-up is never measured.
 * - The first spec.warm messages warm the path up (buffer pools, first
 *   touches of pages, allocator) and are not timed.  The clock runs from
 *   the reporting role's warm-th message (run_tick()) to its last one;
 *   once it has run spec.seconds, the reporting role raises "stop" and
 *   the senders send their last message.  What was queued then is
 *   received and timed too, as it would be in a steady stream.
 * - Nothing waits without a bound: the parent gives the roles a deadline
 *   (the run's length plus a grace period), kills every one of them when
 *   it passes or as soon as one fails, and each role also has an alarm()
 *   of its own and dies with the parent (PR_SET_PDEATHSIG).
 * - CPU time is each process's own (schedstat, nanoseconds), counted from
 *   "go" to its end; the broker's (mbxd or the relay) is sampled by the
 *   parent around the same span.
 * - Role processes leave through _exit(): the parent's stdio buffers and
 *   atexit handlers are not theirs.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

/* Time the roles get beyond the run's length before they are killed
 * (short runs: a smoke test, which must end soon whatever happens). */
#define GRACE_S		30
#define QUICK_GRACE_S	8
/* Time the roles get to become ready. */
#define READY_S		20
#define MAX_ROLES	(FANIN_SENDERS + 2)

/* The page the roles share with the parent (MAP_SHARED, anonymous). */
struct runctx {
	int		 ready_w;	/* a role writes one byte when ready */
	int		 go_r;		/* EOF on it means "go" */
	int64_t		 t_go;		/* ns, set before "go" */
	int64_t		 span;		/* ns to time, after the warm-up */
	uint64_t	 warm;		/* messages not timed */
	uint64_t	 check_every;	/* messages between clock reads */
	_Atomic int	 stop;		/* the senders send their last */
	_Atomic int	 failed;	/* the first failure writes err */
	char		 err[160];
	/* Written by the reporting role only. */
	uint64_t	 next_check;
	int64_t		 t_warm;	/* ns: the clock started */
	uint64_t	 msgs_warm, bytes_warm;
	uint64_t	 msgs, bytes;	/* in all, warm-up included */
	int64_t		 t_end;
	_Atomic uint64_t cpu_send, cpu_recv;	/* ns, summed */
	_Atomic uint32_t nlat;
	uint32_t	 lat[LAT_MAX];	/* round trips, ns */
};

/* In a role process: which counter its CPU time goes to. */
static _Atomic uint64_t *role_cpu;
static uint64_t role_cpu0;

int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Time a process has run on a CPU, in ns (0: itself). */
uint64_t
cpu_ns(pid_t pid)
{
	char path[64];
	unsigned long long ns = 0;
	FILE *f;

	if (pid == 0)
		snprintf(path, sizeof(path), "/proc/self/schedstat");
	else
		snprintf(path, sizeof(path), "/proc/%ld/schedstat", (long)pid);
	f = fopen(path, "re");
	if (f != NULL) {
		if (fscanf(f, "%llu", &ns) != 1)
			ns = 0;
		fclose(f);
		return ns;
	}
	if (pid == 0) {
		/* No schedstat in this kernel: rusage, in microseconds. */
		struct rusage ru;

		getrusage(RUSAGE_SELF, &ru);
		return ((uint64_t)ru.ru_utime.tv_sec +
		    (uint64_t)ru.ru_stime.tv_sec) * 1000000000 +
		    ((uint64_t)ru.ru_utime.tv_usec +
		    (uint64_t)ru.ru_stime.tv_usec) * 1000;
	}
	return 0;
}

/* VmRSS of a process, in KiB, or -1. */
long
rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Reads (or writes) one byte in every page: what a user of a shared
 * buffer pays at least, the faults of its first touch included. */
static volatile uint8_t touch_sink;

void
touch_pages(volatile uint8_t *p, size_t len, bool write)
{
	uint8_t sum = 0;

	for (size_t off = 0; off < len; off += 4096) {
		if (write)
			p[off] = (uint8_t)off;
		else
			sum += p[off];
	}
	touch_sink = sum;
}

int
run_fail(struct runctx *ctx, const char *fmt, ...)
{
	int expected = 0;
	va_list ap;

	if (atomic_compare_exchange_strong(&ctx->failed, &expected, 1)) {
		va_start(ap, fmt);
		vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Set-up done: tell the parent, wait for everyone's start. */
void
run_ready(struct runctx *ctx)
{
	char b = 1, x;

	if (write(ctx->ready_w, &b, 1) != 1)
		_exit(3);
	while (read(ctx->go_r, &x, 1) < 0 && errno == EINTR)
		;
	role_cpu0 = cpu_ns(0);
}

/*
 * The reporting role's count so far (messages, or round trips), after
 * every message or batch: starts the clock at the end of the warm-up and
 * raises "stop" when it has run long enough.
 */
void
run_tick(struct runctx *ctx, uint64_t msgs, uint64_t bytes)
{
	if (ctx->t_warm == 0) {
		if (msgs < ctx->warm)
			return;
		ctx->t_warm = now_ns();
		ctx->msgs_warm = msgs;
		ctx->bytes_warm = bytes;
		ctx->next_check = msgs + ctx->check_every;
		return;
	}
	if (msgs < ctx->next_check)
		return;
	ctx->next_check = msgs + ctx->check_every;
	if (now_ns() - ctx->t_warm >= ctx->span)
		atomic_store(&ctx->stop, 1);
}

/* True once the clock has started (for latency samples). */
bool
run_timing(const struct runctx *ctx)
{
	return ctx->t_warm != 0;
}

/* True when a sender should send its last message. */
bool
run_stopped(struct runctx *ctx)
{
	return atomic_load_explicit(&ctx->stop, memory_order_relaxed) != 0;
}

/* The reporting role's totals at its last message; stops the clock. */
void
run_report(struct runctx *ctx, uint64_t msgs, uint64_t bytes)
{
	ctx->t_end = now_ns();
	ctx->msgs = msgs;
	ctx->bytes = bytes;
}

void
run_latency(struct runctx *ctx, uint64_t ns)
{
	uint32_t i = atomic_fetch_add(&ctx->nlat, 1);

	if (i < LAT_MAX)
		ctx->lat[i] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The value below which a fraction q of the sorted samples lie, in us. */
static double
percentile(const uint32_t *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)n);

	if (i >= n)
		i = n - 1;
	return v[i] / 1e3;
}

/* Forks one role; the child never returns. */
static pid_t
role_fork(struct runctx *ctx, int ready_r, int go_w, role_fn fn,
    _Atomic uint64_t *cpu, const struct spec *s, unsigned idx, void *arg,
    int alarm_s)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	int ret;

	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(4);
	close(ready_r);
	close(go_w);
	alarm((unsigned)alarm_s);
	role_cpu = cpu;
	ret = fn(ctx, s, idx, arg);
	if (role_cpu != NULL)
		atomic_fetch_add(role_cpu, cpu_ns(0) - role_cpu0);
	_exit(ret == 0 ? 0 : 1);
}

static void
kill_all(const pid_t *pids, int n)
{
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGKILL);
}

/*
 * Waits until the roles in pids[0..n) have exited, at most until
 * deadline (ns).  One that fails gets the others killed.  Returns 0 when
 * all ended well, -1 otherwise (the reason in ctx->err).
 */
static int
wait_roles(struct runctx *ctx, pid_t *pids, int n, int64_t deadline)
{
	int left = n, ret = 0;

	while (left > 0) {
		bool reaped = false;

		/* Each pid by name: mbxd is our child too, and not a role. */
		for (int i = 0; i < n; i++) {
			int st;

			if (pids[i] <= 0 || waitpid(pids[i], &st, WNOHANG) !=
			    pids[i])
				continue;
			pids[i] = -1;
			left--;
			reaped = true;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
				if (WIFSIGNALED(st))
					run_fail(ctx, "a role died of "
					    "signal %d", WTERMSIG(st));
				else
					run_fail(ctx, "a role failed");
				kill_all(pids, n);
				ret = -1;
			}
		}
		if (reaped)
			continue;
		if (now_ns() > deadline) {
			run_fail(ctx, "timed out");
			kill_all(pids, n);
			ret = -1;
			deadline = INT64_MAX;
		}
		poll(NULL, 0, 2);
	}
	return ret;
}

/* Reaps one process, killing it first. */
static void
kill_reap(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/*
 * Waits for a ready byte from each of the n roles in pids (and the relay,
 * middle, if > 0); -1 as soon as one of them has died instead (it is
 * reaped: its pid becomes -1) or when time runs out.
 */
static int
wait_ready(struct runctx *ctx, int ready_r, pid_t *pids, int n,
    pid_t *middle)
{
	int64_t deadline = now_ns() + (int64_t)READY_S * 1000000000;
	int got = 0, want = n + (*middle > 0);

	while (got < want) {
		struct pollfd pfd = { .fd = ready_r, .events = POLLIN };
		char buf[16];
		ssize_t k;

		if (now_ns() > deadline)
			return run_fail(ctx, "roles not ready in %d s",
			    READY_S);
		if (poll(&pfd, 1, 50) <= 0) {
			for (int i = -1; i < n; i++) {
				pid_t *p = i < 0 ? middle : &pids[i];

				if (*p > 0 && waitpid(*p, NULL, WNOHANG) == *p) {
					*p = -1;
					return run_fail(ctx, "a role failed "
					    "to start");
				}
			}
			continue;
		}
		k = read(ready_r, buf, sizeof(buf));
		if (k <= 0)
			return run_fail(ctx, "a role failed to start");
		got += (int)k;
	}
	return 0;
}

void
run_job(const struct spec *s, const struct job *j, struct result *r)
{
	struct runctx *ctx;
	pid_t roles[MAX_ROLES], middle = -1, broker;
	int ready[2], go[2], n = 0, ret, grace;
	uint64_t bcpu0 = 0, bcpu1 = 0;
	int64_t deadline;

	memset(r, 0, sizeof(*r));
	r->spec = *s;
	ctx = mmap(NULL, sizeof(*ctx), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctx == MAP_FAILED) {
		snprintf(r->err, sizeof(r->err), "mmap: %s", strerror(errno));
		return;
	}
	if (pipe(ready) < 0 || pipe(go) < 0) {
		snprintf(r->err, sizeof(r->err), "pipe: %s", strerror(errno));
		munmap(ctx, sizeof(*ctx));
		return;
	}
	ctx->ready_w = ready[1];
	ctx->go_r = go[0];
	ctx->span = (int64_t)(s->seconds * 1e9);
	ctx->warm = s->warm;
	/* The clock costs little next to a large message or a round trip,
	 * more next to a 64-byte one. */
	ctx->check_every = s->size >= 64 * KIB || s->kind == K_PINGPONG ?
	    1 : 64;
	grace = s->seconds < 0.5 ? QUICK_GRACE_S : GRACE_S;
	fflush(NULL);

	if (j->middle != NULL)
		middle = role_fork(ctx, ready[0], go[1], j->middle, NULL, s, 0,
		    j->arg, (int)s->seconds + 2 * grace);
	roles[n++] = role_fork(ctx, ready[0], go[1], j->receiver,
	    &ctx->cpu_recv, s, 0, j->arg, (int)s->seconds + grace);
	for (unsigned i = 0; i < s->senders && n < MAX_ROLES; i++)
		roles[n++] = role_fork(ctx, ready[0], go[1], j->sender,
		    &ctx->cpu_send, s, i, j->arg, (int)s->seconds + grace);
	close(ready[1]);
	close(go[0]);

	ret = wait_ready(ctx, ready[0], roles, n, &middle);
	broker = middle > 0 ? middle : s->broker;
	if (ret == 0) {
		if (broker > 0)
			bcpu0 = cpu_ns(broker);
		ctx->t_go = now_ns();
		close(go[1]);
		go[1] = -1;
		deadline = ctx->t_go + (int64_t)((s->seconds + grace) * 1e9);
		ret = wait_roles(ctx, roles, n, deadline);
		if (broker > 0)
			bcpu1 = cpu_ns(broker);
	} else {
		kill_all(roles, n);
		(void)wait_roles(ctx, roles, n, INT64_MAX);
	}
	if (go[1] >= 0)
		close(go[1]);
	close(ready[0]);
	kill_reap(middle);

	if (ret == 0 && (ctx->t_warm == 0 || ctx->msgs <= ctx->msgs_warm))
		ret = run_fail(ctx, "no message was timed");
	if (ret == 0) {
		/* CPU time counts from "go": divided by every message. */
		double all = (double)ctx->msgs;

		r->ok = true;
		r->msgs = ctx->msgs - ctx->msgs_warm;
		r->secs = (double)(ctx->t_end - ctx->t_warm) / 1e9;
		r->rate = (double)r->msgs / r->secs;
		r->bw = (double)(ctx->bytes - ctx->bytes_warm) / r->secs;
		r->cpu_send = (double)ctx->cpu_send / 1e3 / all;
		r->cpu_recv = (double)ctx->cpu_recv / 1e3 / all;
		if (broker > 0)
			r->cpu_broker = (double)(bcpu1 - bcpu0) / 1e3 / all;
		else
			r->cpu_broker = -1;
		if (ctx->nlat > 0) {
			size_t nl = ctx->nlat > LAT_MAX ? LAT_MAX : ctx->nlat;

			qsort(ctx->lat, nl, sizeof(ctx->lat[0]), cmp_u32);
			r->p50 = percentile(ctx->lat, nl, 0.50);
			r->p99 = percentile(ctx->lat, nl, 0.99);
			r->p999 = percentile(ctx->lat, nl, 0.999);
		}
	} else {
		snprintf(r->err, sizeof(r->err), "%s", ctx->err[0] ? ctx->err :
		    "failed");
	}
	munmap(ctx, sizeof(*ctx));
}
