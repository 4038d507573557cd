/*
 * report.c - what a benchmark run found, for people and for machines: the
 * table (every figure, and for each mbx figure its ratio to each
 * baseline), the targets of issue 11 with MET or MISSED, the JSON, and the
 * data files that plot.gp draws.  It only reads the figures; nothing here
 * measures or judges whether the benchmark itself worked.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* Short names of the baselines, for the ratio columns. */
static const char *const base_short[P_NBASE] = {
	"direct", "dir-b64", "relay", "rel-b64", "mq",
};

const char *
size_str(size_t size, char *buf, size_t len)
{
	if (size >= MIB && size % MIB == 0)
		snprintf(buf, len, "%zu MiB", size / MIB);
	else if (size >= KIB && size % KIB == 0)
		snprintf(buf, len, "%zu KiB", size / KIB);
	else
		snprintf(buf, len, "%zu B", size);
	return buf;
}

/* Three significant digits and a unit prefix. */
const char *
num_str(double v, char *buf, size_t len)
{
	static const char *const unit[] = { "", " k", " M", " G" };
	int u = 0;

	while (v >= 1000 && u < 3) {
		v /= 1000;
		u++;
	}
	snprintf(buf, len, v >= 100 ? "%.0f%s" : v >= 10 ? "%.1f%s" :
	    "%.2f%s", v, unit[u]);
	return buf;
}

/*
 * Looking figures up.
 */

static const struct result *
find(const struct report *rp, enum kind k, enum path p, size_t size,
    long mailboxes, long held)
{
	for (size_t i = 0; i < rp->n; i++) {
		const struct result *r = &rp->results[i];

		if (r->ok && r->spec.kind == k && r->spec.path == p &&
		    r->spec.size == size && r->spec.mailboxes == mailboxes &&
		    r->spec.held == held)
			return r;
	}
	return NULL;
}

/*
 * The table.
 */

static void
print_header(const struct report *rp, FILE *f)
{
	fprintf(f, "mbx-bench: %ld x %s, Linux %s, %s\n", rp->nproc, rp->cpu,
	    rp->kernel, rp->date);
	if (rp->quick)
		fprintf(f, "--quick: each figure is one run of %.2f s with "
		    "almost no warm-up: rough.\n", rp->seconds);
	else
		fprintf(f, "Each figure: the median of %u runs of %.2f s (%u "
		    "runs for ping-pong and\nmailbox counts) after a "
		    "warm-up, in rounds over the paths compared.\n",
		    rp->reps, rp->seconds, rp->reps_noisy);
	fprintf(f, "One sender and one receiver process unless said.\n"
	    "snd/rcv/brk: microseconds of CPU per message (per round trip "
	    "in ping-pong) in the\nsender(s), the receiver and the broker "
	    "between them (mbxd or the relay).\nxNAME: the mbx figure "
	    "divided by that baseline's (for latency: above 1 is slower).\n");
}

static void
print_cpu(FILE *f, const struct result *r)
{
	const double v[3] = { r->cpu_send, r->cpu_recv, r->cpu_broker };

	for (int i = 0; i < 3; i++) {
		if (v[i] < 0)
			fprintf(f, " %6s", "-");
		else
			fprintf(f, v[i] < 10 ? " %6.2f" : v[i] < 100 ?
			    " %6.1f" : " %6.0f", v[i]);
	}
}

static void
print_ratio(FILE *f, double v, bool have)
{
	if (have)
		fprintf(f, " %7.2fx", v);
	else
		fprintf(f, " %8s", "-");
}

/* A throughput row: figure, CPU, and for mbx the ratio to each baseline. */
static void
print_rate_row(const struct report *rp, FILE *f, const struct result *r,
    const char *label)
{
	char a[32];

	fprintf(f, "%-28s", label);
	if (!r->ok) {
		fprintf(f, " n/a: %s\n", r->err);
		return;
	}
	fprintf(f, " %9s %8.3f", num_str(r->rate, a, sizeof(a)), r->bw / 1e9);
	print_cpu(f, r);
	if (r->note[0] != '\0')
		fprintf(f, " | %s", r->note);
	if (r->spec.path >= P_NBASE) {
		fprintf(f, " |");
		for (int p = 0; p < P_NBASE; p++) {
			const struct result *base = find(rp, r->spec.kind,
			    (enum path)p, r->spec.size, 0, 0);

			print_ratio(f, base ? r->rate / base->rate : 0,
			    base != NULL);
		}
	}
	fprintf(f, "\n");
}

static void
print_rate_head(FILE *f, const char *first)
{
	fprintf(f, "%-28s %9s %8s %6s %6s %6s |", first, "msg/s", "GB/s",
	    "snd", "rcv", "brk");
	for (int p = 0; p < P_NBASE; p++) {
		char h[16];

		snprintf(h, sizeof(h), "x%s", base_short[p]);
		fprintf(f, " %8s", h);
	}
	fprintf(f, "\n");
}

