/*
 * harness.c - a real mbxd per test, in a mkdtemp() directory, and the
 * helpers end-to-end tests need around it (see harness.h).
 *
 * Invariants:
 * - Every wait is bounded twice: by a deadline (HARNESS_WAIT_MS or
 *   HARNESS_CHILD_MS) and by a count of iterations.
 * - Nothing waits by sleeping for a guessed time.  Readiness is the
 *   daemon's "READY=1" datagram on NOTIFY_SOCKET; the end of a process is
 *   observed with waitpid(WNOHANG) between short poll() pauses; any other
 *   state through the daemon's admin queries.
 * - A failed assertion ends the test process at once (_exit: no atexit,
 *   no teardown).  What it leaves behind is still cleaned up: daemons,
 *   helpers and mbxctl runs stay in the test's process group, which Check
 *   kills, and die with it anyway (PR_SET_PDEATHSIG); their directories
 *   live under $MBX_TEST_TMPDIR, which the runner (main.c) removes at the
 *   end.  mbxd's stderr is the test's, so its complaints (and valgrind's)
 *   show up next to the failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "harness.h"
#include "mbxd-proc.h"
#include "proto.h"

extern char **environ;

#define MAX_ARGS	64
#define MAX_PAUSE_MS	20

static int report_fd = -1;	/* in a helper: its report pipe */

/*
 * Bounded waiting: a deadline, a cap on iterations, and pauses that grow
 * from 1 ms to MAX_PAUSE_MS so that quick state changes are seen quickly.
 */
struct waiter {
	int64_t	deadline;
	int	pause_ms;
	int	left;
};

int64_t
harness_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
waiter_init(struct waiter *w, int timeout_ms)
{
	w->deadline = harness_now_ms() + timeout_ms;
	w->pause_ms = 1;
	/* Enough iterations for the whole time even at 1 ms pauses. */
	w->left = timeout_ms + 100;
}

/* Pauses once; false when the wait is over. */
static bool
waiter_pause(struct waiter *w)
{
	int64_t left = w->deadline - harness_now_ms();

	if (left <= 0 || w->left-- <= 0)
		return false;
	poll(NULL, 0, (int)(left < w->pause_ms ? left : w->pause_ms));
	if (w->pause_ms < MAX_PAUSE_MS)
		w->pause_ms *= 2;
	return true;
}

double
harness_tcase_timeout(void)
{
	const char *w = getenv("MBX_TEST_WRAPPER");

	return w != NULL && *w != '\0' ? 60 : 20;
}

const char *
harness_errname(int err)
{
	const char *s;

	if (err == 0)
		return "0";
	s = strerrorname_np(err);
	return s != NULL ? s : "E?";
}

static const char *
describe_status(int st, char *buf, size_t len)
{
	if (st == -1)
		snprintf(buf, len, "not reaped");
	else if (WIFEXITED(st))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st),
		    sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) :
		    "?");
	else
		snprintf(buf, len, "wait status %#x", st);
	return buf;
}

/*
 * Waits for pid to exit, at most timeout_ms.  True and *status once it
 * has (status -1 if it was not our child any more).
 */
static bool
wait_exit(pid_t pid, int timeout_ms, int *status)
{
	struct waiter w;

	waiter_init(&w, timeout_ms);
	do {
		pid_t r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return true;
		if (r < 0 && errno != EINTR) {
			*status = -1;
			return true;
		}
	} while (waiter_pause(&w));
	return false;
}

/* SIGKILL and reap; SIGKILL cannot be ignored, so this ends. */
static int
kill_reap(pid_t pid)
{
	int st = -1;

	kill(pid, SIGKILL);
	if (!wait_exit(pid, HARNESS_WAIT_MS, &st))
		st = -1;
	return st;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void
dump_file(const char *what, const char *path)
{
	char buf[4096];
	size_t n;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return;
	fprintf(stderr, "---- %s (%s) ----\n", what, path);
	for (int i = 0; i < 4096 && (n = fread(buf, 1, sizeof(buf), f)) > 0;
	    i++)
		fwrite(buf, 1, n, stderr);
	fprintf(stderr, "---- end of %s ----\n", what);
	fclose(f);
}

void
harness_init(struct harness *h)
{
	const char *tmp = getenv("MBX_TEST_TMPDIR");
	int n;

	memset(h, 0, sizeof(*h));
	h->pid = -1;
	h->notify_fd = -1;
	h->status = -1;
	if (tmp == NULL || *tmp == '\0' || strlen(tmp) > 40)
		tmp = getenv("TMPDIR");
	if (tmp == NULL || *tmp == '\0' || strlen(tmp) > 40)
		tmp = "/tmp";
	n = snprintf(h->dir, sizeof(h->dir), "%s/mbx-test.XXXXXX", tmp);
	ck_assert(n > 0 && (size_t)n < sizeof(h->dir));
	ck_assert_msg(mkdtemp(h->dir) != NULL, "mkdtemp %s: %s", h->dir,
	    strerror(errno));
	snprintf(h->sock, sizeof(h->sock), "%s/mbxd.sock", h->dir);
	snprintf(h->notify, sizeof(h->notify), "%s/notify", h->dir);
}

/* Closes every descriptor from lo up. */
static void
close_from(int lo)
{
	if (close_range((unsigned)lo, ~0U, 0) == 0)
		return;
	for (int fd = lo; fd < 1024; fd++)
		close(fd);
}

/* In a freshly forked child: die with the parent, default signals. */
static void
child_setup(pid_t parent)
{
	sigset_t all;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
}

/*
 * The environment for a daemon: ours, without NOTIFY_SOCKET, plus
 * notify_var when it is not NULL.  Freed with free().
 */
static char **
daemon_env(const char *notify_var)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n] != NULL && n < 100000)
		n++;
	/* Room for notify_var and the three LISTEN_ variables. */
	env = calloc(n + 5, sizeof(*env));
	ck_assert(env != NULL);
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "NOTIFY_SOCKET=", 14) != 0)
			env[k++] = environ[i];
	if (notify_var != NULL)
		env[k++] = (char *)(uintptr_t)notify_var;
	env[k] = NULL;
	return env;
}

