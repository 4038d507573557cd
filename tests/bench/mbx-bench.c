/*
 * mbx-bench.c - how close mbx comes to the speed of the machine.
 *
 * One program, one run, one machine: the workloads of issue 5 through a
 * real mbxd (started here, on a socket in a mkdtemp() directory) and the
 * same workloads over the paths mbx competes with (baseline.c): a direct
 * Unix stream socket, one write per message and 64 frames per writev, a
 * naive one-process relay, and POSIX message queues.  Sender and receiver
 * are separate processes.
 *
 *   throughput  one sender, one receiver, 64 B to 64 MiB, one call per
 *               message and batches of 64; mbx with credit off and on, and
 *               the zero-copy calls (sealed and MBX_SHARED) from 1 MiB;
 *               at 1 MiB also send/recv with the receiver of another uid
 *   ping-pong   64 B: a request to a mailbox, the answer to "@ID"
 *   fan-in      8 senders into one receiver
 *   scale       throughput with 10, 10 000 and 100 000 mailboxes existing
 *   memory      mbxd's VmRSS per idle mailbox and per idle connection,
 *               and 10 000 connections held while mbx keeps working
 *   idle        mbxd's CPU with 1 000 idle connections and 1 000
 *               receivers blocked in mbx_recv() for 10 s, and the CPU a
 *               blocking call spends before it sleeps (idle.c)
 *
 * Every mbx figure is printed with its ratio to each baseline, then the
 * targets of issue 11 with MET or MISSED, each judged on mbx's default
 * mode (report.c).  Nothing is asserted: the exit
 * status says only whether the benchmark itself could run.
 *
 * Each figure is the median of three short runs (a VM's hiccups move
 * single runs by tens of percent).  See usage() for the options; --only
 * runs one workload, for profiling it (perf, strace -f).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

const struct path_info path_info[P_NPATH] = {
	[P_DIRECT] = { "direct", "direct, 1 write/msg", false, false },
	[P_DIRECT_B] = { "direct_b64", "direct, writev 64", true, false },
	[P_RELAY] = { "relay", "relay, 1 write/msg", false, false },
	[P_RELAY_B] = { "relay_b64", "relay, writev 64", true, false },
	[P_MQ] = { "mq", "POSIX mq", false, false },
	[P_MBX] = { "mbx", "mbx send/recv", false, true },
	[P_MBX_CR] = { "mbx_nocredit", "mbx send/recv, MBX_CREDIT=0", false,
	    false },
	[P_MBX_B] = { "mbx_b64", "mbx sendv/recvv 64", true, true },
	[P_MBX_B_CR] = { "mbx_b64_nocredit", "mbx sendv/recvv 64, MBX_CREDIT=0",
	    true, false },
	[P_MBX_SEALED] = { "mbx_sealed", "mbx sendmsg sealed", false, true },
	[P_MBX_SHARED] = { "mbx_shared", "mbx sendmsg MBX_SHARED", false,
	    true },
	[P_MBX_USERS] = { "mbx_2users", "mbx send/recv, two users", false,
	    true },
	[P_CAND_SOCK] = { "cand_sock", "candidate C1 socket posts", false,
	    false },
	[P_CAND_RING] = { "cand_ring", "candidate C2 rings", false, false },
};

static bool
is_prototype(enum path p)
{
	return p == P_CAND_SOCK || p == P_CAND_RING;
}

/* The plan of this run: where mbxd is, which workloads, how often. */
struct bench {
	struct report	 rep;
	const char	*mbxd;
	unsigned	 reps;		/* runs per workload, median kept */
	unsigned	 reps_noisy;	/* the same for latency-bound ones */
	/* --only KIND/PATH/SIZE: run only what matches ("" matches all). */
	char		 only_kind[32];
	char		 only_path[32];
	size_t		 only_size;
};

#define NCONN		10000		/* idle connections held */
#define NIDLE		1000		/* idle connections, and as many
					 * blocked receivers */