static void
print_tput(const struct report *rp, FILE *f)
{
	size_t last = 0;

	fprintf(f, "\n== One-way throughput (batch calls: %d messages, at most "
	    "%zu MiB, per call) ==\n", BATCH_MAX, BATCH_BYTES / MIB);
	fprintf(f, "sendmsg rows are zero-copy: no payload byte is copied; "
	    "the sender writes and the\nreceiver reads one byte in every "
	    "4 KiB page.  Every other row copies the payload\ninto the "
	    "receiver's buffer.\n");
	for (size_t i = 0; i < rp->n; i++) {
		const struct result *r = &rp->results[i];
		char sz[32];

		if (r->spec.kind != K_TPUT || r->spec.held != 0)
			continue;
		if (r->spec.size != last) {
			fprintf(f, "\n");
			print_rate_head(f, size_str(r->spec.size, sz,
			    sizeof(sz)));
			last = r->spec.size;
		}
		print_rate_row(rp, f, r, path_info[r->spec.path].label);
	}
}

static void
print_fanin(const struct report *rp, FILE *f)
{
	fprintf(f, "\n== Fan-in: %d sender processes into one receiver, 64 B "
	    "==\n", FANIN_SENDERS);
	print_rate_head(f, "path");
	for (size_t i = 0; i < rp->n; i++)
		if (rp->results[i].spec.kind == K_FANIN)
			print_rate_row(rp, f, &rp->results[i],
			    path_info[rp->results[i].spec.path].label);
}

static void
print_pingpong(const struct report *rp, FILE *f)
{
	static const enum path cmp[] = { P_DIRECT, P_RELAY, P_MQ };
	char a[32];

	fprintf(f, "\n== Ping-pong, 64 B (mbx: a request to a mailbox, the "
	    "answer to the sender's @ID) ==\n");
	fprintf(f, "%-28s %8s %8s %8s %9s %6s %6s %6s | %8s %8s %8s\n",
	    "path", "p50 us", "p99 us", "p999 us", "trips/s", "snd", "rcv",
	    "brk", "xdirect", "xrelay", "xmq");
	for (size_t i = 0; i < rp->n; i++) {
		const struct result *r = &rp->results[i];

		if (r->spec.kind != K_PINGPONG || r->spec.held != 0)
			continue;
		fprintf(f, "%-28s", path_info[r->spec.path].label);
		if (!r->ok) {
			fprintf(f, " n/a: %s\n", r->err);
			continue;
		}
		fprintf(f, " %8.1f %8.1f %8.1f %9s", r->p50, r->p99, r->p999,
		    num_str(r->rate, a, sizeof(a)));
		print_cpu(f, r);
		if (r->spec.path >= P_NBASE) {
			fprintf(f, " |");
			for (size_t k = 0; k < 3; k++) {
				const struct result *b = find(rp, K_PINGPONG,
				    cmp[k], 64, 0, 0);

				print_ratio(f, b ? r->p50 / b->p50 : 0,
				    b != NULL);
			}
		}
		fprintf(f, "\n");
	}
}

static void
print_scale(const struct report *rp, FILE *f)
{
	const struct result *ref[P_NPATH] = { 0 };
	char a[32];

	fprintf(f, "\n== Throughput with many mailboxes existing (64 B, one "
	    "in use, the others idle) ==\n");
	fprintf(f, "%-12s %-28s %9s %6s %6s %6s | %s\n", "mailboxes", "path",
	    "msg/s", "snd", "rcv", "brk", "x the fewest mailboxes");
	for (size_t i = 0; i < rp->n; i++) {
		const struct result *r = &rp->results[i];

		if (r->spec.kind != K_SCALE)
			continue;
		fprintf(f, "%-12ld %-28s", r->spec.mailboxes,
		    path_info[r->spec.path].label);
		if (!r->ok) {
			fprintf(f, " n/a: %s\n", r->err);
			continue;
		}
		if (ref[r->spec.path] == NULL)
			ref[r->spec.path] = r;
		fprintf(f, " %9s", num_str(r->rate, a, sizeof(a)));
		print_cpu(f, r);
		fprintf(f, " |");
		print_ratio(f, r->rate / ref[r->spec.path]->rate, true);
		fprintf(f, "\n");
	}
}

static double
per_mailbox(const struct report *rp)
{
	return (double)(rp->mem.mb_rss1 - rp->mem.mb_rss0) * 1024 /
	    (double)(rp->mem.mb_to - rp->mem.mb_from);
}

static double
per_conn(const struct report *rp)
{
	return (double)(rp->mem.cn_rss1 - rp->mem.cn_rss0) * 1024 /
	    (double)rp->mem.cn_n;
}