/*
 * Forks `$MBX_TEST_WRAPPER $MBXD -s SOCK extra...` with stdout and stderr
 * appended to logpath (NULL: ours), and notify_var (or no NOTIFY_SOCKET) in its
 * environment.  Returns its pid.  Asserts.
 */
/*
 * In the child: the store's descriptors at 3, 4, ... and the variables
 * that tell the daemon so, LISTEN_PID its own pid.
 */
static void
child_pass_store(const struct harness *h, char **env)
{
	static char pid_var[32], fds_var[32], names_var[HARNESS_STORE_MAX *
	    (HARNESS_STORE_NAME + 1) + 32];
	int high[HARNESS_STORE_MAX];
	size_t k = 0, len;

	while (env[k] != NULL)
		k++;
	/* Out of the way first: a stored descriptor may sit at 3 already. */
	for (size_t i = 0; i < h->nstored; i++)
		if ((high[i] = fcntl(h->store[i].fd, F_DUPFD, 100)) < 0)
			_exit(127);
	for (size_t i = 0; i < h->nstored; i++)
		if (dup2(high[i], 3 + (int)i) < 0)
			_exit(127);
	close_from(3 + (int)h->nstored);
	snprintf(pid_var, sizeof(pid_var), "LISTEN_PID=%d", (int)getpid());
	snprintf(fds_var, sizeof(fds_var), "LISTEN_FDS=%zu", h->nstored);
	len = (size_t)snprintf(names_var, sizeof(names_var), "LISTEN_FDNAMES=");
	for (size_t i = 0; i < h->nstored; i++)
		len += (size_t)snprintf(names_var + len, sizeof(names_var) - len,
		    "%s%s", i > 0 ? ":" : "", h->store[i].name);
	env[k++] = pid_var;
	env[k++] = fds_var;
	env[k++] = names_var;
	env[k] = NULL;
}

static pid_t
spawn_mbxd(const struct harness *h, const char *const *extra,
    const char *notify_var, const char *logpath)
{
	const char *mbxd = getenv("MBXD");
	const char *wrapper = getenv("MBX_TEST_WRAPPER");
	char wbuf[1024], state[HARNESS_DIR_MAX + 8];
	const char *argv[MAX_ARGS];
	char **env;
	size_t n = 0;
	pid_t pid, parent = getpid();
	int logfd = -1;

	ck_assert_msg(mbxd != NULL && *mbxd != '\0',
	    "MBXD is not set (the absolute path of mbxd; `make test` sets it)");
	if (wrapper != NULL && *wrapper != '\0') {
		char *save = NULL, *tok;

		ck_assert(strlen(wrapper) < sizeof(wbuf));
		snprintf(wbuf, sizeof(wbuf), "%s", wrapper);
		for (tok = strtok_r(wbuf, " \t", &save); tok != NULL;
		    tok = strtok_r(NULL, " \t", &save)) {
			ck_assert(n < MAX_ARGS / 2);
			argv[n++] = tok;
		}
	}
	argv[n++] = mbxd;
	argv[n++] = "-s";
	argv[n++] = h->sock;
	/* Durable mailboxes of a test stay in its directory (extra wins). */
	snprintf(state, sizeof(state), "%s/state", h->dir);
	argv[n++] = "--state-dir";
	argv[n++] = state;
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
		ck_assert(n < MAX_ARGS - 1);
		argv[n++] = extra[i];
	}
	argv[n] = NULL;

	if (logpath != NULL) {
		logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND |
		    O_CLOEXEC, 0644);
		ck_assert_msg(logfd >= 0, "open %s: %s", logpath,
		    strerror(errno));
	}
	env = daemon_env(notify_var);
	fflush(NULL);
	pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int nullfd = open("/dev/null", O_RDONLY);

		child_setup(parent);
		if (nullfd < 0 || dup2(nullfd, 0) < 0)
			_exit(127);
		if (logfd >= 0 && (dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0))
			_exit(127);
		/* Only the harness's own daemon gets the store. */
		if (notify_var != NULL && h->nstored > 0)
			child_pass_store(h, env);
		else
			close_from(3);
		execvpe(argv[0], (char *const *)(uintptr_t)argv, env);
		dprintf(2, "harness: exec %s: %s\n", argv[0],
		    strerror(errno));
		_exit(127);
	}
	free(env);
	if (logfd >= 0)
		close(logfd);
	return pid;
}