#define IDLE_SECONDS	10.0		/* the idle window */
#define QUICK_NIDLE	50
#define QUICK_IDLE_SECONDS 0.3
#define NMAILBOX	100000		/* mailboxes at the last step */
#define NSTEPS		3		/* mailbox counts compared */
#define SECONDS		0.6		/* per run */
#define REPS		3		/* runs per workload */
#define REPS_NOISY	5		/* for ping-pong and mailbox counts */
#define REPS_MAX	9
#define QUICK_SECONDS	0.05
#define WARM_MIN	8		/* messages before the clock starts */
#define WARM_MAX	4096
#define WARM_SHARED	24		/* more than the sender's pool */
#define PINGPONG_WARM	500

/* Keeps a result and says on stderr how it went. */
static void
add(struct report *rp, const struct result *r)
{
	struct result *p = realloc(rp->results, (rp->n + 1) * sizeof(*p));
	char a[32], b[32], sz[32];

	if (p == NULL) {
		fprintf(stderr, "mbx-bench: out of memory\n");
		exit(2);
	}
	rp->results = p;
	rp->results[rp->n++] = *r;
	if (!r->ok)
		fprintf(stderr, "  %-28s %-8s failed: %s\n",
		    path_info[r->spec.path].label,
		    size_str(r->spec.size, sz, sizeof(sz)), r->err);
	else if (r->spec.kind == K_PINGPONG)
		fprintf(stderr, "  %-28s %-8s p50 %.1f us\n",
		    path_info[r->spec.path].label,
		    size_str(r->spec.size, sz, sizeof(sz)), r->p50);
	else
		fprintf(stderr, "  %-28s %-8s %s msg/s %s B/s\n",
		    path_info[r->spec.path].label,
		    size_str(r->spec.size, sz, sizeof(sz)),
		    num_str(r->rate, a, sizeof(a)),
		    num_str(r->bw, b, sizeof(b)));
}

static bool
wanted(const struct bench *b, const struct spec *s)
{
	/* The runs of the memory section belong to it. */
	if (s->held != 0 && strcmp(b->only_kind, "memory") == 0)
		return true;
	return (b->only_kind[0] == '\0' ||
	    strcmp(b->only_kind, kind_key(s->kind)) == 0) &&
	    (b->only_path[0] == '\0' ||
	    strcmp(b->only_path, path_info[s->path].key) == 0) &&
	    (b->only_size == 0 || b->only_size == s->size);
}

static int
cmp_result(const void *x, const void *y)
{
	const struct result *a = x, *c = y;
	double ka = a->spec.kind == K_PINGPONG ? -a->p50 : a->rate;
	double kc = c->spec.kind == K_PINGPONG ? -c->p50 : c->rate;

	return ka < kc ? -1 : ka > kc;
}

/*
 * Runs the workloads of a set b->reps times each, in rounds (every
 * workload once, then again), and keeps for each the median run (by
 * rate, or by p50 for ping-pong).  A VM's hiccups move single runs by
 * tens of percent and come in bursts: rounds put each burst on all the
 * figures that are compared, not on one.  A failed run makes its
 * workload fail.  Returns -1 only when out of memory.
 */