static void
print_memory(const struct report *rp, FILE *f)
{
	char a[32];

	fprintf(f, "\n== mbxd memory (VmRSS of /proc/PID/status; kernel "
	    "socket buffers not included) ==\n");
	if (rp->mem.mb_ok)
		fprintf(f, "idle mailboxes %ld -> %ld: RSS %.1f -> %.1f MiB: "
		    "%.0f B per mailbox (created at %s/s, one connection)\n",
		    rp->mem.mb_from, rp->mem.mb_to, rp->mem.mb_rss0 / 1024.0,
		    rp->mem.mb_rss1 / 1024.0, per_mailbox(rp),
		    num_str(rp->mem.mb_rate, a, sizeof(a)));
	else
		fprintf(f, "idle mailboxes: n/a\n");
	if (rp->mem.cn_n > 0)
		fprintf(f, "idle connections 0 -> %ld: RSS %.1f -> %.1f MiB: "
		    "%.0f B per connection (opened at %s/s); %ld descriptors "
		    "open in mbxd\n", rp->mem.cn_n, rp->mem.cn_rss0 / 1024.0,
		    rp->mem.cn_rss1 / 1024.0, per_conn(rp),
		    num_str(rp->mem.cn_rate, a, sizeof(a)), rp->mem.cn_fds);
	if (!rp->mem.cn_ok)
		fprintf(f, "connections: %s\n", rp->mem.err[0] ?
		    rp->mem.err : "n/a");
	for (size_t i = 0; i < rp->n; i++) {
		const struct result *r = &rp->results[i], *ref;

		if (r->spec.held == 0)
			continue;
		ref = find(rp, r->spec.kind, r->spec.path, r->spec.size, 0, 0);
		fprintf(f, "with %ld connections held: %-24s ", r->spec.held,
		    path_info[r->spec.path].label);
		if (!r->ok)
			fprintf(f, "n/a: %s\n", r->err);
		else if (r->spec.kind == K_PINGPONG)
			fprintf(f, "ping-pong p50 %.1f us p99 %.1f us",
			    r->p50, r->p99);
		else
			fprintf(f, "%s msg/s", num_str(r->rate, a, sizeof(a)));
		if (r->ok && ref != NULL)
			fprintf(f, " (x%.2f of none held)",
			    r->spec.kind == K_PINGPONG ? r->p50 / ref->p50 :
			    r->rate / ref->rate);
		if (r->ok)
			fprintf(f, "\n");
	}
}

/*
 * An idle mbxd.
 */

static void
print_idle(const struct report *rp, FILE *f)
{
	const struct idlefig *g = &rp->idle;

	if (!rp->idle_run)
		return;
	fprintf(f, "\n== Idle mbxd: %ld idle connections, %ld receivers "
	    "blocked in mbx_recv() ==\n", rp->idle_n, rp->idle_n);
	if (!g->ok) {
		fprintf(f, "n/a: %s\n", g->err[0] ? g->err : "failed");
		return;
	}
	fprintf(f, "mbxd's CPU over %.1f s: %.3f%% of a core\n", g->secs,
	    g->cpu_pct);
	fprintf(f, "CPU of a blocking mbx_recv() before it slept (its request "
	    "and poll() included):\np50 %.1f us, max %.1f us over the %ld "
	    "receivers\n", g->spin_p50, g->spin_max, g->blocked);
}

/* Durable sends (issue 13). */
static void
print_durable(const struct report *rp, FILE *f)
{
	const struct durfig *g = &rp->dur;

	if (!rp->dur_run)
		return;
	fprintf(f, "\n== Durable sends, 64 B, one mbx_send() each, %.1f s per "
	    "figure ==\n", g->secs);
	if (!g->ok) {
		fprintf(f, "n/a: %s\n", g->err[0] ? g->err : "failed");
		return;
	}
	fprintf(f, "one write + fdatasync() per message (%s): %.0f msg/s\n",
	    g->fs, g->fsync_rate);
	fprintf(f, "durable mailbox, 1 sender:  %.0f msg/s (%.2fx)\n",
	    g->one_rate, g->one_rate / g->fsync_rate);
	fprintf(f, "durable mailbox, 8 senders: %.0f msg/s (%.2fx)\n",
	    g->eight_rate, g->eight_rate / g->fsync_rate);
}

/*
 * The targets of issue 11, each judged on mbx's default mode (credit on),
 * no option; mbx_sendv/mbx_recvv only where the target is about batches.
 */

struct target {
	char		 name[64];
	char		 need[16];	/* as printed */
	bool		 have;		/* both figures were measured */
	double		 mbx, ref, ratio;
	const char	*mode;		/* which mbx figure */
	const char	*unit;
	char		 why[200];	/* when !have: why not */
	bool		 met;
};