/* The value of "key=" in a notify datagram, into buf ("" if none). */
static void
notify_value(const char *msg, size_t len, const char *key, char *buf,
    size_t size)
{
	const char *p = msg, *end = msg + len;
	size_t kl = strlen(key);

	buf[0] = '\0';
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = (size_t)((nl ? nl : end) - p);

		if (l > kl && memcmp(p, key, kl) == 0) {
			size_t vl = l - kl < size - 1 ? l - kl : size - 1;

			memcpy(buf, p + kl, vl);
			buf[vl] = '\0';
		}
		p += l + 1;
	}
}

int
harness_stored_fd(const struct harness *h, const char *name)
{
	for (size_t i = 0; i < h->nstored; i++)
		if (strcmp(h->store[i].name, name) == 0)
			return h->store[i].fd;
	return -1;
}

void
harness_store_fd(struct harness *h, const char *name, int fd)
{
	ck_assert_msg(h->nstored < HARNESS_STORE_MAX, "the store is full");
	h->store[h->nstored].fd = fd;
	snprintf(h->store[h->nstored].name, HARNESS_STORE_NAME, "%s", name);
	h->nstored++;
}

/* Whether the store holds fd's file already (systemd keeps one). */
static bool
store_has(const struct harness *h, int fd)
{
	struct stat a, b;

	if (fstat(fd, &a) < 0)
		return false;
	for (size_t i = 0; i < h->nstored; i++)
		if (fstat(h->store[i].fd, &b) == 0 && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino)
			return true;
	return false;
}

/* FDSTOREREMOVE=1: every descriptor of that name goes. */
static void
store_remove(struct harness *h, const char *name)
{
	size_t k = 0;

	for (size_t i = 0; i < h->nstored; i++) {
		if (strcmp(h->store[i].name, name) == 0)
			close(h->store[i].fd);
		else
			h->store[k++] = h->store[i];
	}
	h->nstored = k;
	h->removed++;
}

/*
 * One datagram from the daemon, as systemd takes it: descriptors with
 * FDSTORE=1 go into the store, FDSTOREREMOVE=1 empties a name, others
 * are closed.  Returns 1 when it said READY=1, 0 for another, -1 when
 * there was none.
 */
static int
notify_take(struct harness *h)
{
	union {
		struct cmsghdr	align;
		char		buf[CMSG_SPACE(sizeof(int) * 253)];
	} cbuf;
	char msg[4096], name[HARNESS_STORE_NAME];
	struct iovec iov = { msg, sizeof(msg) - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf) };
	struct cmsghdr *cm;
	bool store;
	ssize_t r = recvmsg(h->notify_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (r <= 0)
		return -1;
	store = proc_notify_has(msg, (size_t)r, "FDSTORE=1");
	notify_value(msg, (size_t)r, "FDNAME=", name, sizeof(name));
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		int *fds = (int *)(void *)CMSG_DATA(cm);
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < n; i++) {
			if (store && h->nstored < HARNESS_STORE_MAX &&
			    !store_has(h, fds[i]))
				harness_store_fd(h, name[0] ? name : "stored",
				    fds[i]);
			else
				close(fds[i]);
		}
	}
	if (proc_notify_has(msg, (size_t)r, "FDSTOREREMOVE=1"))
		store_remove(h, name);
	return proc_notify_has(msg, (size_t)r, "READY=1") ? 1 : 0;
}

void
harness_launch(struct harness *h, const char *const *extra)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char var[HARNESS_PATH_MAX + 16], why[64];
	int64_t deadline;
	bool ready = false;

	ck_assert_msg(h->pid < 0, "harness_launch: a daemon is running");
	if (h->notify_fd < 0) {
		h->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		ck_assert_msg(h->notify_fd >= 0, "socket: %s",
		    strerror(errno));
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", h->notify);
		ck_assert_msg(bind(h->notify_fd, (struct sockaddr *)&sun,
		    sizeof(sun)) == 0, "bind %s: %s", h->notify,
		    strerror(errno));
	}
	snprintf(var, sizeof(var), "NOTIFY_SOCKET=%s", h->notify);
	h->status = -1;
	h->pid = spawn_mbxd(h, extra, var, NULL);
	
	deadline = harness_now_ms() + HARNESS_WAIT_MS;
	for (int i = 0; i < 100000 && !ready; i++) {
		struct pollfd pfd = { .fd = h->notify_fd, .events = POLLIN };
		int64_t left = deadline - harness_now_ms();
		int st;

		if (left <= 0)
			break;
		if (poll(&pfd, 1, left < 100 ? (int)left : 100) > 0) {
			if (notify_take(h) == 1)
				ready = true;
			continue;
		}
		if (waitpid(h->pid, &st, WNOHANG) == h->pid) {
			h->pid = -1;
			h->status = st;
			ck_abort_msg("mbxd exited before READY=1: %s (see its "
			    "messages on stderr)",
			    describe_status(st, why, sizeof(why)));
		}
	}
	ck_assert_msg(ready, "mbxd sent no READY=1 within %d ms",
	    HARNESS_WAIT_MS);
}