static int
run_set(struct bench *b, const struct spec *set, size_t n, unsigned reps)
{
	struct result *r = calloc(n * reps, sizeof(*r));
	bool *failed = calloc(n, sizeof(*failed));

	if (r == NULL || failed == NULL) {
		free(r);
		free(failed);
		return -1;
	}
	for (unsigned k = 0; k < reps; k++) {
		for (size_t i = 0; i < n; i++) {
			struct result *ri = &r[i * reps + k];

			if (failed[i] || !wanted(b, &set[i]))
				continue;
			if (set[i].path < P_NBASE)
				baseline_run(&set[i], ri);
			else if (is_prototype(set[i].path))
				candidate_run(&set[i], ri);
			else
				mbxload_run(&set[i], ri);
			if (!ri->ok) {
				/* What is kept of a failed workload. */
				r[i * reps] = *ri;
				failed[i] = true;
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (!wanted(b, &set[i]))
			continue;
		if (failed[i]) {
			add(&b->rep, &r[i * reps]);
			continue;
		}
		qsort(&r[i * reps], reps, sizeof(*r), cmp_result);
		add(&b->rep, &r[i * reps + reps / 2]);
	}
	free(r);
	free(failed);
	return 0;
}

static unsigned
batch_for(size_t size)
{
	size_t b = BATCH_BYTES / size;

	return b >= BATCH_MAX ? BATCH_MAX : b < 1 ? 1 : (unsigned)b;
}

/*
 * Messages of warm-up before the clock starts: enough to fill the
 * sender's pool of MBX_SHARED buffers and the receiver's mappings, and
 * the allocators on every side; a short time in each case.
 */
static uint64_t
warm_for(enum kind k, enum path p, size_t size)
{
	uint64_t w = (64 * MIB) / size;

	if (k == K_PINGPONG)
		return PINGPONG_WARM;
	/* Until the pool holds every buffer the queue can have in use. */
	if (p == P_MBX_SHARED && w < WARM_SHARED)
		return WARM_SHARED;
	return w < WARM_MIN ? WARM_MIN : w > WARM_MAX ? WARM_MAX : w;
}

static struct spec
spec_of(const struct report *rp, enum kind k, enum path p, size_t size,
    const struct daemon *d)
{
	struct spec s = {
		.kind = k, .path = p, .size = size, .senders = 1,
		.batch = path_info[p].batch ? batch_for(size) : 1,
		/* A smoke test only has to go through every path. */
		.seconds = rp->seconds,
		.warm = rp->quick ? WARM_MIN : warm_for(k, p, size),
		.sock = d->sock,
		/* mbxd is the broker of mbx paths; the relay and the
		 * prototypes' daemon, roles of the run, are their own. */
		.broker = p >= P_NBASE && !is_prototype(p) ? d->pid : 0,
	};

	if (k == K_FANIN)
		s.senders = FANIN_SENDERS;
	return s;
}

/*
 * The sections.
 */

/* One set per message size: the baselines and every mbx mode. */
static int
section_tput(struct bench *b, const struct daemon *d)
{
	static const size_t full[] = { 64, 4 * KIB, 64 * KIB, MIB, 64 * MIB };
	static const size_t quick[] = { 64, 64 * KIB, MIB };
	const struct report *rp = &b->rep;
	const size_t *sizes = rp->quick ? quick : full;
	size_t nsizes = rp->quick ? 3 : 5;

	fprintf(stderr, "one-way throughput\n");
	for (size_t i = 0; i < nsizes; i++) {
		struct spec set[P_NPATH];
		size_t n = 0;

		for (int p = 0; p < P_NPATH; p++) {
			if ((p == P_MBX_SEALED || p == P_MBX_SHARED) &&
			    sizes[i] < MIB)
				continue;
			/* The target between two users is at 1 MiB. */
			if (p == P_MBX_USERS && sizes[i] != MIB)
				continue;
			if (is_prototype((enum path)p) &&
			    sizes[i] > CAND_MAX_PAYLOAD)
				continue;
			set[n++] = spec_of(rp, K_TPUT, (enum path)p, sizes[i],
			    d);
		}
		if (run_set(b, set, n, b->reps) < 0)
			return -1;
	}
	return 0;
}

static int
section_pingpong(struct bench *b, const struct daemon *d)
{
	static const enum path paths[] = { P_DIRECT, P_RELAY, P_MQ, P_MBX,
	    P_MBX_CR, P_CAND_SOCK, P_CAND_RING };
	const struct report *rp = &b->rep;
	struct spec set[sizeof(paths) / sizeof(paths[0])];

	fprintf(stderr, "ping-pong\n");
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		set[i] = spec_of(rp, K_PINGPONG, paths[i], 64, d);
	return run_set(b, set, sizeof(set) / sizeof(set[0]),
	    b->reps_noisy);
}

static int
section_fanin(struct bench *b, const struct daemon *d)
{
	const struct report *rp = &b->rep;
	struct spec set[P_MBX_B_CR + 3];

	fprintf(stderr, "fan-in, %d senders\n", FANIN_SENDERS);
	for (int p = 0; p <= P_MBX_B_CR; p++)
		set[p] = spec_of(rp, K_FANIN, (enum path)p, 64, d);
	set[P_MBX_B_CR + 1] = spec_of(rp, K_FANIN, P_CAND_SOCK, 64, d);
	set[P_MBX_B_CR + 2] = spec_of(rp, K_FANIN, P_CAND_RING, 64, d);
	return run_set(b, set, sizeof(set) / sizeof(set[0]), b->reps);
}

/*
 * Throughput with 10, 10 000 and 100 000 mailboxes: one daemon for each
 * count, all alive at once, so that the runs alternate between them and
 * share whatever else the machine is doing.  mbxd's memory per idle
 * mailbox comes from the largest, measured around the creation of its
 * last 90%.
 */
static int
section_scale(struct bench *b)
{
	static const long full[] = { 10, 10000, NMAILBOX };
	static const long quick[] = { 10, 500, 2000 };
	struct report *rp = &b->rep;
	const long *steps = rp->quick ? quick : full;
	struct daemon d[NSTEPS];
	struct spec set[2 * NSTEPS];
	size_t n = 0, up = 0;
	int ret = -1;

	fprintf(stderr, "many mailboxes\n");
	for (; up < NSTEPS; up++) {
		/* The run's own mailbox is one of the steps[up]. */
		long want = steps[up] - 1, part = want / 10, rss0, rss1;
		mbx_t *admin;
		int64_t t0, t1;
		int err;

		if (daemon_start(&d[up], b->mbxd) < 0)
			goto out;
		if ((admin = mbx_open(d[up].sock)) == NULL) {
			fprintf(stderr, "mbx-bench: mbx_open: %s\n",
			    strerror(errno));
			daemon_stop(&d[up]);
			goto out;
		}
		err = mbxload_create(admin, "bench.idle", 0, part);
		rss0 = rss_kib(d[up].pid);
		t0 = now_ns();
		if (err == 0)
			err = mbxload_create(admin, "bench.idle", part, want);
		t1 = now_ns();
		rss1 = rss_kib(d[up].pid);
		mbx_close(admin);
		if (err < 0) {
			daemon_stop(&d[up]);
			goto out;
		}
		if (up == NSTEPS - 1) {
			rp->mem.mb_ok = true;
			rp->mem.mb_from = part + 1;
			rp->mem.mb_to = want + 1;
			rp->mem.mb_rss0 = rss0;
			rp->mem.mb_rss1 = rss1;
			rp->mem.mb_rate = (double)(want - part) /
			    ((double)(t1 - t0) / 1e9);
		}
		fprintf(stderr, " %ld mailboxes\n", steps[up]);
		for (int p = P_MBX; p <= P_MBX_B; p += P_MBX_B - P_MBX) {
			set[n] = spec_of(rp, K_SCALE, (enum path)p, 64, &d[up]);
			set[n++].mailboxes = steps[up];
		}
	}
	ret = run_set(b, set, n, b->reps_noisy);
out:
	while (up-- > 0)
		daemon_stop(&d[up]);
	return ret;
}

static long
count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	long n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	if ((dir = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(dir)) != NULL)
		n += e->d_name[0] != '.';
	closedir(dir);
	return n;
}

/* As many descriptors as the kernel lets us have, for n connections. */
static long
raise_nofile(long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)want) {
		struct rlimit more = { (rlim_t)want, (rlim_t)want };

		if (setrlimit(RLIMIT_NOFILE, &more) == 0)
			return want;
	}
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	return rl.rlim_cur == RLIM_INFINITY ? want : (long)rl.rlim_cur;
}