enum rule {
	AT_LEAST,		/* mbx / ref >= bound */
	AT_MOST,		/* mbx / ref <= bound */
	BELOW,			/* mbx < bound (ref is the bound) */
};

static void
target_set(struct target *t, const char *name, enum rule rule, double bound,
    const struct result *a, double mbx, double ref, bool have,
    const char *unit)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->mode = a != NULL ? path_info[a->spec.path].label : "";
	t->have = have;
	t->mbx = mbx;
	t->ref = ref;
	t->unit = unit;
	t->ratio = have ? mbx / ref : 0;
	switch (rule) {
	case AT_LEAST:
		snprintf(t->need, sizeof(t->need), ">= %.2fx", bound);
		t->met = have && t->ratio >= bound;
		break;
	case AT_MOST:
		snprintf(t->need, sizeof(t->need), "<= %.2fx", bound);
		t->met = have && t->ratio <= bound;
		break;
	case BELOW:
		snprintf(t->need, sizeof(t->need), "< %g %s", bound, unit);
		t->met = have && mbx < bound;
		break;
	}
}

/* A target nothing in this benchmark measures: never MET. */
static void
target_unmeasured(struct target *t, const char *name, const char *need,
    const char *why)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	snprintf(t->need, sizeof(t->need), "%s", need);
	snprintf(t->why, sizeof(t->why), "%s", why);
	t->mode = "";
	t->unit = "";
}

/* Why the figure of path p (kind k, size) is missing from this run. */
static void
why_missing(const struct report *rp, struct target *t, enum kind k,
    enum path p, size_t size)
{
	char sz[32];

	if (t->have || t->why[0] != '\0')
		return;
	for (size_t i = 0; i < rp->n; i++) {
		const struct result *r = &rp->results[i];

		if (!r->ok && r->spec.kind == k && r->spec.path == p &&
		    r->spec.size == size && r->spec.held == 0) {
			snprintf(t->why, sizeof(t->why), "%s: %s",
			    path_info[p].label, r->err);
			return;
		}
	}
	snprintf(t->why, sizeof(t->why), "%s %s %s: not in this run",
	    kind_key(k), path_info[p].label, size_str(size, sz, sizeof(sz)));
}

/* mbx path p against baseline (or other mbx path) q, same kind and size. */
static void
target_vs(const struct report *rp, struct target *t, const char *name,
    enum rule rule, double bound, enum kind k, enum path p, enum path q,
    size_t size, int what)
{
	const struct result *a = find(rp, k, p, size, 0, 0);
	const struct result *b = find(rp, k, q, size, 0, 0);
	double va = 0, vb = 0;

	if (a != NULL && b != NULL) {
		switch (what) {
		case 'r':	/* messages per second */
			va = a->rate, vb = b->rate;
			break;
		case 'g':	/* GB/s */
			va = a->bw / 1e9, vb = b->bw / 1e9;
			break;
		case '5':	/* ping-pong p50 */
			va = a->p50, vb = b->p50;
			break;
		default:	/* ping-pong p99 */
			va = a->p99, vb = b->p99;
			break;
		}
	}
	target_set(t, name, rule, bound, a, va, vb, a && b, what == 'r' ?
	    "msg/s" : what == 'g' ? "GB/s" : "us");
	why_missing(rp, t, k, p, size);
	why_missing(rp, t, k, q, size);
}

/* The figures of the scale section with the fewest and most mailboxes. */
static void
scale_ends(const struct report *rp, enum path p, const struct result **lo,
    const struct result **hi)
{
	*lo = *hi = NULL;
	for (size_t i = 0; i < rp->n; i++) {
		const struct result *r = &rp->results[i];

		if (!r->ok || r->spec.kind != K_SCALE || r->spec.path != p)
			continue;
		if (*lo == NULL || r->spec.mailboxes < (*lo)->spec.mailboxes)
			*lo = r;
		if (*hi == NULL || r->spec.mailboxes > (*hi)->spec.mailboxes)
			*hi = r;
	}
}