void
harness_restart(struct harness *h, const char *const *extra)
{
	int64_t deadline = harness_now_ms() + HARNESS_WAIT_MS;
	char why[64];
	int st = -1;

	ck_assert_msg(h->pid > 0, "harness_restart: no daemon");
	ck_assert_msg(kill(h->pid, SIGUSR2) == 0, "kill: %s", strerror(errno));
	/* Its store messages come before it exits: read them as they do. */
	for (;;) {
		struct pollfd pfd = { .fd = h->notify_fd, .events = POLLIN };

		if (poll(&pfd, 1, 5) > 0) {
			(void)notify_take(h);
			continue;
		}
		if (waitpid(h->pid, &st, WNOHANG) == h->pid)
			break;
		if (harness_now_ms() > deadline) {
			kill_reap(h->pid);
			h->pid = -1;
			ck_abort_msg("mbxd did not exit within %d ms of "
			    "SIGUSR2 (killed)", HARNESS_WAIT_MS);
		}
	}
	while (notify_take(h) >= 0)
		;
	h->pid = -1;
	h->status = st;
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "mbxd did not exit 0 after SIGUSR2: %s",
	    describe_status(st, why, sizeof(why)));
	harness_launch(h, extra);
}

void
harness_start(struct harness *h, const char *const *extra)
{
	harness_init(h);
	harness_launch(h, extra);
}

int
harness_kill(struct harness *h, int sig)
{
	int st = -1;

	if (h->pid <= 0)
		return h->status;
	ck_assert_msg(kill(h->pid, sig) == 0, "kill: %s", strerror(errno));
	if (!wait_exit(h->pid, HARNESS_WAIT_MS, &st)) {
		kill_reap(h->pid);
		h->pid = -1;
		ck_abort_msg("mbxd did not exit within %d ms of SIG%s "
		    "(killed)", HARNESS_WAIT_MS, sigabbrev_np(sig));
	}
	h->pid = -1;
	h->status = st;
	return st;
}

int
harness_terminate(struct harness *h)
{
	return harness_kill(h, SIGTERM);
}

void
harness_stop(struct harness *h)
{
	char why[64];
	int st = harness_terminate(h);

	ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	    "mbxd did not exit cleanly after SIGTERM: %s (see its messages "
	    "on stderr)", describe_status(st, why, sizeof(why)));
	harness_cleanup(h);
}

void
harness_write_file(const struct harness *h, const char *name,
    const char *text, char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s", h->dir, name);
	f = fopen(path, "w");
	ck_assert(f != NULL && fputs(text, f) >= 0 && fclose(f) == 0);
}

char *
harness_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	size_t n = 0, cap = 1 << 16;
	char *buf;

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	buf = malloc(cap + 1);
	ck_assert(buf != NULL);
	for (;;) {
		size_t got = fread(buf + n, 1, cap - n, f);

		n += got;
		if (got == 0)
			break;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			ck_assert(buf != NULL);
		}
	}
	fclose(f);
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}