static int
section_conns(struct bench *b)
{
	struct report *rp = &b->rep;
	long n = rp->quick ? 200 : NCONN;
	long limit = raise_nofile(n + 1024);
	struct daemon d;
	mbx_t **conns;
	int64_t t0;
	int ret = 0;
	long i;

	fprintf(stderr, "idle connections\n");
	if (limit < n + 64)
		n = limit - 64;
	if (n < 1 || (conns = calloc((size_t)n, sizeof(*conns))) == NULL)
		return -1;
	if (daemon_start(&d, b->mbxd) < 0) {
		free(conns);
		return -1;
	}
	/* Warm the daemon's allocator: the first connections cost more. */
	for (i = 0; i < 64 && i < n; i++)
		conns[i] = mbx_open(d.sock);
	for (i = 0; i < 64 && i < n; i++)
		mbx_close(conns[i]);
	rp->mem.cn_rss0 = rss_kib(d.pid);
	t0 = now_ns();
	for (i = 0; i < n; i++) {
		if ((conns[i] = mbx_open(d.sock)) == NULL) {
			snprintf(rp->mem.err, sizeof(rp->mem.err),
			    "mbx_open number %ld: %s", i + 1, strerror(errno));
			break;
		}
	}
	rp->mem.cn_rate = (double)i / ((double)(now_ns() - t0) / 1e9);
	rp->mem.cn_n = i;
	rp->mem.cn_rss1 = rss_kib(d.pid);
	rp->mem.cn_fds = count_fds(d.pid);
	rp->mem.cn_ok = i == n;
	fprintf(stderr, " %ld connections held\n", i);
	if (rp->mem.cn_ok) {
		struct spec set[3] = {
			spec_of(rp, K_PINGPONG, P_MBX, 64, &d),
			spec_of(rp, K_TPUT, P_MBX, 64, &d),
			spec_of(rp, K_TPUT, P_MBX_B, 64, &d),
		};

		for (size_t k = 0; k < 3; k++)
			set[k].held = n;
		if (run_set(b, set, 3, b->reps) < 0)
			ret = -1;
	}
	while (i-- > 0)
		mbx_close(conns[i]);
	free(conns);
	daemon_stop(&d);
	return ret;
}