static size_t
targets(const struct report *rp, struct target *t)
{
	static const size_t large[] = { 64 * KIB, MIB, 64 * MIB };
	const struct result *a, *b;
	char name[64], sz[32];
	size_t n = 0;

	/* The data path, 64 B, one call per message. */
	target_vs(rp, &t[n++], "64 B send/recv vs POSIX mq", AT_LEAST, 1.0,
	    K_TPUT, P_MBX, P_MQ, 64, 'r');
	target_vs(rp, &t[n++], "64 B send/recv vs relay", AT_LEAST, 1.0,
	    K_TPUT, P_MBX, P_RELAY, 64, 'r');
	target_unmeasured(&t[n++], "64 B send/recv vs NATS (the goal)",
	    ">= 1.00x", "NATS is no baseline: the benchmark cannot start it "
	    "(COSTS.md measured 1.68 M msg/s)");
	target_vs(rp, &t[n++], "64 B sendv/recvv 64 vs direct writev 64",
	    AT_LEAST, 0.5, K_TPUT, P_MBX_B, P_DIRECT_B, 64, 'r');
	target_vs(rp, &t[n++], "8 senders, send/recv vs relay", AT_LEAST, 1.0,
	    K_FANIN, P_MBX, P_RELAY, 64, 'r');
	target_vs(rp, &t[n++], "64 B ping-pong p50 vs relay", AT_MOST, 1.1,
	    K_PINGPONG, P_MBX, P_RELAY, 64, '5');
	target_vs(rp, &t[n++], "64 B ping-pong p99 vs relay", AT_MOST, 2.0,
	    K_PINGPONG, P_MBX, P_RELAY, 64, '9');

	/* Larger messages, plain calls. */
	target_vs(rp, &t[n++], "4 KiB send/recv vs POSIX mq", AT_LEAST, 1.0,
	    K_TPUT, P_MBX, P_MQ, 4 * KIB, 'r');
	target_vs(rp, &t[n++], "64 KiB send/recv vs POSIX mq", AT_LEAST, 1.0,
	    K_TPUT, P_MBX, P_MQ, 64 * KIB, 'r');
	target_vs(rp, &t[n++], "1 MiB send/recv vs direct, one user",
	    AT_LEAST, 2.0, K_TPUT, P_MBX, P_DIRECT, MIB, 'g');
	target_vs(rp, &t[n++], "1 MiB send/recv vs direct, two users",
	    AT_LEAST, 2.0, K_TPUT, P_MBX_USERS, P_DIRECT, MIB, 'g');
	for (size_t i = 0; i < sizeof(large) / sizeof(large[0]); i++) {
		snprintf(name, sizeof(name), "%s sendv/recvv 64 vs send/recv",
		    size_str(large[i], sz, sizeof(sz)));
		target_vs(rp, &t[n++], name, AT_LEAST, 1.0, K_TPUT, P_MBX_B,
		    P_MBX, large[i], 'r');
	}

	/* mbxd's own CPU per message, 64 B. */
	for (int k = 0; k < 2; k++) {
		enum path p = k == 0 ? P_MBX : P_MBX_B;

		a = find(rp, K_TPUT, p, 64, 0, 0);
		target_set(&t[n], k == 0 ? "mbxd CPU/msg, 64 B send/recv" :
		    "mbxd CPU/msg, 64 B sendv/recvv 64", BELOW, k == 0 ? 1.0 :
		    0.2, a, a ? a->cpu_broker : 0, k == 0 ? 1.0 : 0.2,
		    a != NULL && a->cpu_broker >= 0, "us");
		why_missing(rp, &t[n++], K_TPUT, p, 64);
	}

	/* What must not get worse. */
	for (int p = P_MBX; p <= P_MBX_B; p += P_MBX_B - P_MBX) {
		scale_ends(rp, (enum path)p, &b, &a);
		snprintf(name, sizeof(name), "%ld vs %ld mailboxes, %s",
		    a ? a->spec.mailboxes : 0, b ? b->spec.mailboxes : 0,
		    p == P_MBX ? "send/recv" : "sendv/recvv");
		target_set(&t[n], name, AT_LEAST, 0.9, a, a ? a->rate : 0,
		    b ? b->rate : 0, a && b && a != b, "msg/s");
		if (!t[n].have)
			snprintf(t[n].why, sizeof(t[n].why), "the scale "
			    "section did not run in full");
		n++;
	}
	target_set(&t[n], "mbxd memory per idle mailbox", BELOW, 1024, NULL,
	    rp->mem.mb_ok ? per_mailbox(rp) : 0, 1024, rp->mem.mb_ok, "B");
	if (!t[n++].have)
		snprintf(t[n - 1].why, sizeof(t[n - 1].why), "idle mailboxes "
		    "not measured");
	snprintf(name, sizeof(name), "mbxd memory/connection, %ld held",
	    rp->mem.cn_n);
	target_set(&t[n], name, BELOW, 16384, NULL, rp->mem.cn_n > 0 ?
	    per_conn(rp) : 0, 16384, rp->mem.cn_n > 0, "B");
	if (!t[n++].have)
		snprintf(t[n - 1].why, sizeof(t[n - 1].why), "%s",
		    rp->mem.err[0] ? rp->mem.err : "idle connections not "
		    "measured");
	snprintf(name, sizeof(name), "idle mbxd CPU, %ld conns + %ld blocked",
	    rp->idle_n, rp->idle_n);
	target_set(&t[n], name, BELOW, 1.0, NULL, rp->idle.cpu_pct, 1.0,
	    rp->idle.ok, "%");
	if (!t[n++].have)
		snprintf(t[n - 1].why, sizeof(t[n - 1].why), "%s",
		    !rp->idle_run ? "the idle section did not run" :
		    rp->idle.err);
	target_set(&t[n], "CPU of a blocked call before it sleeps", BELOW,
	    10.0, NULL, rp->idle.spin_p50, 10.0, rp->idle.ok, "us");
	if (!t[n++].have)
		snprintf(t[n - 1].why, sizeof(t[n - 1].why), "%s",
		    !rp->idle_run ? "the idle section did not run" :
		    rp->idle.err);

	/* Issue 13: the group commit, beside one sync per message. */
	for (int k = 0; k < 2; k++) {
		target_set(&t[n], k == 0 ? "durable, 1 sender vs fdatasync/msg" :
		    "durable, 8 senders vs fdatasync/msg", AT_LEAST,
		    k == 0 ? 0.5 : 5.0, NULL, k == 0 ? rp->dur.one_rate :
		    rp->dur.eight_rate, rp->dur.fsync_rate, rp->dur.ok,
		    "msg/s");
		if (!t[n++].have)
			snprintf(t[n - 1].why, sizeof(t[n - 1].why), "%s",
			    !rp->dur_run ? "the durable section did not run" :
			    rp->dur.err);
	}
	return n;
}

