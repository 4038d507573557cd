/*
 * mbxd-proc.h - a live mbxd seen from outside: the kernel's figures for a
 * process (/proc/PID/...) and, for the programs that run without Check
 * (the soak test, the live fuzzer), a daemon of their own: started in a
 * private directory, ready once it says READY=1, its stderr in a log file
 * that is searched for sanitizer reports at the end.
 *
 * Nothing here asserts or exits: every function returns a value or -1 (a
 * message on stderr), so it serves a Check test and a plain program alike.
 * A caller must check for -1 before it compares a figure with a bound: a
 * failed reading subtracted from another passes any upper bound.  Check
 * tests use the asserting harness_proc_*() of harness.h instead.
 */
#ifndef MBX_TESTS_MBXD_PROC_H
#define MBX_TESTS_MBXD_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Resident set size of pid in KiB (VmRSS), or -1. */
long	 proc_rss_kib(pid_t pid);
/* Open descriptors of pid (entries of /proc/PID/fd), or -1. */
int	 proc_fd_count(pid_t pid);
/*
 * The smallest descriptor limit (RLIMIT_NOFILE) that leaves pid exactly
 * room free descriptor numbers, or -1.  Its descriptors need not be
 * contiguous (valgrind keeps its own at the top of the range).
 */
long	 proc_fd_limit_for(pid_t pid, int room);
/* CPU time of pid, user + system, in milliseconds, or -1. */
long	 proc_cpu_ms(pid_t pid);
/*
 * The state letter of pid in /proc/PID/stat (R, S, T, Z...), 0 if pid is
 * gone (reaped), PROC_STATE_UNKNOWN when /proc could not be read: never
 * take that for a state the caller waits for.
 */
#define PROC_STATE_UNKNOWN	'?'
char	 proc_state(pid_t pid);
/* Monotonic milliseconds. */
int64_t	 proc_now_ms(void);
/* True when a notify datagram (len bytes) holds line, e.g. "READY=1". */
bool	 proc_notify_has(const char *msg, size_t len, const char *line);

#define MBXD_PROC_PATH_MAX	108

struct mbxd_proc {
	char	dir[64];			/* mkdtemp() directory */
	char	sock[MBXD_PROC_PATH_MAX];	/* dir/mbxd.sock */
	char	log[MBXD_PROC_PATH_MAX];	/* dir/mbxd.log, stderr */
	pid_t	pid;			/* -1 when not running */
};

/*
 * Starts `[wrapper...] mbxd -s SOCK -c dir/mbxd.json` with config (JSON
 * text, NULL for "{}") in that file, its stdout and stderr appended to the
 * log, and waits (at most wait_ms) for its READY=1 notification.  The
 * daemon dies with the caller (PR_SET_PDEATHSIG).  0, or -1 with a
 * message on stderr (the daemon is then gone).
 */
int	 mbxd_proc_start(struct mbxd_proc *d, const char *mbxd,
	    const char *wrapper, const char *config, int wait_ms);
/*
 * Sends sig and waits (at most wait_ms, then SIGKILL) for the daemon to
 * exit; returns its wait status, or -1 when it had to be killed.
 */
int	 mbxd_proc_stop(struct mbxd_proc *d, int sig, int wait_ms);
/* True while the daemon has not exited (reaps it if it has). */
bool	 mbxd_proc_alive(struct mbxd_proc *d);
/*
 * Counts the sanitizer and valgrind reports in the log (lines with
 * "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
 * "==PID== ... Invalid"...), copying the first ones to stderr.
 */
int	 mbxd_proc_log_reports(const struct mbxd_proc *d);
/* Stops the daemon if it runs (SIGKILL) and removes the directory. */
void	 mbxd_proc_cleanup(struct mbxd_proc *d);

#endif /* MBX_TESTS_MBXD_PROC_H */
