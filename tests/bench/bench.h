/*
 * bench.h - mbx-bench, the benchmark of mbx against the paths it competes
 * with (see mbx-bench.c for what it measures and how to read the table).
 *
 * The program is split by noun:
 *   mbx-bench.c  the plan of the run: which workloads, in what order
 *   report.c     the table, the targets, the JSON, the chart's data
 *   run.c        one measured run: forked roles, start barrier, watchdog,
 *                CPU accounting, the shared page the roles report into
 *   daemon.c     a private mbxd: config, start, READY=1, RSS, stop
 *   baseline.c   the baselines: direct Unix socket, relay, POSIX mq
 *   mbxload.c    the same workloads through libmbx and mbxd
 *   candidate.c  prototypes of protocol 5's two candidate data paths
 *   idle.c       an idle mbxd: idle connections, blocked receivers
 *
 * Conventions: every role ends with a marker message whose payload is one
 * byte shorter than the others (every size is >= 64 B), so no payload byte
 * is ever inspected to find the end; every wait is bounded (the run's
 * watchdog kills what overruns); numbers are reported, never asserted.
 */
#ifndef MBX_BENCH_H
#define MBX_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "mbx.h"

#define KIB		((size_t)1024)
#define MIB		(1024 * KIB)

/* Messages per batch call: 64, at most BATCH_BYTES of payload. */
#define BATCH_MAX	64
#define BATCH_BYTES	(256 * MIB)
/* Senders of the fan-in workload. */
#define FANIN_SENDERS	8
/* The receiver's identity in P_MBX_USERS (nobody on Debian). */
#define BENCH_OTHER_UID	65534
#define BENCH_OTHER_GID	65534
/* Room for ping-pong round-trip samples. */
#define LAT_MAX		(1u << 20)

/* Every path a workload can take; the first P_NBASE are baselines. */
enum path {
	P_DIRECT,		/* Unix stream socket, one write per message */
	P_DIRECT_B,		/* 64 frames per writev, 1 MiB reads */
	P_RELAY,		/* through a one-process relay */
	P_RELAY_B,		/* the same relay, senders batching 64 */
	P_MQ,			/* POSIX message queue */
	P_NBASE,
	P_MBX = P_NBASE,	/* mbx_send / mbx_recv */
	P_MBX_CR,		/* the same with MBX_OPT_CREDIT 0 */
	P_MBX_B,		/* mbx_sendv / mbx_recvv of 64 */
	P_MBX_B_CR,		/* the same with MBX_OPT_CREDIT 0 */
	P_MBX_SEALED,		/* mbx_sendmsg sealed / mbx_recvmsg */
	P_MBX_SHARED,		/* mbx_sendmsg MBX_SHARED / mbx_recvmsg */
	P_MBX_USERS,		/* mbx_send / mbx_recv, receiver of another
				 * uid (BENCH_OTHER_UID; needs root) */
	P_CAND_SOCK,		/* protocol 5 prototype C1: socket posts */
	P_CAND_RING,		/* protocol 5 prototype C2: rings */
	P_NPATH
};

struct path_info {
	const char	*key;		/* JSON and chart key */
	const char	*label;		/* table label */
	bool		 batch;		/* batch calls */
	bool		 credit;	/* mbx: MBX_OPT_CREDIT */
};

extern const struct path_info path_info[P_NPATH];

/* The kinds of workload. */
enum kind {
	K_TPUT,			/* one-way throughput, one sender */
	K_PINGPONG,		/* round-trip latency */
	K_FANIN,		/* FANIN_SENDERS senders into one receiver */
	K_SCALE,		/* throughput with many mailboxes existing */
};

/* What one run does. */
struct spec {
	enum kind	 kind;
	enum path	 path;
	size_t		 size;		/* payload bytes */
	unsigned	 batch;		/* messages per call */
	unsigned	 senders;	/* sender processes */
	double		 seconds;	/* how long the clock runs */
	uint64_t	 warm;		/* messages before it starts */
	const char	*sock;		/* mbx: the daemon's socket */
	const char	*mailbox;	/* mbx: where messages go */
	pid_t		 broker;	/* mbx: the daemon, for its CPU time */
	long		 mailboxes;	/* K_SCALE: how many exist */
	long		 held;		/* idle connections held meanwhile */
};

/* What one run measured. */
struct result {
	struct spec	 spec;
	bool		 ok;
	char		 err[160];	/* why not ok */
	char		 note[64];	/* a detail of the path, or "" */
	uint64_t	 msgs;		/* messages (round trips) completed */
	double		 secs;
	double		 rate;		/* msgs / secs */
	double		 bw;		/* payload bytes / s */
	double		 p50, p99, p999;	/* ping-pong, microseconds */
	/* Microseconds of CPU per message: senders, receiver, broker. */
	double		 cpu_send, cpu_recv, cpu_broker;
};

/* The shared page of a run, written by the roles (run.c owns it). */
struct runctx;

/*
 * A role's body, run in its own process.  Returns 0, or -1 after
 * run_fail().  idx numbers the senders from 0.
 */
typedef int (*role_fn)(struct runctx *ctx, const struct spec *s,
    unsigned idx, void *arg);

struct job {
	role_fn		 sender;	/* s->senders processes */
	role_fn		 receiver;	/* one process */
	role_fn		 middle;	/* a relay, or NULL */
	void		*arg;		/* built before the fork, read-only */
};

