/*
 * harness.h - end-to-end test harness: a real mbxd in a private directory,
 * clients, mbxctl runs, forked helper processes and bounded waits on
 * observable state.
 *
 * Rules the harness keeps, and that tests using it must keep too:
 * - Nothing sleeps and hopes.  Readiness of mbxd is its systemd-style
 *   "READY=1" notification; any other state is observed through the
 *   daemon's admin queries (mbx_list()/mbx_clients()) or through the
 *   kernel's view of a process (/proc/PID/stat), in loops that are bounded
 *   in count and time (HARNESS_WAIT_MS).
 * - Functions documented "asserts" use Check's ck_assert and may only be
 *   called from the test process itself.  Code running in a forked helper
 *   (harness_child_start()) must not use ck_assert: it returns an exit
 *   status, and CHILD_REQUIRE() makes that easy.
 * - Daemons, helpers and mbxctl runs stay in the test process's process
 *   group, so Check's kill at the end of a test takes them along, and die
 *   with the test process anyway (PR_SET_PDEATHSIG).  Directories are made
 *   under $MBX_TEST_TMPDIR (else $TMPDIR, else /tmp); the runner removes
 *   it at the end, whatever a failed test left there.  mbxd's stderr is
 *   the test's.
 */
#ifndef MBX_TESTS_HARNESS_H
#define MBX_TESTS_HARNESS_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <jansson.h>

#include "mbx.h"

/* Upper bound of every wait in the harness: readiness, exit, state. */
#define HARNESS_WAIT_MS		10000
/* How long a forked helper or an mbxctl run may take. */
#define HARNESS_CHILD_MS	15000
/* Room for the paths of one daemon. */
#define HARNESS_PATH_MAX	108
#define HARNESS_DIR_MAX		64

/* What the harness, as the service manager, stores (FDSTORE=1). */
#define HARNESS_STORE_MAX	16
#define HARNESS_STORE_NAME	64

struct harness_stored {
	int	fd;
	char	name[HARNESS_STORE_NAME];
};

struct harness {
	char	dir[HARNESS_DIR_MAX];	/* mkdtemp() directory */
	char	sock[HARNESS_PATH_MAX];	/* dir/mbxd.sock */
	char	notify[HARNESS_PATH_MAX];	/* dir/notify */
	pid_t	pid;			/* the daemon; -1 when not running */
	int	notify_fd;		/* readiness socket, -1 when closed */
	int	status;			/* wait status once reaped */
	/* The file-descriptor store, passed to the next daemon. */
	struct harness_stored store[HARNESS_STORE_MAX];
	size_t	nstored;
	unsigned removed;		/* FDSTOREREMOVE=1 messages seen */
};

/*
 * Creates the private directory and the paths (no daemon yet).  Asserts.
 */
void	 harness_init(struct harness *h);

/*
 * Starts `$MBX_TEST_WRAPPER $MBXD -s SOCK --state-dir DIR/state
 * [extra...]` (extra is NULL or NULL-terminated) and waits for its
 * READY=1 notification.  Asserts.
 */
void	 harness_launch(struct harness *h, const char *const *extra);

/*
 * A planned restart with the harness as the service manager (PROTOCOL.md,
 * "The restart, as built"): SIGUSR2, the daemon's FDSTORE=1 messages
 * kept with their descriptors until it exits (asserting exit 0), then a
 * fresh daemon launched as harness_launch() does, with the store in
 * LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID.  Asserts.
 */
void	 harness_restart(struct harness *h, const char *const *extra);
/* The stored descriptor of that name, or -1. */
int	 harness_stored_fd(const struct harness *h, const char *name);
/* Puts fd (which the store now owns) into the store under name. */
void	 harness_store_fd(struct harness *h, const char *name, int fd);

/* harness_init() and harness_launch(). */
void	 harness_start(struct harness *h, const char *const *extra);

/*
 * Sends SIGTERM and reaps the daemon (SIGKILL after HARNESS_WAIT_MS).
 * Returns the wait status; does not remove the directory.  Asserts only
 * that the daemon could be reaped.
 */
int	 harness_terminate(struct harness *h);
/* The same with signal sig (SIGINT, SIGKILL, ...). */
int	 harness_kill(struct harness *h, int sig);

/*
 * The normal end of a test: harness_terminate(), asserts a clean exit
 * (status 0; under a wrapper such as valgrind that also means no report),
 * and removes the directory.
 */
void	 harness_stop(struct harness *h);

/* Writes text to the file name in h's directory; path gets its path. */
void	 harness_write_file(const struct harness *h, const char *name,
	    const char *text, char *path, size_t len);

