/*
 * mbxd-proc.c - /proc figures of a process, and a private mbxd for the
 * programs that run without Check (see mbxd-proc.h).
 *
 * Invariants: every wait is bounded by a deadline and a count of
 * iterations; readiness is the daemon's READY=1 datagram, never a guessed
 * delay; the daemon stays in the caller's process group and dies with it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
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

#include "mbxd-proc.h"

#define MAX_ARGS	48

int64_t
proc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Reads /proc/PID/name whole into buf (NUL-terminated): its length, or -1
 * with errno (EFBIG when it does not fit).  No message: proc_state() tells
 * a process gone from a failure by errno.
 */
static ssize_t
proc_read(pid_t pid, const char *name, char *buf, size_t len)
{
	char path[64];
	size_t off = 0;
	int fd, e;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	/* /proc files come in pieces; one read() may return part of one. */
	for (int i = 0; i < 64; i++) {
		ssize_t n = read(fd, buf + off, len - 1 - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			e = n < 0 ? errno : 0;
			close(fd);
			if (e != 0) {
				errno = e;
				return -1;
			}
			buf[off] = '\0';
			return (ssize_t)off;
		}
		off += (size_t)n;
		if (off == len - 1)
			break;
	}
	close(fd);
	errno = EFBIG;
	return -1;
}

/* A failed reading of /proc/PID/what: the message, then -1. */
static int
proc_fail(pid_t pid, const char *what, const char *why)
{
	fprintf(stderr, "mbxd-proc: /proc/%d/%s: %s\n", (int)pid, what,
	    why != NULL ? why : strerror(errno));
	return -1;
}

long
proc_rss_kib(pid_t pid)
{
	char buf[8192], *p, *end;
	long kib;

	if (proc_read(pid, "status", buf, sizeof(buf)) < 0)
		return proc_fail(pid, "status", NULL);
	if ((p = strstr(buf, "\nVmRSS:")) == NULL)
		return proc_fail(pid, "status", "no VmRSS line");
	errno = 0;
	kib = strtol(p + 7, &end, 10);
	if (errno != 0 || end == p + 7 || kib < 0 ||
	    strncmp(end, " kB", 3) != 0)
		return proc_fail(pid, "status", "VmRSS is not a size in kB");
	return kib;
}

/*
 * The descriptor numbers of pid into used (at most cap), sorted: their
 * count, or -1 (with a message).
 */
static int
proc_fds(pid_t pid, int *used, int cap)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((d = opendir(path)) == NULL)
		return proc_fail(pid, "fd", NULL);
	for (;;) {
		errno = 0;
		if ((e = readdir(d)) == NULL)
			break;
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			closedir(d);
			return proc_fail(pid, "fd", "more descriptors than "
			    "this reader counts");
		}
		used[n++] = atoi(e->d_name);
	}
	if (errno != 0) {
		closedir(d);
		return proc_fail(pid, "fd", NULL);
	}
	closedir(d);
	return n;
}

static int
cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

#define PROC_FDS_MAX	65536

int
proc_fd_count(pid_t pid)
{
	int *used = malloc(PROC_FDS_MAX * sizeof(*used)), n;

	if (used == NULL)
		return proc_fail(pid, "fd", NULL);
	n = proc_fds(pid, used, PROC_FDS_MAX);
	free(used);
	return n;
}

long
proc_fd_limit_for(pid_t pid, int room)
{
	int *used = malloc(PROC_FDS_MAX * sizeof(*used)), n, next = 0;
	long fd = 0;

	if (used == NULL)
		return proc_fail(pid, "fd", NULL);
	if (room < 0 || (n = proc_fds(pid, used, PROC_FDS_MAX)) < 0) {
		free(used);
		return -1;
	}
	qsort(used, (size_t)n, sizeof(used[0]), cmp_int);
	/* Walk the numbers from 0, skipping the used ones, to the room-th
	 * free one: the limit is one above it. */
	for (int freed = 0; freed < room; fd++) {
		if (next < n && used[next] == fd)
			next++;
		else
			freed++;
	}
	free(used);
	return fd;
}

/*
 * The fields of /proc/PID/stat after "(comm) ": state is the first.
 * NULL with errno ESRCH when pid is gone, another errno on a failure.
 */