/* An idle mbxd: n idle connections and n blocked receivers. */
static int
section_idle(struct bench *b)
{
	struct report *rp = &b->rep;
	long n = rp->quick ? QUICK_NIDLE : NIDLE;
	long limit = raise_nofile(2 * n + 1024);

	fprintf(stderr, "idle daemon\n");
	rp->idle_run = true;
	rp->idle_n = n;
	rp->idle_secs = rp->quick ? QUICK_IDLE_SECONDS : IDLE_SECONDS;
	if (limit < 2 * n + 64) {
		snprintf(rp->idle.err, sizeof(rp->idle.err), "needs %ld "
		    "descriptors, RLIMIT_NOFILE allows %ld", 2 * n + 64, limit);
		return 0;
	}
	/* A failure is reported with the figures; the run goes on. */
	if (idle_run(b->mbxd, n, rp->idle_secs, &rp->idle) == 0)
		fprintf(stderr, " mbxd %.3f%% of a core over %.1f s; a blocked "
		    "call %.1f us before it slept\n", rp->idle.cpu_pct,
		    rp->idle.secs, rp->idle.spin_p50);
	else
		fprintf(stderr, " failed: %s\n", rp->idle.err);
	return 0;
}

/* Durable sends (issue 13) beside one fdatasync() per message. */
static int
section_durable(struct bench *b)
{
	struct report *rp = &b->rep;
	double secs = rp->quick ? 0.3 : 2.0;

	fprintf(stderr, "durable sends\n");
	rp->dur_run = true;
	/* A failure is reported with the figures; the run goes on. */
	if (durable_run(b->mbxd, secs, &rp->dur) == 0)
		fprintf(stderr, " fdatasync/msg %.0f/s, 1 sender %.0f/s, "
		    "8 senders %.0f/s\n", rp->dur.fsync_rate, rp->dur.one_rate,
		    rp->dur.eight_rate);
	else
		fprintf(stderr, " failed: %s\n", rp->dur.err);
	return 0;
}

/*
 * Set-up and output.
 */

/* DIR/results.txt, DIR/results.json and the chart's data. */
static int
write_files(const struct report *rp, const char *dir)
{
	char path[PATH_MAX];
	int ret = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/results.txt", dir);
	if ((f = fopen(path, "we")) != NULL) {
		report_table(rp, f);
		if (fclose(f) != 0)
			ret = -1;
	} else {
		ret = -1;
	}
	snprintf(path, sizeof(path), "%s/results.json", dir);
	if ((f = fopen(path, "we")) != NULL) {
		report_json(rp, f);
		if (fclose(f) != 0)
			ret = -1;
	} else {
		ret = -1;
	}
	if (report_data(rp, dir) < 0)
		ret = -1;
	if (ret < 0)
		fprintf(stderr, "mbx-bench: cannot write the results in %s: "
		    "%s\n", dir, strerror(errno));
	return ret;
}