void
harness_cleanup(struct harness *h)
{
	if (h->pid > 0) {
		kill_reap(h->pid);
		h->pid = -1;
	}
	for (size_t i = 0; i < h->nstored; i++)
		close(h->store[i].fd);
	h->nstored = 0;
	if (h->notify_fd >= 0) {
		close(h->notify_fd);
		h->notify_fd = -1;
	}
	if (h->dir[0] != '\0')
		nftw(h->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int
harness_run_mbxd(const struct harness *h, const char *const *extra)
{
	char logpath[HARNESS_PATH_MAX];
	pid_t pid;
	int st;

	snprintf(logpath, sizeof(logpath), "%s/other.log", h->dir);
	pid = spawn_mbxd(h, extra, NULL, logpath);
	if (!wait_exit(pid, HARNESS_WAIT_MS, &st)) {
		kill_reap(pid);
		dump_file("the other mbxd's log", logpath);
		return -1;
	}
	return st;
}

mbx_t *
harness_open_wait(const char *sock, int wait_ms)
{
	int64_t deadline = harness_now_ms() + wait_ms;
	mbx_t *c;

	while ((c = mbx_open(sock)) == NULL && harness_now_ms() < deadline)
		poll(NULL, 0, 5);
	return c;
}

mbx_t *
harness_open(const struct harness *h)
{
	mbx_t *c = mbx_open(h->sock);

	ck_assert_msg(c != NULL, "mbx_open(%s): %s", h->sock,
	    harness_errname(errno));
	ck_assert_msg(mbx_id(c) > 0, "mbx_id %ld", mbx_id(c));
	return c;
}

/*
 * mbxctl runs
 */

struct buf {
	char	*p;
	size_t	 len, cap;
};

static bool
buf_read(struct buf *b, int fd)
{
	ssize_t r;

	if (b->cap - b->len < 4097) {
		size_t cap = b->cap ? b->cap * 2 : 8192;
		char *p = realloc(b->p, cap);

		if (p == NULL)
			return false;
		b->p = p;
		b->cap = cap;
		b->p[b->len] = '\0';
	}
	r = read(fd, b->p + b->len, b->cap - b->len - 1);
	if (r > 0) {
		b->len += (size_t)r;
		b->p[b->len] = '\0';
		return true;
	}
	return r < 0 && (errno == EINTR || errno == EAGAIN);
}

int
harness_ctlv(const struct harness *h, const char *input, size_t input_len,
    struct harness_ctl *r, const char *const *args)
{
	const char *mbxctl = getenv("MBXCTL");
	const char *argv[MAX_ARGS];
	int in[2] = { -1, -1 }, out[2], err[2];
	struct buf ob = { 0 }, eb = { 0 };
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	size_t n = 0, done = 0;
	pid_t pid, parent = getpid();
	int64_t deadline;
	int st = -1, rc = -1;

	memset(r, 0, sizeof(*r));
	r->status = -1;
	if (mbxctl == NULL || *mbxctl == '\0') {
		fprintf(stderr, "harness: MBXCTL is not set\n");
		return -1;
	}
	argv[n++] = mbxctl;
	if (h != NULL) {
		argv[n++] = "-s";
		argv[n++] = h->sock;
	}
	for (size_t i = 0; args[i] != NULL; i++) {
		if (n >= MAX_ARGS - 1) {
			fprintf(stderr, "harness: too many mbxctl args\n");
			return -1;
		}
		argv[n++] = args[i];
	}
	argv[n] = NULL;

	if ((input != NULL && pipe2(in, O_CLOEXEC) < 0) ||
	    pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
		fprintf(stderr, "harness: pipe: %s\n", strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "harness: fork: %s\n", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int infd = input != NULL ? in[0] : open("/dev/null", O_RDONLY);

		child_setup(parent);
		if (infd < 0 || dup2(infd, 0) < 0 || dup2(out[1], 1) < 0 ||
		    dup2(err[1], 2) < 0)
			_exit(127);
		close_from(3);
		execv(mbxctl, (char *const *)(uintptr_t)argv);
		dprintf(2, "harness: exec %s: %s\n", mbxctl, strerror(errno));
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	if (input != NULL) {
		close(in[0]);
		fcntl(in[1], F_SETFL, O_NONBLOCK);
		if (input_len == 0) {
			close(in[1]);
			in[1] = -1;
		}
	}

	/* mbxctl may exit without reading its input: no SIGPIPE for us. */
	sigaction(SIGPIPE, &ign, &old);
	deadline = harness_now_ms() + HARNESS_CHILD_MS;
	for (int i = 0; i < 1000000 && (out[0] >= 0 || err[0] >= 0); i++) {
		struct pollfd pfd[3];
		int64_t left = deadline - harness_now_ms();
		nfds_t np = 0;

		if (left <= 0)
			break;
		pfd[np++] = (struct pollfd){ .fd = out[0], .events = POLLIN };
		pfd[np++] = (struct pollfd){ .fd = err[0], .events = POLLIN };
		pfd[np++] = (struct pollfd){ .fd = input ? in[1] : -1,
		    .events = POLLOUT };
		if (poll(pfd, np, (int)left) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents && !buf_read(&ob, out[0])) {
			close(out[0]);
			out[0] = -1;
		}
		if (pfd[1].revents && !buf_read(&eb, err[0])) {
			close(err[0]);
			err[0] = -1;
		}
		if (pfd[2].revents) {
			ssize_t w = write(in[1], input + done,
			    input_len - done);

			if (w > 0)
				done += (size_t)w;
			if ((w < 0 && errno != EAGAIN && errno != EINTR) ||
			    done == input_len) {
				close(in[1]);
				in[1] = -1;
			}
		}
	}
	sigaction(SIGPIPE, &old, NULL);

	if (out[0] >= 0 || err[0] >= 0) {
		fprintf(stderr, "harness: mbxctl did not finish within %d ms;"
		    " killed\n", HARNESS_CHILD_MS);
		kill_reap(pid);
		goto out;
	}
	if (!wait_exit(pid, HARNESS_WAIT_MS, &st)) {
		fprintf(stderr, "harness: mbxctl did not exit; killed\n");
		kill_reap(pid);
		goto out;
	}
	if (WIFEXITED(st))
		r->status = WEXITSTATUS(st);
	else if (WIFSIGNALED(st))
		r->signal = WTERMSIG(st);
	rc = 0;
out:
	if (in[1] >= 0)
		close(in[1]);
	if (out[0] >= 0)
		close(out[0]);
	if (err[0] >= 0)
		close(err[0]);
	r->out = ob.p ? ob.p : strdup("");
	r->out_len = ob.len;
	r->err = eb.p ? eb.p : strdup("");
	r->err_len = eb.len;
	if (r->out == NULL || r->err == NULL)
		rc = -1;
	return rc;
}

int
harness_ctl(const struct harness *h, const char *input,
    struct harness_ctl *r, ...)
{
	const char *args[MAX_ARGS];
	size_t n = 0;
	va_list ap;
	const char *a;

	va_start(ap, r);
	while ((a = va_arg(ap, const char *)) != NULL && n < MAX_ARGS - 1)
		args[n++] = a;
	va_end(ap);
	args[n] = NULL;
	return harness_ctlv(h, input, input ? strlen(input) : 0, r, args);
}

void
harness_ctl_free(struct harness_ctl *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

/*
 * Forked helpers
 */

void
harness_child_start(struct harness_child *ch, const struct harness *h,
    harness_child_fn fn, void *arg)
{
	int p[2];
	pid_t parent = getpid();

	memset(ch, 0, sizeof(*ch));
	ch->status = -1;
	ck_assert_msg(pipe2(p, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
	fflush(NULL);
	ch->pid = fork();
	ck_assert_msg(ch->pid >= 0, "fork: %s", strerror(errno));
	if (ch->pid == 0) {
		int rc;

		child_setup(parent);
		/* Keep 0-2 and the report pipe (as 3), nothing else. */
		if (p[1] != 3 && dup2(p[1], 3) < 0)
			_exit(126);
		close_from(4);
		report_fd = 3;
		rc = fn(h, arg);
		fflush(NULL);
		_exit(rc & 0xff);
	}
	close(p[1]);
	ch->rfd = p[0];
}

void
harness_report(long v)
{
	if (report_fd >= 0 && write(report_fd, &v, sizeof(v)) != sizeof(v))
		fprintf(stderr, "harness: report: %s\n", strerror(errno));
}

long
harness_child_read(struct harness_child *ch)
{
	struct pollfd pfd = { .fd = ch->rfd, .events = POLLIN };
	long v;
	ssize_t r;
	int pr;

	do
		pr = poll(&pfd, 1, HARNESS_CHILD_MS);
	while (pr < 0 && errno == EINTR);
	ck_assert_msg(pr == 1, "helper %d reported nothing within %d ms",
	    (int)ch->pid, HARNESS_CHILD_MS);
	r = read(ch->rfd, &v, sizeof(v));
	if (r != sizeof(v)) {
		int code = harness_child_join(ch);

		ck_abort_msg("helper %d ended without reporting: exit code "
		    "%d", (int)ch->pid, code);
	}
	return v;
}

bool
harness_child_running(struct harness_child *ch)
{
	if (ch->reaped)
		return false;
	if (waitpid(ch->pid, &ch->status, WNOHANG) == ch->pid) {
		ch->reaped = true;
		return false;
	}
	return true;
}

int
harness_child_join(struct harness_child *ch)
{
	if (!ch->reaped) {
		if (!wait_exit(ch->pid, HARNESS_CHILD_MS, &ch->status)) {
			fprintf(stderr, "harness: helper %d still running "
			    "after %d ms; killed\n", (int)ch->pid,
			    HARNESS_CHILD_MS);
			ch->status = kill_reap(ch->pid);
		}
		ch->reaped = true;
	}
	if (ch->rfd >= 0) {
		close(ch->rfd);
		ch->rfd = -1;
	}
	if (ch->status == -1)
		return 255;
	if (WIFEXITED(ch->status))
		return WEXITSTATUS(ch->status);
	if (WIFSIGNALED(ch->status))
		return 128 + WTERMSIG(ch->status);
	return 255;
}

void
harness_wait_blocked(mbx_t *c, struct harness_child *ch)
{
	struct waiter w;
	char *json = NULL;
	bool blocked = false;

	waiter_init(&w, HARNESS_WAIT_MS);
	do {
		char s;

		if (!harness_child_running(ch)) {
			blocked = true;		/* the test checks the result */
			break;
		}
		/*
		 * Not reaped, so /proc/PID/stat exists (a zombie's too): a
		 * reading that fails is a failure, not a sleeping helper.
		 */
		s = harness_proc_state(ch->pid);
		if (s == 'S' || s == 'Z') {
			blocked = true;
			break;
		}
	} while (waiter_pause(&w));
	ck_assert_msg(blocked, "helper %d never blocked", (int)ch->pid);
	/* The round trip that orders the helper's request before ours. */
	ck_assert_msg(mbx_list(c, &json) == 0, "mbx_list: %s",
	    harness_errname(errno));
	free(json);
}

/*
 * The kernel's figures for a process, asserted: a reading that fails
 * fails the test, instead of a -1 that passes every upper bound.
 */
long
harness_proc_rss_kib(pid_t pid)
{
	long v = proc_rss_kib(pid);

	ck_assert_msg(v >= 0, "cannot read the RSS of process %d (message "
	    "above)", (int)pid);
	return v;
}

int
harness_proc_fd_count(pid_t pid)
{
	int v = proc_fd_count(pid);

	ck_assert_msg(v >= 0, "cannot count the descriptors of process %d "
	    "(message above)", (int)pid);
	return v;
}

long
harness_proc_fd_limit_for(pid_t pid, int room)
{
	long v = proc_fd_limit_for(pid, room);

	ck_assert_msg(v >= 0, "cannot list the descriptors of process %d "
	    "(message above)", (int)pid);
	return v;
}

long
harness_proc_cpu_ms(pid_t pid)
{
	long v = proc_cpu_ms(pid);

	ck_assert_msg(v >= 0, "cannot read the CPU time of process %d "
	    "(message above)", (int)pid);
	return v;
}

char
harness_proc_state(pid_t pid)
{
	char s = proc_state(pid);

	ck_assert_msg(s != PROC_STATE_UNKNOWN, "cannot read the state of "
	    "process %d (message above)", (int)pid);
	return s;
}

/*
 * Admin queries
 */

static json_t *
query(mbx_t *c, int (*fn)(mbx_t *, char **), const char *what)
{
	json_error_t jerr;
	char *s = NULL;
	json_t *j;

	ck_assert_msg(fn(c, &s) == 0, "%s: %s", what, harness_errname(errno));
	ck_assert_msg(s != NULL, "%s: no JSON", what);
	j = json_loads(s, 0, &jerr);
	ck_assert_msg(j != NULL, "%s: bad JSON (%s): %s", what, jerr.text, s);
	ck_assert_msg(json_is_array(j), "%s: not an array: %s", what, s);
	free(s);
	return j;
}

json_t *
harness_list(mbx_t *c)
{
	return query(c, mbx_list, "mbx_list");
}

json_t *
harness_clients(mbx_t *c)
{
	return query(c, mbx_clients, "mbx_clients");
}

json_t *
harness_mailbox(mbx_t *c, const char *name)
{
	json_t *all = harness_list(c), *o, *found = NULL;
	size_t i;

	json_array_foreach(all, i, o) {
		const char *n = json_string_value(json_object_get(o, "name"));

		if (n != NULL && strcmp(n, name) == 0) {
			found = json_incref(o);
			break;
		}
	}
	json_decref(all);
	return found;
}

json_t *
harness_client(mbx_t *c, long id)
{
	json_t *all = harness_clients(c), *o, *found = NULL;
	size_t i;

	json_array_foreach(all, i, o) {
		json_t *v = json_object_get(o, "id");

		if (json_is_integer(v) && json_integer_value(v) == id) {
			found = json_incref(o);
			break;
		}
	}
	json_decref(all);
	return found;
}

void
harness_put(mbx_t *c, const char *name, const char *s)
{
	ASSERT_OK(mbx_send(c, name, s, strlen(s), 0, 0));
}

void
harness_expect(mbx_t *c, const char *name, int timeout_ms, const char *want)
{
	const char *shown = name != NULL ? name : "any";
	char buf[4096];
	ssize_t n;

	errno = 0;
	n = mbx_recv(c, name, buf, sizeof(buf), NULL, timeout_ms);
	ck_assert_msg(n >= 0, "mbx_recv(%s): -1 (%s), expected \"%s\"", shown,
	    harness_errname(errno), want);
	ck_assert_msg((size_t)n == strlen(want) && memcmp(buf, want,
	    (size_t)n) == 0, "mbx_recv(%s): got \"%.*s\", expected \"%s\"",
	    shown, (int)n, buf, want);
}

void
harness_put_n(mbx_t *c, const char *name, int from, int to)
{
	char buf[32];

	for (int i = from; i < to; i++) {
		snprintf(buf, sizeof(buf), "m%d", i);
		harness_put(c, name, buf);
	}
}

void
harness_expect_n(mbx_t *c, const char *name, int from, int to)
{
	char buf[32];

	for (int i = from; i < to; i++) {
		snprintf(buf, sizeof(buf), "m%d", i);
		harness_expect(c, name, 2000, buf);
	}
}

void
harness_expect_empty(mbx_t *c, const char *name)
{
	char buf[64];

	errno = 0;
	ck_assert_msg(mbx_recv(c, name, buf, sizeof(buf), NULL, 0) == -1 &&
	    errno == EAGAIN, "mbx_recv(%s): not empty (%s)", name,
	    harness_errname(errno));
}

long
harness_mailbox_int(mbx_t *c, const char *name, const char *key)
{
	json_t *o = harness_mailbox(c, name), *v;
	long r;

	ck_assert_msg(o != NULL, "mailbox %s is not listed", name);
	v = json_object_get(o, key);
	ck_assert_msg(v != NULL, "mailbox %s: no key %s", name, key);
	ck_assert_msg(json_is_null(v) || json_is_integer(v),
	    "mailbox %s: %s is not an integer", name, key);
	r = json_is_null(v) ? 0 : (long)json_integer_value(v);
	json_decref(o);
	return r;
}

void
harness_standby(mbx_t *c, const char *name, char *buf, size_t len)
{
	json_t *o = harness_mailbox(c, name), *a, *v;
	size_t i, off = 0;

	ck_assert_msg(o != NULL, "mailbox %s is not listed", name);
	a = json_object_get(o, "standby");
	ck_assert_msg(json_is_array(a), "mailbox %s: standby is not an "
	    "array", name);
	buf[0] = '\0';
	json_array_foreach(a, i, v) {
		int n;

		ck_assert_msg(json_is_integer(v), "mailbox %s: standby id is "
		    "not an integer", name);
		n = snprintf(buf + off, len - off, "%s%lld", i ? "," : "",
		    (long long)json_integer_value(v));
		ck_assert(n > 0 && (size_t)n < len - off);
		off += (size_t)n;
	}
	json_decref(o);
}

bool
harness_wait_mailbox_int(mbx_t *c, const char *name, const char *key,
    long value)
{
	struct waiter w;

	waiter_init(&w, HARNESS_WAIT_MS);
	do
		if (harness_mailbox_int(c, name, key) == value)
			return true;
	while (waiter_pause(&w));
	return false;
}

bool
harness_wait_standby(mbx_t *c, const char *name, const char *ids)
{
	struct waiter w;
	char buf[1024];

	waiter_init(&w, HARNESS_WAIT_MS);
	do {
		harness_standby(c, name, buf, sizeof(buf));
		if (strcmp(buf, ids) == 0)
			return true;
	} while (waiter_pause(&w));
	return false;
}

bool
harness_wait_standby_count(mbx_t *c, const char *name, size_t n)
{
	struct waiter w;

	waiter_init(&w, HARNESS_WAIT_MS);
	do {
		json_t *o = harness_mailbox(c, name);
		size_t k;

		ck_assert_msg(o != NULL, "mailbox %s is not listed", name);
		k = json_array_size(json_object_get(o, "standby"));
		json_decref(o);
		if (k == n)
			return true;
	} while (waiter_pause(&w));
	return false;
}

bool
harness_wait_client_gone(mbx_t *c, long id)
{
	struct waiter w;

	waiter_init(&w, HARNESS_WAIT_MS);
	do {
		json_t *o = harness_client(c, id);

		if (o == NULL)
			return true;
		json_decref(o);
	} while (waiter_pause(&w));
	return false;
}

/*
 * Raw protocol connections
 */

int
harness_raw_connect(const struct harness *h)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", h->sock);
	ck_assert_msg(connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0,
	    "connect %s: %s", h->sock, strerror(errno));
	return fd;
}

bool
harness_raw_write(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (int i = 0; i < 100000 && len > 0; i++) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		len -= (size_t)w;
	}
	return len == 0;
}

/* One read that keeps a passed descriptor in *passed (or closes it). */
static ssize_t
read_fd(int fd, uint8_t *buf, size_t len, int *passed)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} cbuf;
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf) };
	struct cmsghdr *cm;
	ssize_t r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);

	for (cm = CMSG_FIRSTHDR(&mh); r > 0 && cm != NULL;
	    cm = CMSG_NXTHDR(&mh, cm)) {
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		for (size_t i = 0; cm->cmsg_type == SCM_RIGHTS && i < n; i++) {
			int got;

			memcpy(&got, CMSG_DATA(cm) + i * sizeof(int),
			    sizeof(got));
			if (passed != NULL && *passed < 0)
				*passed = got;
			else
				close(got);
		}
	}
	return r;
}

