/*
 * idle.c - what an mbxd costs when nothing happens (issue 11): idle
 * connections and receivers blocked in mbx_recv(), and the CPU a
 * blocking call spends before it sleeps.
 *
 * One daemon of its own; the benchmark process opens n idle connections
 * and n more whose receivers block, each in a thread of its own (one
 * handle per thread, as mbx(3) allows), on a mailbox of its own with
 * nothing in it.  Once every receiver sleeps, the daemon's CPU time is
 * read around a window of the given length: an idle daemon has no timer
 * that fires and nothing to poll.
 *
 * A blocked call's CPU is the thread's own clock (CLOCK_THREAD_CPUTIME_ID
 * just before the call; pthread_getcpuclockid() from outside once it
 * sleeps): what the call spent before it slept, its request and the
 * poll() that sleeps included, after a receive with timeout 0 has warmed
 * the handle and the thread's stack.  Asleep means: the thread's state in
 * /proc/self/task/TID/stat is S and its clock no longer moves (a blocking
 * call writes its request before it sleeps, so the daemon has it).
 *
 * The receivers are woken at the end by one message each, and each also
 * has a time-out of its own, so that nothing waits without a bound.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

/* A receiver's own bound: the window, then this much. */
#define IDLE_GRACE_MS	30000
/* How long the receivers get to fall asleep. */
#define IDLE_SETTLE_MS	20000
#define IDLE_STACK	(256 * KIB)

struct sleeper {
	pthread_t	 th;
	bool		 started;
	mbx_t		*c;
	char		 name[32];
	int		 timeout_ms;
	_Atomic pid_t	 tid;		/* set once it is about to call */
	_Atomic int64_t	 cpu0;		/* thread CPU ns before the call */
	_Atomic int	 result;	/* 1 received, -1 failed, 0 not yet */
	int		 err;
};

static int64_t
thread_cpu_ns(clockid_t clk)
{
	struct timespec ts;

	if (clock_gettime(clk, &ts) < 0)
		return -1;
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *
sleeper_main(void *arg)
{
	struct sleeper *s = arg;
	char buf[64];
	ssize_t n;

	/*
	 * A receive that does not wait first: the stack pages of the call
	 * and the handle's buffers are touched once (a fresh page costs
	 * microseconds here), so that what is measured is the blocking
	 * call itself.
	 */
	n = mbx_recv(s->c, s->name, buf, sizeof(buf), NULL, 0);
	if (n >= 0 || errno != EAGAIN) {
		s->err = n >= 0 ? EEXIST : errno;
		atomic_store(&s->result, -1);
		return NULL;
	}
	atomic_store(&s->cpu0, thread_cpu_ns(CLOCK_THREAD_CPUTIME_ID));
	atomic_store(&s->tid, gettid());
	n = mbx_recv(s->c, s->name, buf, sizeof(buf), NULL, s->timeout_ms);
	s->err = n < 0 ? errno : 0;
	atomic_store(&s->result, n >= 0 ? 1 : -1);
	return NULL;
}

/* The state letter of one of our threads in /proc, or 0. */
static char
task_state(pid_t tid)
{
	char path[64], line[512], *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%ld/stat", (long)tid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	p = fgets(line, sizeof(line), f);
	fclose(f);
	if (p == NULL || (p = strrchr(line, ')')) == NULL || p[1] != ' ')
		return 0;
	return p[2];
}

/* The CPU a sleeper has spent in its call, once it sleeps; -1 if not. */
static int64_t
asleep_cpu(struct sleeper *s)
{
	clockid_t clk;
	int64_t a, b;
	pid_t tid = atomic_load(&s->tid);

	if (tid == 0 || atomic_load(&s->result) != 0 ||
	    pthread_getcpuclockid(s->th, &clk) != 0)
		return -1;
	a = thread_cpu_ns(clk);
	if (task_state(tid) != 'S')
		return -1;
	poll(NULL, 0, 1);
	b = thread_cpu_ns(clk);
	if (a < 0 || a != b || task_state(tid) != 'S')
		return -1;
	return b - atomic_load(&s->cpu0);
}

static int
cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;

	return a < b ? -1 : a > b;
}

/* Fails the figures with a reason; returns -1. */
static int
idle_fail(struct idlefig *f, const char *what, int err)
{
	snprintf(f->err, sizeof(f->err), "%s: %s", what, strerror(err));
	return -1;
}

static int
idle_measure(const struct daemon *d, long n, double seconds,
    struct idlefig *f, mbx_t **idle, struct sleeper *s, mbx_t *admin)
{
	int64_t *spin = calloc((size_t)n, sizeof(*spin));
	int64_t deadline, t0, t1;
	uint64_t b0, b1;
	pthread_attr_t attr;
	long left;