static void
machine(struct report *rp)
{
	struct utsname u;
	char line[256];
	time_t now = time(NULL);
	FILE *f;

	rp->nproc = sysconf(_SC_NPROCESSORS_ONLN);
	snprintf(rp->cpu, sizeof(rp->cpu), "unknown CPU");
	if ((f = fopen("/proc/cpuinfo", "re")) != NULL) {
		while (fgets(line, sizeof(line), f) != NULL) {
			char *colon = strchr(line, ':');

			if (strncmp(line, "model name", 10) != 0 ||
			    colon == NULL)
				continue;
			colon += 1 + (colon[1] == ' ');
			colon[strcspn(colon, "\n")] = '\0';
			snprintf(rp->cpu, sizeof(rp->cpu), "%s", colon);
			break;
		}
		fclose(f);
	}
	if (uname(&u) == 0)
		snprintf(rp->kernel, sizeof(rp->kernel), "%s", u.release);
	strftime(rp->date, sizeof(rp->date), "%Y-%m-%d %H:%M UTC",
	    gmtime(&now));
}

/* mbxd beside us (build/bench/... or build/), else on PATH. */
static const char *
find_mbxd(void)
{
	static char path[PATH_MAX];
	static const char *const rel[] = { "mbxd", "../mbxd" };
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (getenv("MBXD") != NULL && *getenv("MBXD") != '\0')
		return getenv("MBXD");
	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL)
			*slash = '\0';
		for (size_t i = 0; i < 2; i++) {
			if (snprintf(path, sizeof(path), "%s/%s", self,
			    rel[i]) < (int)sizeof(path) &&
			    access(path, X_OK) == 0)
				return path;
		}
	}
	return "mbxd";
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: mbx-bench [--quick] [--json] [--seconds S] "
	    "[--reps N] [--mbxd PATH]\n"
	    "                 [--out DIR] [--only KIND[/PATH[/SIZE]]]\n"
	    "  --quick      a much shorter run (a smoke test; rough figures)\n"
	    "  --json       print JSON instead of the table\n"
	    "  --seconds S  length of each run (default %.1f)\n"
	    "  --reps N     runs per workload, the median is kept (default "
	    "%d, 1 to %d)\n"
	    "  --mbxd PATH  the daemon to measure (default: $MBXD, else the "
	    "one\n               beside this program, else mbxd on PATH)\n"
	    "  --out DIR    also write DIR/results.txt, DIR/results.json and "
	    "the\n               data files of tests/bench/plot.gp\n"
	    "  --only K/P/S only the workloads of kind K (throughput, "
	    "pingpong, fanin,\n               scale, memory, idle, durable), path P (a JSON "
	    "key such as mbx_b64) and\n               size S in bytes; for "
	    "profiling one of them\n", SECONDS, REPS, REPS_MAX);
}

/* --only KIND[/PATH[/SIZE]] */
static int
parse_only(struct bench *b, const char *arg)
{
	char buf[96], *save = NULL, *tok;
	int field = 0;

	if (snprintf(buf, sizeof(buf), "%s", arg) >= (int)sizeof(buf))
		return -1;
	for (tok = strtok_r(buf, "/", &save); tok != NULL;
	    tok = strtok_r(NULL, "/", &save), field++) {
		if (field == 0)
			snprintf(b->only_kind, sizeof(b->only_kind), "%s", tok);
		else if (field == 1)
			snprintf(b->only_path, sizeof(b->only_path), "%s", tok);
		else if (field == 2)
			b->only_size = strtoul(tok, NULL, 10);
		else
			return -1;
	}
	if (strcmp(b->only_kind, "*") == 0)
		b->only_kind[0] = '\0';
	if (strcmp(b->only_path, "*") == 0)
		b->only_path[0] = '\0';
	return 0;
}