static char *
proc_stat_fields(pid_t pid, char *buf, size_t len)
{
	char *p;

	if (proc_read(pid, "stat", buf, len) < 0) {
		if (errno == ENOENT)
			errno = ESRCH;
		return NULL;
	}
	/* comm may hold anything, spaces and parentheses included. */
	p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ' || p[2] == '\0') {
		errno = EPROTO;
		return NULL;
	}
	return p + 2;
}

char
proc_state(pid_t pid)
{
	char buf[1024], *p = proc_stat_fields(pid, buf, sizeof(buf));

	if (p != NULL)
		return p[0];
	if (errno == ESRCH)
		return 0;
	proc_fail(pid, "stat", NULL);
	return PROC_STATE_UNKNOWN;
}

long
proc_cpu_ms(pid_t pid)
{
	char buf[1024], *p = proc_stat_fields(pid, buf, sizeof(buf));
	unsigned long utime, stime;
	long tck = sysconf(_SC_CLK_TCK);

	if (p == NULL)
		return proc_fail(pid, "stat", NULL);
	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt
	 * cmajflt utime stime: fields 3 to 15 of stat(5). */
	if (tck <= 0 || sscanf(p, "%*c %*d %*d %*d %*d %*d %*u "
	    "%*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
		return proc_fail(pid, "stat", "no utime and stime fields");
	return (long)((utime + stime) * 1000 / (unsigned long)tck);
}

/*
 * The private daemon
 */

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

static int
write_file(const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t w;

	if (fd < 0)
		return -1;
	w = write(fd, text, len);
	close(fd);
	return w == (ssize_t)len ? 0 : -1;
}

/* Waits (at most timeout_ms) for pid to exit: true and *st once it has. */
static bool
wait_exit(pid_t pid, int timeout_ms, int *st)
{
	int64_t deadline = proc_now_ms() + timeout_ms;

	for (int i = 0; i < timeout_ms + 100; i++) {
		pid_t r = waitpid(pid, st, WNOHANG);

		if (r == pid || (r < 0 && errno != EINTR))
			return true;
		if (proc_now_ms() >= deadline)
			return false;
		poll(NULL, 0, i < 10 ? 1 : 10);
	}
	return false;
}

bool
proc_notify_has(const char *msg, size_t len, const char *line)
{
	const char *p = msg, *end = msg + len;
	size_t want = strlen(line);

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = (size_t)((nl != NULL ? nl : end) - p);

		if (l == want && memcmp(p, line, l) == 0)
			return true;
		p += l + 1;
	}
	return false;
}

int
mbxd_proc_start(struct mbxd_proc *d, const char *mbxd, const char *wrapper,
    const char *config, int wait_ms)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *tmp = getenv("TMPDIR");
	char cfg[MBXD_PROC_PATH_MAX], notify[MBXD_PROC_PATH_MAX];
	char var[MBXD_PROC_PATH_MAX + 16], wbuf[512];
	char state[MBXD_PROC_PATH_MAX];
	const char *argv[MAX_ARGS];
	size_t n = 0;
	int64_t deadline;
	int nfd = -1, logfd = -1;
	pid_t parent = getpid();

	memset(d, 0, sizeof(*d));
	d->pid = -1;
	if (tmp == NULL || *tmp == '\0' || strlen(tmp) > 30)
		tmp = "/tmp";
	snprintf(d->dir, sizeof(d->dir), "%s/mbxd-proc.XXXXXX", tmp);
	if (mkdtemp(d->dir) == NULL) {
		fprintf(stderr, "mkdtemp %s: %s\n", d->dir, strerror(errno));
		d->dir[0] = '\0';
		return -1;
	}
	snprintf(d->sock, sizeof(d->sock), "%s/mbxd.sock", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/mbxd.log", d->dir);
	snprintf(cfg, sizeof(cfg), "%s/mbxd.json", d->dir);
	snprintf(notify, sizeof(notify), "%s/notify", d->dir);
	snprintf(state, sizeof(state), "%s/state", d->dir);
	if (write_file(cfg, config != NULL ? config : "{}\n") < 0) {
		fprintf(stderr, "%s: %s\n", cfg, strerror(errno));
		return -1;
	}
	if (wrapper != NULL && *wrapper != '\0') {
		char *save = NULL, *tok;

		snprintf(wbuf, sizeof(wbuf), "%s", wrapper);
		for (tok = strtok_r(wbuf, " \t", &save); tok != NULL &&
		    n < MAX_ARGS / 2; tok = strtok_r(NULL, " \t", &save))
			argv[n++] = tok;
	}
	argv[n++] = mbxd;
	argv[n++] = "-s";
	argv[n++] = d->sock;
	argv[n++] = "-c";
	argv[n++] = cfg;
	/* Durable logs, if a run makes any, go with the run's directory. */
	argv[n++] = "--state-dir";
	argv[n++] = state;
	argv[n] = NULL;

	nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", notify);
	if (nfd < 0 || bind(nfd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "notify socket %s: %s\n", notify,
		    strerror(errno));
		goto fail;
	}
	logfd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (logfd < 0) {
		fprintf(stderr, "%s: %s\n", d->log, strerror(errno));
		goto fail;
	}
	snprintf(var, sizeof(var), "NOTIFY_SOCKET=%s", notify);
	fflush(NULL);
	d->pid = fork();
	if (d->pid < 0) {
		fprintf(stderr, "fork: %s\n", strerror(errno));
		goto fail;
	}
	if (d->pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		if (null < 0 || dup2(null, 0) < 0 || dup2(logfd, 1) < 0 ||
		    dup2(logfd, 2) < 0)
			_exit(127);
		close_range(3, ~0U, 0);
		putenv(var);
		execvp(argv[0], (char *const *)(uintptr_t)argv);
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(logfd);
	logfd = -1;

	deadline = proc_now_ms() + wait_ms;
	for (int i = 0; i < wait_ms / 10 + 100; i++) {
		struct pollfd pfd = { .fd = nfd, .events = POLLIN };
		int64_t left = deadline - proc_now_ms();
		int st;

		if (left <= 0)
			break;
		if (poll(&pfd, 1, left < 100 ? (int)left : 100) > 0) {
			char msg[1024];
			ssize_t r = recv(nfd, msg, sizeof(msg), MSG_DONTWAIT);

			if (r > 0 && proc_notify_has(msg, (size_t)r,
			    "READY=1")) {
				close(nfd);
				return 0;
			}
			continue;
		}
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			fprintf(stderr, "mbxd exited before READY=1 (status "
			    "%#x); its log is %s\n", st, d->log);
			d->pid = -1;
			goto fail;
		}
	}
	fprintf(stderr, "mbxd sent no READY=1 within %d ms\n", wait_ms);
fail:
	if (nfd >= 0)
		close(nfd);
	if (logfd >= 0)
		close(logfd);
	if (d->pid > 0) {
		int st;

		kill(d->pid, SIGKILL);
		wait_exit(d->pid, 5000, &st);
		d->pid = -1;
	}
	return -1;
}

int
mbxd_proc_stop(struct mbxd_proc *d, int sig, int wait_ms)
{
	int st = -1;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, sig);
	if (!wait_exit(d->pid, wait_ms, &st)) {
		kill(d->pid, SIGKILL);
		wait_exit(d->pid, 5000, &st);
		st = -1;
	}
	d->pid = -1;
	return st;
}