/* The whole of a file, malloc'd and NUL-terminated; *len its length
 * (len may be NULL).  Asserts that it can be read. */
char	*harness_read_file(const char *path, size_t *len);
/* Removes the directory and everything in it. */
void	 harness_cleanup(struct harness *h);

/*
 * Runs one more mbxd (wrapper included) with `-s SOCK extra...` and no
 * NOTIFY_SOCKET, for a daemon that is expected to exit by itself: waits
 * for its exit (bounded; killed after HARNESS_WAIT_MS) and returns the wait
 * status, or -1 if it had to be killed.  Asserts.
 */
int	 harness_run_mbxd(const struct harness *h, const char *const *extra);

/*
 * mbx_open() on sock, tried again until it succeeds or wait_ms passed
 * (a daemon starting, or restarting behind its kept socket); NULL then.
 * Does not assert: usable from a forked helper.
 */
mbx_t	*harness_open_wait(const char *sock, int wait_ms);
/* mbx_open() on the daemon's socket.  Asserts success and a positive id. */
mbx_t	*harness_open(const struct harness *h);

/*
 * The result of one mbxctl run.  out and err are NUL-terminated (the
 * output itself may contain NULs: out_len, err_len).
 */
struct harness_ctl {
	int	 status;	/* exit status, or -1 when killed by a signal */
	int	 signal;	/* the signal, when status is -1 */
	char	*out;
	size_t	 out_len;
	char	*err;
	size_t	 err_len;
};

/*
 * Runs `$MBXCTL -s SOCK args...` (NULL-terminated variadic list; h NULL:
 * no -s, the environment decides), feeding it input (NULL: /dev/null) on
 * stdin and capturing stdout and stderr, in HARNESS_CHILD_MS at most.
 * Returns 0, or -1 with a message on stderr when the run could not be done
 * or timed out (the process is killed).  Does not assert: usable from a
 * forked helper.  Free the result with harness_ctl_free().
 */
int	 harness_ctl(const struct harness *h, const char *input,
	    struct harness_ctl *r, ...) __attribute__((sentinel));
int	 harness_ctlv(const struct harness *h, const char *input,
	    size_t input_len, struct harness_ctl *r, const char *const *args);
void	 harness_ctl_free(struct harness_ctl *r);

/*
 * A forked helper process running fn(h, arg); its return value is its
 * exit status.  It may report values to the test with harness_report().
 * It dies with the test process (PR_SET_PDEATHSIG) and keeps no
 * descriptor of the test process except stdin/stdout/stderr: a connection
 * the test opened is not kept alive by a helper.
 */
struct harness_child {
	pid_t	pid;
	int	rfd;		/* read end of the report pipe */
	int	status;		/* wait status once reaped */
	bool	reaped;
};

typedef int (*harness_child_fn)(const struct harness *h, void *arg);

void	 harness_child_start(struct harness_child *ch,
	    const struct harness *h, harness_child_fn fn, void *arg);
/* In a helper: sends v to the test process. */
void	 harness_report(long v);
/* In the test: the next value the helper reported.  Asserts. */
long	 harness_child_read(struct harness_child *ch);
/* True while the helper has not exited (does not wait). */
bool	 harness_child_running(struct harness_child *ch);
/*
 * Waits (HARNESS_CHILD_MS at most, then SIGKILL) for the helper and returns
 * its exit status, or 128 + the signal that killed it.
 */
int	 harness_child_join(struct harness_child *ch);

/*
 * Waits until the helper is asleep in a system call (its state in
 * /proc/PID/stat is S) or has exited, then makes a round trip to the daemon
 * through c.  Call it after the helper reported that it is about to make a
 * blocking libmbx call: once it sleeps, its request is in the daemon's
 * socket, and the round trip that follows is answered by the daemon only
 * after it has read that request (one event loop, and the request was
 * readable first).  Asserts.
 */
void	 harness_wait_blocked(mbx_t *c, struct harness_child *ch);

/*
 * The kernel's figures for a process (see mbxd-proc.h), asserted: a
 * reading of /proc that fails fails the test.  harness_proc_state()
 * returns 0 when pid is gone (reaped).
 */
long	 harness_proc_rss_kib(pid_t pid);
int	 harness_proc_fd_count(pid_t pid);
long	 harness_proc_fd_limit_for(pid_t pid, int room);
long	 harness_proc_cpu_ms(pid_t pid);
char	 harness_proc_state(pid_t pid);