#define MAX_TARGETS	32

static void
print_targets(const struct report *rp, FILE *f)
{
	struct target t[MAX_TARGETS];
	size_t n = targets(rp, t);
	char a[32], b[32];

	fprintf(f, "\n== Targets of issues 11 and 13, this run, mbx on its defaults "
	    "==\n");
	fprintf(f, "%-40s %-26s %9s %9s %8s %-9s %s\n", "target", "mbx mode",
	    "mbx", "reference", "ratio", "need", "");
	for (size_t i = 0; i < n; i++) {
		if (!t[i].have) {
			fprintf(f, "%-40s %-26s %9s %9s %8s %-9s not measured: "
			    "%s\n", t[i].name, "-", "-", "-", "-", t[i].need,
			    t[i].why);
			continue;
		}
		fprintf(f, "%-40s %-26s %9s %9s %7.3fx %-9s %s\n", t[i].name,
		    t[i].mode[0] ? t[i].mode : "-",
		    num_str(t[i].mbx, a, sizeof(a)),
		    num_str(t[i].ref, b, sizeof(b)), t[i].ratio, t[i].need,
		    t[i].met ? "MET" : "MISSED");
	}
	fprintf(f, "(units: msg/s; GB/s at 1 MiB; us for ping-pong and CPU "
	    "per message or call;\n%% of a core when idle; bytes for memory. "
	    "For a bound (<) the reference is\nthe bound.)\n");
}

void
report_table(const struct report *rp, FILE *f)
{
	print_header(rp, f);
	print_tput(rp, f);
	print_pingpong(rp, f);
	print_fanin(rp, f);
	print_scale(rp, f);
	print_memory(rp, f);
	print_idle(rp, f);
	print_durable(rp, f);
	print_targets(rp, f);
}

/*
 * JSON.
 */

static void
json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

const char *
kind_key(enum kind k)
{
	switch (k) {
	case K_TPUT:
		return "throughput";
	case K_PINGPONG:
		return "pingpong";
	case K_FANIN:
		return "fanin";
	default:
		return "scale";
	}
}

static void
json_result(const struct report *rp, FILE *f, const struct result *r)
{
	fprintf(f, "    {\"workload\": \"%s\", \"path\": \"%s\", "
	    "\"size\": %zu, \"batch\": %u, \"senders\": %u",
	    kind_key(r->spec.kind), path_info[r->spec.path].key, r->spec.size,
	    r->spec.batch, r->spec.senders);
	if (r->spec.mailboxes)
		fprintf(f, ", \"mailboxes\": %ld", r->spec.mailboxes);
	if (r->spec.held)
		fprintf(f, ", \"connections_held\": %ld", r->spec.held);
	if (r->note[0] != '\0') {
		fprintf(f, ", \"note\": ");
		json_str(f, r->note);
	}
	if (!r->ok) {
		fprintf(f, ", \"ok\": false, \"error\": ");
		json_str(f, r->err);
		fprintf(f, "}");
		return;
	}
	fprintf(f, ", \"ok\": true, \"warmup\": %llu, \"messages\": %llu, "
	    "\"seconds\": %.4f, \"msgs_per_s\": %.1f, \"bytes_per_s\": %.1f",
	    (unsigned long long)r->spec.warm, (unsigned long long)r->msgs,
	    r->secs, r->rate, r->bw);
	if (r->spec.kind == K_PINGPONG)
		fprintf(f, ", \"p50_us\": %.2f, \"p99_us\": %.2f, "
		    "\"p999_us\": %.2f", r->p50, r->p99, r->p999);
	fprintf(f, ", \"cpu_us_per_msg\": {\"send\": %.3f, \"recv\": %.3f",
	    r->cpu_send, r->cpu_recv);
	if (r->cpu_broker >= 0)
		fprintf(f, ", \"broker\": %.3f", r->cpu_broker);
	fprintf(f, "}");
	if (r->spec.path >= P_NBASE && r->spec.kind != K_SCALE &&
	    r->spec.held == 0) {
		bool first = true;

		fprintf(f, ", \"ratio_to\": {");
		for (int p = 0; p < P_NBASE; p++) {
			const struct result *b = find(rp, r->spec.kind,
			    (enum path)p, r->spec.size, 0, 0);

			if (b == NULL)
				continue;
			fprintf(f, "%s\"%s\": %.4f", first ? "" : ", ",
			    path_info[p].key, r->spec.kind == K_PINGPONG ?
			    r->p50 / b->p50 : r->rate / b->rate);
			first = false;
		}
		fprintf(f, "}");
	}
	fprintf(f, "}");
}