bool
mbxd_proc_alive(struct mbxd_proc *d)
{
	int st;

	if (d->pid <= 0)
		return false;
	if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
		fprintf(stderr, "mbxd exited: status %#x\n", st);
		d->pid = -1;
		return false;
	}
	return true;
}

/* True when a log line is a sanitizer's or valgrind's report. */
static bool
report_line(const char *line)
{
	static const char *const marks[] = {
		"ERROR: AddressSanitizer",
		"WARNING: AddressSanitizer",
		"ERROR: LeakSanitizer",
		"runtime error:",
		"Invalid read",
		"Invalid write",
		"Invalid free",
		"uninitialised",
		"definitely lost",
	};

	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
		if (strstr(line, marks[i]) != NULL)
			return true;
	return false;
}

int
mbxd_proc_log_reports(const struct mbxd_proc *d)
{
	char line[1024];
	FILE *f = fopen(d->log, "re");
	int n = 0;

	if (f == NULL)
		return 0;
	for (long i = 0; i < 10000000 && fgets(line, sizeof(line), f) != NULL;
	    i++) {
		if (!report_line(line))
			continue;
		if (n++ < 20)
			fprintf(stderr, "mbxd log: %s", line);
	}
	fclose(f);
	return n;
}

void
mbxd_proc_cleanup(struct mbxd_proc *d)
{
	if (d->pid > 0)
		mbxd_proc_stop(d, SIGKILL, 5000);
	if (d->dir[0] != '\0')
		nftw(d->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	d->dir[0] = '\0';
}