/*
 * Admin queries, parsed.  Assert.  harness_mailbox() returns NULL when
 * there is no mailbox name; the caller json_decref()s every result.
 */
json_t	*harness_list(mbx_t *c);
json_t	*harness_clients(mbx_t *c);
json_t	*harness_mailbox(mbx_t *c, const char *name);
json_t	*harness_client(mbx_t *c, long id);
/*
 * An integer field of mailbox name (which must exist); JSON null reads as
 * 0 (a "receiver" of nobody).  Asserts.
 */
long	 harness_mailbox_int(mbx_t *c, const char *name, const char *key);
/*
 * The common message steps, asserted: send s (no wait) to name; receive
 * from name (NULL: any) within timeout_ms, which must be want.
 */
void	 harness_put(mbx_t *c, const char *name, const char *s);
void	 harness_expect(mbx_t *c, const char *name, int timeout_ms,
	    const char *want);
/* Numbered ones: "m<from>" ... "m<to - 1>" sent, or received in order
 * (2 s each at most); and nothing left to receive now (EAGAIN). */
void	 harness_put_n(mbx_t *c, const char *name, int from, int to);
void	 harness_expect_n(mbx_t *c, const char *name, int from, int to);
void	 harness_expect_empty(mbx_t *c, const char *name);
/* The standby ids of name as a string "1,5,3" (FIFO order). */
void	 harness_standby(mbx_t *c, const char *name, char *buf, size_t len);

/*
 * Bounded waits on the daemon's admin view (HARNESS_WAIT_MS at most, short
 * poll() pauses between queries).  Each returns true when the state was
 * reached.
 */
bool	 harness_wait_mailbox_int(mbx_t *c, const char *name,
	    const char *key, long value);
/* ids is a string as harness_standby() writes it ("" for none). */
bool	 harness_wait_standby(mbx_t *c, const char *name, const char *ids);
/* Until name has n clients standing by, whoever they are. */
bool	 harness_wait_standby_count(mbx_t *c, const char *name, size_t n);
bool	 harness_wait_client_gone(mbx_t *c, long id);

/*
 * Seconds a test case may take: 20, three times that when mbxd runs under
 * $MBX_TEST_WRAPPER (valgrind slows it down many times).
 */
double	 harness_tcase_timeout(void);
/* Monotonic milliseconds. */
int64_t	 harness_now_ms(void);
/* "EAGAIN" for EAGAIN, "0" for 0; never NULL. */
const char *harness_errname(int err);

/*
 * A raw protocol connection (for malformed input and two-phase receive):
 * harness_raw_connect() connects without the handshake; harness_raw_hello()
 * does the handshake and returns the client id.  harness_raw_read()
 * returns 1 and a malloc'd body, 0 on EOF or reset, -1 on a time-out;
 * harness_raw_read_fd() also gives the descriptor that came with the
 * frame (a zero-copy MSG's memfd), or -1.
 */
int	 harness_raw_connect(const struct harness *h);
bool	 harness_raw_write(int fd, const void *buf, size_t len);
int	 harness_raw_read(int fd, uint16_t *type, uint32_t *id,
	    uint32_t *flags, uint8_t **body, size_t *len);
int	 harness_raw_read_fd(int fd, uint16_t *type, uint32_t *id,
	    uint32_t *flags, uint8_t **body, size_t *len, int *passed);
long	 harness_raw_hello(int fd);

/*
 * Assertions for calls that follow the libmbx convention.
 */
#define ASSERT_OK(expr) do {						\
	errno = 0;							\
	long r_ = (long)(expr);						\
	int e_ = errno;							\
	ck_assert_msg(r_ == 0, "%s: expected 0, got %ld (%s)", #expr,	\
	    r_, harness_errname(e_));					\
} while (0)

#define ASSERT_ERR(expr, err) do {					\
	errno = 0;							\
	long r_ = (long)(expr);						\
	int e_ = errno;							\
	ck_assert_msg(r_ == -1 && e_ == (err),				\
	    "%s: expected -1 (%s), got %ld (%s)", #expr,		\
	    harness_errname(err), r_, r_ == -1 ? harness_errname(e_) : "-");\
} while (0)

/* In a helper: return a failure status with a message naming the line. */
#define CHILD_REQUIRE(cond) do {					\
	if (!(cond)) {							\
		int e_ = errno;						\
		fprintf(stderr, "%s:%d: helper %d: failed: %s (errno %s)\n",\
		    __FILE__, __LINE__, (int)getpid(), #cond,		\
		    harness_errname(e_));				\
		return 1;						\
	}								\
} while (0)

#endif /* MBX_TESTS_HARNESS_H */