void
report_json(const struct report *rp, FILE *f)
{
	struct target t[MAX_TARGETS];
	size_t n = targets(rp, t);

	fprintf(f, "{\n  \"machine\": {\"nproc\": %ld, \"cpu\": ", rp->nproc);
	json_str(f, rp->cpu);
	fprintf(f, ", \"kernel\": ");
	json_str(f, rp->kernel);
	fprintf(f, "},\n  \"date\": ");
	json_str(f, rp->date);
	fprintf(f, ",\n  \"quick\": %s,\n  \"seconds_per_run\": %.3f,\n"
	    "  \"runs_per_figure\": %u,\n  \"runs_per_noisy_figure\": %u,\n",
	    rp->quick ? "true" : "false", rp->seconds, rp->reps,
	    rp->reps_noisy);
	fprintf(f, "  \"results\": [\n");
	for (size_t i = 0; i < rp->n; i++) {
		json_result(rp, f, &rp->results[i]);
		fprintf(f, "%s\n", i + 1 < rp->n ? "," : "");
	}
	fprintf(f, "  ],\n  \"memory\": {");
	if (rp->mem.mb_ok)
		fprintf(f, "\"mailboxes_from\": %ld, \"mailboxes_to\": %ld, "
		    "\"rss_kib_before\": %ld, \"rss_kib_after\": %ld, "
		    "\"bytes_per_idle_mailbox\": %.1f, "
		    "\"creates_per_s\": %.1f, ", rp->mem.mb_from,
		    rp->mem.mb_to, rp->mem.mb_rss0, rp->mem.mb_rss1,
		    per_mailbox(rp), rp->mem.mb_rate);
	fprintf(f, "\"connections\": %ld, \"connections_ok\": %s", rp->mem.cn_n,
	    rp->mem.cn_ok ? "true" : "false");
	if (rp->mem.cn_n > 0)
		fprintf(f, ", \"conn_rss_kib_before\": %ld, "
		    "\"conn_rss_kib_after\": %ld, "
		    "\"bytes_per_idle_connection\": %.1f, "
		    "\"opens_per_s\": %.1f, \"mbxd_fds\": %ld",
		    rp->mem.cn_rss0, rp->mem.cn_rss1, per_conn(rp),
		    rp->mem.cn_rate, rp->mem.cn_fds);
	fprintf(f, "},\n  \"idle\": {\"ran\": %s", rp->idle_run ? "true" :
	    "false");
	if (rp->idle_run && rp->idle.ok)
		fprintf(f, ", \"connections\": %ld, \"blocked_receivers\": "
		    "%ld, \"seconds\": %.3f, \"mbxd_cpu_percent\": %.4f, "
		    "\"blocked_call_cpu_us_p50\": %.2f, "
		    "\"blocked_call_cpu_us_max\": %.2f", rp->idle.conns,
		    rp->idle.blocked, rp->idle.secs, rp->idle.cpu_pct,
		    rp->idle.spin_p50, rp->idle.spin_max);
	else if (rp->idle_run) {
		fprintf(f, ", \"error\": ");
		json_str(f, rp->idle.err);
	}
	fprintf(f, "},\n  \"durable\": {\"ran\": %s", rp->dur_run ? "true" :
	    "false");
	if (rp->dur_run && rp->dur.ok)
		fprintf(f, ", \"seconds\": %.3f, \"fdatasync_per_msg\": %.1f, "
		    "\"one_sender\": %.1f, \"eight_senders\": %.1f",
		    rp->dur.secs, rp->dur.fsync_rate, rp->dur.one_rate,
		    rp->dur.eight_rate);
	else if (rp->dur_run) {
		fprintf(f, ", \"error\": ");
		json_str(f, rp->dur.err);
	}
	fprintf(f, "},\n  \"targets\": [\n");
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "    {\"target\": ");
		json_str(f, t[i].name);
		fprintf(f, ", \"need\": ");
		json_str(f, t[i].need);
		if (t[i].have) {
			fprintf(f, ", \"mbx_mode\": ");
			json_str(f, t[i].mode);
			fprintf(f, ", \"mbx\": %.4g, \"reference\": %.4g, "
			    "\"unit\": \"%s\", \"ratio\": %.4f, \"met\": %s",
			    t[i].mbx, t[i].ref, t[i].unit, t[i].ratio,
			    t[i].met ? "true" : "false");
		} else {
			fprintf(f, ", \"measured\": false, \"why\": ");
			json_str(f, t[i].why);
		}
		fprintf(f, "}%s\n", i + 1 < n ? "," : "");
	}
	fprintf(f, "  ]\n}\n");
}