/* run.c */
void	 run_job(const struct spec *s, const struct job *j, struct result *r);
void	 run_ready(struct runctx *ctx);
int	 run_fail(struct runctx *ctx, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	 run_tick(struct runctx *ctx, uint64_t msgs, uint64_t bytes);
bool	 run_timing(const struct runctx *ctx);
bool	 run_stopped(struct runctx *ctx);
void	 run_report(struct runctx *ctx, uint64_t msgs, uint64_t bytes);
void	 run_latency(struct runctx *ctx, uint64_t ns);
int64_t	 now_ns(void);
uint64_t cpu_ns(pid_t pid);
long	 rss_kib(pid_t pid);
void	 touch_pages(volatile uint8_t *p, size_t len, bool write);

/* fdio.c */
/* Writes all len bytes (EINTR retried, EAGAIN waited out): 0, or -1. */
int	 fdio_write_all(int fd, const void *buf, size_t len);
/* Reads exactly len bytes (EINTR retried): 0, or -1 on EOF or an error. */
int	 fdio_read_full(int fd, void *buf, size_t len);
/*
 * A buffered stream's buf[*off..*have) moved to the front, then one
 * read() into the room up to cap (EINTR retried): 0, or -1 on EOF or an
 * error.
 */
int	 fdio_fill(int fd, uint8_t *buf, size_t cap, size_t *off,
	    size_t *have);

/* daemon.c */
struct daemon {
	char	 dir[64];		/* mkdtemp() directory; DIR/state is
					 * mbxd's --state-dir */
	char	 sock[128];
	char	 log[128];
	pid_t	 pid;
};
int	 daemon_start(struct daemon *d, const char *mbxd);
void	 daemon_stop(struct daemon *d);

/* baseline.c */
void	 baseline_run(const struct spec *s, struct result *r);

/* candidate.c: the prototypes of protocol 5's candidates. */
void	 candidate_run(const struct spec *s, struct result *r);
/*
 * Largest payload the prototypes carry: a sixteenth of a ring.  At a
 * quarter (64 KiB records in 256 KiB rings) C2 moved 22 k msg/s, a
 * wake-up every two messages: larger payloads are for buffer pools.
 */
#define CAND_MAX_PAYLOAD	(16 * KIB)

/* mbxd's memory and the connections it held. */
struct memfig {
	bool	 mb_ok;
	long	 mb_from, mb_to;	/* idle mailboxes before/after */
	long	 mb_rss0, mb_rss1;	/* mbxd's VmRSS then, KiB */
	double	 mb_rate;		/* creations per second */
	bool	 cn_ok;
	long	 cn_n;			/* idle connections opened */
	long	 cn_rss0, cn_rss1;
	double	 cn_rate;		/* opens per second */
	long	 cn_fds;		/* descriptors open in mbxd */
	char	 err[160];
};

/* An idle mbxd (idle.c). */
struct idlefig {
	bool	 ok;
	long	 conns;			/* idle connections open */
	long	 blocked;		/* receivers asleep in mbx_recv() */
	double	 secs;			/* the window */
	double	 cpu_pct;		/* mbxd's CPU over it, % of a core */
	double	 spin_p50, spin_max;	/* us of CPU in a blocking call
					 * before it slept, over the
					 * receivers */
	char	 err[160];
};

/* Durable sends (issue 13): mbx beside one fdatasync() per message. */
struct durfig {
	bool	 ok;
	double	 secs;			/* each run's window */
	double	 fsync_rate;		/* 64 B write + fdatasync, one at a
					 * time, on the state directory's disk */
	double	 one_rate;		/* durable mbx_send, 1 sender */
	double	 eight_rate;		/* durable mbx_send, 8 senders */
	char	 fs[64];		/* where: the file system's type */
	char	 err[160];
};

/* Everything one benchmark run found, and where. */
struct report {
	struct result	*results;	/* in the order they ran */
	size_t		 n;
	struct memfig	 mem;
	struct idlefig	 idle;
	bool		 idle_run;	/* the idle section ran */
	struct durfig	 dur;
	bool		 dur_run;	/* the durable section ran */
	long		 idle_n;	/* connections and receivers asked */
	double		 idle_secs;	/* window asked */
	double		 seconds;	/* per run */
	unsigned	 reps;		/* runs per workload, median kept */
	unsigned	 reps_noisy;	/* for ping-pong and mailbox counts */
	bool		 quick;
	long		 nproc;
	char		 cpu[128];
	char		 kernel[128];
	char		 date[64];
};

/* report.c */
void	 report_table(const struct report *rp, FILE *f);
void	 report_json(const struct report *rp, FILE *f);
int	 report_data(const struct report *rp, const char *dir);
const char *size_str(size_t size, char *buf, size_t len);
const char *kind_key(enum kind k);
const char *num_str(double v, char *buf, size_t len);

/* idle.c: n idle connections, n blocked receivers, a window of seconds. */
int	 idle_run(const char *mbxd, long n, double seconds, struct idlefig *f);

/* durable.c: each of the three figures over seconds. */
int	 durable_run(const char *mbxd, double seconds, struct durfig *f);

/* mbxload.c */
void	 mbxload_run(const struct spec *s, struct result *r);
bool	 mbxload_zerocopy_built(void);
int	 mbxload_create(mbx_t *admin, const char *prefix, long from, long to);

#endif /* MBX_BENCH_H */