	if (spin == NULL)
		return idle_fail(f, "calloc", ENOMEM);
	for (long i = 0; i < n; i++) {
		if ((idle[i] = mbx_open(d->sock)) == NULL) {
			free(spin);
			return idle_fail(f, "mbx_open (idle)", errno);
		}
		f->conns = i + 1;
	}
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, IDLE_STACK);
	for (long i = 0; i < n; i++) {
		struct sleeper *z = &s[i];
		int err;

		snprintf(z->name, sizeof(z->name), "bench.idle.%ld", i);
		z->timeout_ms = (int)(seconds * 1000) + IDLE_SETTLE_MS +
		    IDLE_GRACE_MS;
		if ((z->c = mbx_open(d->sock)) == NULL ||
		    mbx_create(admin, z->name, NULL) < 0 ||
		    mbx_bind(z->c, z->name, MBX_BIND_EXCLUSIVE) < 0) {
			pthread_attr_destroy(&attr);
			free(spin);
			return idle_fail(f, "a blocked receiver's "
			    "set-up", errno);
		}
		if ((err = pthread_create(&z->th, &attr, sleeper_main, z))
		    != 0) {
			pthread_attr_destroy(&attr);
			free(spin);
			return idle_fail(f, "pthread_create", err);
		}
		z->started = true;
	}
	pthread_attr_destroy(&attr);

	/* Every receiver asleep in its call, its request with the daemon. */
	deadline = now_ns() + (int64_t)IDLE_SETTLE_MS * 1000000;
	for (long i = 0; i < n; i++) {
		while ((spin[i] = asleep_cpu(&s[i])) < 0) {
			if (atomic_load(&s[i].result) != 0 ||
			    now_ns() > deadline) {
				free(spin);
				return idle_fail(f, "a receiver did "
				    "not sleep", s[i].err ? s[i].err :
				    ETIMEDOUT);
			}
			poll(NULL, 0, 1);
		}
	}
	f->blocked = n;
	qsort(spin, (size_t)n, sizeof(*spin), cmp_i64);
	f->spin_p50 = (double)spin[n / 2] / 1e3;
	f->spin_max = (double)spin[n - 1] / 1e3;
	free(spin);

	t0 = now_ns();
	b0 = cpu_ns(d->pid);
	poll(NULL, 0, (int)(seconds * 1000));
	b1 = cpu_ns(d->pid);
	t1 = now_ns();
	f->secs = (double)(t1 - t0) / 1e9;
	f->cpu_pct = (double)(b1 - b0) / (double)(t1 - t0) * 100;

	/* All still asleep: nothing woke them meanwhile. */
	for (left = 0; left < n; left++)
		if (atomic_load(&s[left].result) != 0)
			return idle_fail(f, "a receiver woke while "
			    "idle", s[left].err ? s[left].err : EINTR);
	return 0;
}

int
idle_run(const char *mbxd, long n, double seconds, struct idlefig *f)
{
	struct sleeper *s = calloc((size_t)n, sizeof(*s));
	mbx_t **idle = calloc((size_t)n, sizeof(*idle));
	struct daemon d;
	mbx_t *admin = NULL;
	int ret = -1;

	memset(f, 0, sizeof(*f));
	if (s == NULL || idle == NULL) {
		free(s);
		free(idle);
		return idle_fail(f, "calloc", ENOMEM);
	}
	if (daemon_start(&d, mbxd) < 0) {
		free(s);
		free(idle);
		return idle_fail(f, "mbxd", ECHILD);
	}
	if ((admin = mbx_open(d.sock)) == NULL)
		idle_fail(f, "mbx_open", errno);
	else
		ret = idle_measure(&d, n, seconds, f, idle, s, admin);
	/* Wake every receiver that sleeps, then wait for all of them. */
	for (long i = 0; i < n; i++) {
		if (!s[i].started)
			continue;
		if (atomic_load(&s[i].result) == 0 && mbx_send(admin,
		    s[i].name, "x", 1, 0, 1000) < 0 && ret == 0)
			ret = idle_fail(f, "waking a receiver",
			    errno);
		pthread_join(s[i].th, NULL);
		if (atomic_load(&s[i].result) < 0 && ret == 0)
			ret = idle_fail(f, "a blocked receive",
			    s[i].err);
	}
	for (long i = 0; i < n; i++) {
		mbx_close(s[i].c);
		mbx_close(idle[i]);
	}
	mbx_close(admin);
	daemon_stop(&d);
	free(s);
	free(idle);
	f->ok = ret == 0;
	return ret;
}