/*
 * Data files for plot.gp: whitespace-separated, "?" for missing.
 */

static FILE *
open_out(const char *dir, const char *name)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "we")) == NULL)
		fprintf(stderr, "mbx-bench: %s: %s\n", path, strerror(errno));
	return f;
}

/* One figure, or "?" when it was not measured. */
static void
put_value(FILE *f, const struct result *r, double v)
{
	if (r != NULL)
		fprintf(f, " %.6f", v);
	else
		fprintf(f, " ?");
}

/* tput.dat: GB/s by size, a column per path, a header for columnhead(). */
static void
data_tput(const struct report *rp, FILE *f)
{
	static const size_t sizes[] = { 64, 4 * KIB, 64 * KIB, MIB, 64 * MIB };
	char sz[32];

	fprintf(f, "size");
	for (int p = 0; p < P_NPATH; p++)
		fprintf(f, " %s", path_info[p].key);
	fprintf(f, "\n");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		fprintf(f, "\"%s\"", size_str(sizes[i], sz, sizeof(sz)));
		for (int p = 0; p < P_NPATH; p++) {
			const struct result *r = find(rp, K_TPUT, (enum path)p,
			    sizes[i], 0, 0);

			put_value(f, r, r ? r->bw / 1e9 : 0);
		}
		fprintf(f, "\n");
	}
}

/* rate64.dat: M msg/s at 64 B, one sender and fan-in, a row per path. */
static void
data_rate64(const struct report *rp, FILE *f)
{
	for (int p = 0; p <= P_MBX_B_CR; p++) {
		const struct result *r = find(rp, K_TPUT, (enum path)p, 64, 0,
		    0);
		const struct result *fi = find(rp, K_FANIN, (enum path)p, 64,
		    0, 0);

		fprintf(f, "\"%s\"", path_info[p].label);
		put_value(f, r, r ? r->rate / 1e6 : 0);
		put_value(f, fi, fi ? fi->rate / 1e6 : 0);
		fprintf(f, "\n");
	}
}

/* pingpong.dat: p50, p99, p999 in microseconds, a row per path. */
static void
data_pingpong(const struct report *rp, FILE *f)
{
	for (size_t i = 0; i < rp->n; i++) {
		const struct result *r = &rp->results[i];

		if (r->spec.kind != K_PINGPONG || !r->ok || r->spec.held != 0)
			continue;
		fprintf(f, "\"%s\" %.2f %.2f %.2f\n",
		    path_info[r->spec.path].label, r->p50, r->p99, r->p999);
	}
}

/* scale.dat: M msg/s of send/recv and sendv/recvv by mailbox count. */
static void
data_scale(const struct report *rp, FILE *f)
{
	for (size_t i = 0; i < rp->n; i++) {
		const struct result *r = &rp->results[i], *bt;

		if (r->spec.kind != K_SCALE || r->spec.path != P_MBX || !r->ok)
			continue;
		bt = find(rp, K_SCALE, P_MBX_B, 64, r->spec.mailboxes, 0);
		fprintf(f, "\"%ld\" %.6f", r->spec.mailboxes, r->rate / 1e6);
		put_value(f, bt, bt ? bt->rate / 1e6 : 0);
		fprintf(f, "\n");
	}
}

int
report_data(const struct report *rp, const char *dir)
{
	static const struct {
		const char *name;
		void (*fn)(const struct report *, FILE *);
	} files[] = {
		{ "tput.dat", data_tput },
		{ "rate64.dat", data_rate64 },
		{ "pingpong.dat", data_pingpong },
		{ "scale.dat", data_scale },
	};
	int ret = 0;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		FILE *f = open_out(dir, files[i].name);

		if (f == NULL) {
			ret = -1;
			continue;
		}
		files[i].fn(rp, f);
		if (fclose(f) != 0)
			ret = -1;
	}
	return ret;
}