/* The section runs unless --only names another kind. */
static bool
section_wanted(const struct bench *b, const char *kind)
{
	return b->only_kind[0] == '\0' || strcmp(b->only_kind, kind) == 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "json", no_argument, NULL, 'j' },
		{ "seconds", required_argument, NULL, 's' },
		{ "reps", required_argument, NULL, 'r' },
		{ "mbxd", required_argument, NULL, 'm' },
		{ "out", required_argument, NULL, 'o' },
		{ "only", required_argument, NULL, 'O' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
	struct bench bench = { .reps = 0 };
	struct bench *b = &bench;
	struct report *rp = &bench.rep;
	const char *out = NULL;
	bool json = false, reps_given;
	struct daemon d;
	int ch, ret = 0;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'q':
			rp->quick = true;
			break;
		case 'j':
			json = true;
			break;
		case 's':
			rp->seconds = strtod(optarg, NULL);
			if (!(rp->seconds > 0 && rp->seconds <= 60)) {
				fprintf(stderr, "mbx-bench: --seconds: 0 < S "
				    "<= 60\n");
				return 2;
			}
			break;
		case 'r':
			b->reps = (unsigned)strtoul(optarg, NULL, 10);
			if (b->reps < 1 || b->reps > REPS_MAX) {
				fprintf(stderr, "mbx-bench: --reps: 1 to %d\n",
				    REPS_MAX);
				return 2;
			}
			break;
		case 'm':
			b->mbxd = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'O':
			if (parse_only(b, optarg) < 0) {
				fprintf(stderr, "mbx-bench: --only "
				    "KIND[/PATH[/SIZE]]\n");
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (rp->seconds == 0)
		rp->seconds = rp->quick ? QUICK_SECONDS : SECONDS;
	reps_given = b->reps != 0;
	if (b->reps == 0)
		b->reps = rp->quick ? 1 : REPS;
	/* Round trips through three processes on two cores vary the most
	 * (the ping-pong and mailbox-count comparisons): more runs. */
	b->reps_noisy = b->reps < REPS_NOISY && !rp->quick &&
	    !reps_given ? REPS_NOISY : b->reps;
	rp->reps = b->reps;
	rp->reps_noisy = b->reps_noisy;
	if (b->mbxd == NULL)
		b->mbxd = find_mbxd();
	/* The defaults are what is measured, whatever the caller's
	 * environment says. */
	unsetenv("MBX_CREDIT");
	unsetenv("MBX_PREFETCH");
	unsetenv("MBX_ZEROCOPY");
	unsetenv("MBX_SOCKET");
	signal(SIGPIPE, SIG_IGN);
	/* Deep POSIX queues of large messages need more than the default
	 * 800 KiB; failing that, the queue is refused and reported. */
	(void)setrlimit(RLIMIT_MSGQUEUE, &rl);
	machine(rp);

	if (section_wanted(b, "throughput") || section_wanted(b, "pingpong") ||
	    section_wanted(b, "fanin")) {
		if (daemon_start(&d, b->mbxd) < 0) {
			fprintf(stderr, "mbx-bench: cannot start %s\n",
			    b->mbxd);
			return 1;
		}
		if (section_tput(b, &d) < 0 || section_pingpong(b, &d) < 0 ||
		    section_fanin(b, &d) < 0)
			ret = 1;
		daemon_stop(&d);
	}
	if (ret == 0 && ((section_wanted(b, "scale") && section_scale(b) < 0) ||
	    (section_wanted(b, "memory") && section_conns(b) < 0) ||
	    (section_wanted(b, "idle") && section_idle(b) < 0) ||
	    (section_wanted(b, "durable") && section_durable(b) < 0)))
		ret = 1;
	if (ret != 0) {
		fprintf(stderr, "mbx-bench: the benchmark could not run (see "
		    "above)\n");
		free(rp->results);
		return 1;
	}

	if (json)
		report_json(rp, stdout);
	else
		report_table(rp, stdout);
	if (out != NULL && write_files(rp, out) < 0)
		ret = 1;
	free(rp->results);
	return ret;
}