/*
 * Reads exactly len bytes by deadline: 1, 0 on EOF/reset, -1 time-out.
 * A descriptor passed with them goes to *passed (closed when passed is
 * NULL or already holds one).
 */
static int
read_full(int fd, uint8_t *buf, size_t len, int64_t deadline, int *passed)
{
	size_t got = 0;

	for (int i = 0; i < 1000000 && got < len; i++) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - harness_now_ms();
		ssize_t r;

		if (left <= 0)
			return -1;
		if (poll(&pfd, 1, (int)left) <= 0)
			continue;
		r = read_fd(fd, buf + got, len - got, passed);
		if (r == 0 || (r < 0 && errno == ECONNRESET))
			return 0;
		if (r < 0 && errno != EINTR && errno != EAGAIN)
			return 0;
		if (r > 0)
			got += (size_t)r;
	}
	return got == len ? 1 : -1;
}

int
harness_raw_read(int fd, uint16_t *type, uint32_t *id, uint32_t *flags,
    uint8_t **body, size_t *len)
{
	return harness_raw_read_fd(fd, type, id, flags, body, len, NULL);
}

int
harness_raw_read_fd(int fd, uint16_t *type, uint32_t *id, uint32_t *flags,
    uint8_t **body, size_t *len, int *passed)
{
	int64_t deadline = harness_now_ms() + HARNESS_WAIT_MS;
	uint8_t hdr[PROTO_HEADER_SIZE];
	struct proto_header h;
	int r;

	*body = NULL;
	*len = 0;
	if (passed != NULL)
		*passed = -1;
	if ((r = read_full(fd, hdr, sizeof(hdr), deadline, passed)) != 1)
		return r;
	if (proto_header_decode(hdr, sizeof(hdr), PROTO_MAX_BODY, &h) !=
	    PROTO_DECODE_OK) {
		fprintf(stderr, "harness: the daemon sent a malformed "
		    "header\n");
		return -1;
	}
	*body = malloc(h.len ? h.len : 1);
	if (*body == NULL)
		return -1;
	if (h.len > 0 && (r = read_full(fd, *body, h.len, deadline,
	    passed)) != 1) {
		free(*body);
		*body = NULL;
		return r;
	}
	*type = h.type;
	*id = h.id;
	*flags = h.flags;
	*len = h.len;
	return 1;
}

long
harness_raw_hello(int fd)
{
	struct proto_writer w;
	struct proto_reader rd;
	uint8_t *body;
	size_t len, start;
	uint16_t type;
	uint32_t id, flags, status, version;
	uint64_t cid;

	proto_writer_init(&w);
	start = proto_frame_begin(&w);
	proto_put_u32(&w, PROTO_VERSION);
	proto_frame_end(&w, start, PROTO_HELLO, 1, 0, 0);
	ck_assert(!proto_writer_failed(&w));
	ck_assert_msg(harness_raw_write(fd, w.buf, w.len), "write HELLO: %s",
	    strerror(errno));
	proto_writer_free(&w);
	ck_assert_msg(harness_raw_read(fd, &type, &id, &flags, &body, &len) ==
	    1, "no answer to HELLO");
	ck_assert_int_eq(type, PROTO_REPLY);
	ck_assert_int_eq(id, 1);
	proto_reader_init(&rd, body, len);
	status = proto_get_u32(&rd);
	version = proto_get_u32(&rd);
	cid = proto_get_u64(&rd);
	ck_assert_msg(proto_reader_done(&rd), "HELLO reply: bad body");
	ck_assert_int_eq(status, PROTO_OK);
	ck_assert_int_eq(version, PROTO_VERSION);
	ck_assert(cid > 0 && cid < (uint64_t)LONG_MAX);
	free(body);
	return (long)cid;
}
