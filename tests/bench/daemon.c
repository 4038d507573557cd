/*
 * daemon.c - a private mbxd for the benchmark: its own mkdtemp()
 * directory, a configuration that lifts the limits the workloads would
 * hit, and readiness observed as the test harness does it: the "READY=1"
 * datagram on a NOTIFY_SOCKET of ours, never a guessed sleep.
 *
 * The limits raised (see mbxd.json(5)): memory (64 MiB messages queue
 * several deep), message size, connections (10 000 held at once),
 * mailboxes per uid (100 000 idle ones).
 */
#include <errno.h>
#include <ftw.h>
#include <fcntl.h>
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
#include <unistd.h>

#include "bench.h"

#define READY_MS	10000
#define STOP_MS		10000

static const char config_text[] =
	"{\n"
	"  \"limits\": {\n"
	"    \"max_memory\": \"4G\",\n"
	"    \"max_bytes_per_uid\": \"4G\",\n"
	"    \"max_msg\": \"128M\",\n"
	"    \"max_connections\": 40000,\n"
	"    \"max_connections_per_uid\": 40000,\n"
	"    \"max_mailboxes_per_uid\": 250000,\n"
	"    \"max_pending_per_connection\": 1024\n"
	"  }\n"
	"}\n";

static void
path_in(char *out, size_t len, const struct daemon *d, const char *name)
{
	snprintf(out, len, "%s/%s", d->dir, name);
}

static int
remove_entry(const char *path, const struct stat *st, int type,
    struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	(void)remove(path);
	return 0;
}

static void
daemon_remove_dir(struct daemon *d)
{
	static const char *const names[] = { "mbxd.sock", "notify",
	    "mbxd.json", "mbxd.log" };
	char p[160];

	if (d->dir[0] == '\0')
		return;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		path_in(p, sizeof(p), d, names[i]);
		unlink(p);
	}
	/* Durable mailboxes' logs, when a workload made some. */
	path_in(p, sizeof(p), d, "state");
	if (access(p, F_OK) == 0)
		nftw(p, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
	rmdir(d->dir);
	d->dir[0] = '\0';
}

/* Copies mbxd's log to our stderr: why it did not start. */
static void
daemon_dump_log(const struct daemon *d)
{
	char buf[4096];
	size_t n;
	FILE *f = fopen(d->log, "re");

	if (f == NULL)
		return;
	fprintf(stderr, "---- mbxd log (%s) ----\n", d->log);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stderr);
	fprintf(stderr, "---- end of mbxd log ----\n");
	fclose(f);
}

static int
write_config(const char *path)
{
	FILE *f = fopen(path, "we");

	if (f == NULL)
		return -1;
	fputs(config_text, f);
	return fclose(f);
}

/* True when a notify datagram holds the line READY=1. */
static bool
ready_line(const char *msg, size_t len)
{
	const char *p = msg, *end = msg + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = (size_t)((nl ? nl : end) - p);

		if (l == 7 && memcmp(p, "READY=1", 7) == 0)
			return true;
		p += l + 1;
	}
	return false;
}

static pid_t
daemon_spawn(const struct daemon *d, const char *mbxd, const char *conf,
    const char *notify)
{
	pid_t parent = getpid(), pid;
	int logfd;

	logfd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (logfd < 0)
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid != 0) {
		close(logfd);
		return pid;
	}
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(127);
	{
		int nullfd = open("/dev/null", O_RDONLY);

		if (nullfd < 0 || dup2(nullfd, 0) < 0 || dup2(logfd, 1) < 0 ||
		    dup2(logfd, 2) < 0)
			_exit(127);
	}
	close_range(3, ~0U, 0);
	signal(SIGPIPE, SIG_DFL);
	setenv("NOTIFY_SOCKET", notify, 1);
	{
		char state[160];

		path_in(state, sizeof(state), d, "state");
		execl(mbxd, mbxd, "-c", conf, "-s", d->sock, "--state-dir",
		    state, (char *)NULL);
	}
	dprintf(2, "mbx-bench: exec %s: %s\n", mbxd, strerror(errno));
	_exit(127);
}

int
daemon_start(struct daemon *d, const char *mbxd)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *tmp = getenv("TMPDIR");
	char conf[160], notify[160];
	int64_t deadline;
	int nfd, st;

	memset(d, 0, sizeof(*d));
	d->pid = -1;
	if (tmp == NULL || *tmp == '\0' || strlen(tmp) > 40)
		tmp = "/tmp";
	snprintf(d->dir, sizeof(d->dir), "%s/mbx-bench.XXXXXX", tmp);
	if (mkdtemp(d->dir) == NULL) {
		fprintf(stderr, "mbx-bench: mkdtemp %s: %s\n", d->dir,
		    strerror(errno));
		d->dir[0] = '\0';
		return -1;
	}
	/* The receiver of another uid (P_MBX_USERS) must reach the socket. */
	if (geteuid() == 0 && chmod(d->dir, 0711) < 0) {
		fprintf(stderr, "mbx-bench: chmod %s: %s\n", d->dir,
		    strerror(errno));
		daemon_remove_dir(d);
		return -1;
	}
	path_in(d->sock, sizeof(d->sock), d, "mbxd.sock");
	path_in(d->log, sizeof(d->log), d, "mbxd.log");
	path_in(conf, sizeof(conf), d, "mbxd.json");
	path_in(notify, sizeof(notify), d, "notify");
	if (write_config(conf) < 0) {
		fprintf(stderr, "mbx-bench: %s: %s\n", conf, strerror(errno));
		daemon_remove_dir(d);
		return -1;
	}
	nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (nfd < 0 || snprintf(sun.sun_path, sizeof(sun.sun_path), "%s",
	    notify) >= (int)sizeof(sun.sun_path) ||
	    bind(nfd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "mbx-bench: notify socket %s: %s\n", notify,
		    strerror(errno));
		if (nfd >= 0)
			close(nfd);
		daemon_remove_dir(d);
		return -1;
	}
	d->pid = daemon_spawn(d, mbxd, conf, notify);
	if (d->pid < 0) {
		fprintf(stderr, "mbx-bench: fork: %s\n", strerror(errno));
		close(nfd);
		daemon_remove_dir(d);
		return -1;
	}

	deadline = now_ns() + (int64_t)READY_MS * 1000000;
	while (now_ns() < deadline) {
		struct pollfd pfd = { .fd = nfd, .events = POLLIN };
		char msg[4096];
		ssize_t r;

		if (poll(&pfd, 1, 50) > 0) {
			r = recv(nfd, msg, sizeof(msg), MSG_DONTWAIT);
			if (r > 0 && ready_line(msg, (size_t)r)) {
				close(nfd);
				return 0;
			}
			continue;
		}
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			fprintf(stderr, "mbx-bench: mbxd exited before "
			    "READY=1 (status %#x)\n", st);
			d->pid = -1;
			break;
		}
	}
	if (d->pid > 0)
		fprintf(stderr, "mbx-bench: no READY=1 from mbxd within "
		    "%d ms\n", READY_MS);
	close(nfd);
	daemon_dump_log(d);
	daemon_stop(d);
	return -1;
}

void
daemon_stop(struct daemon *d)
{
	int64_t deadline = now_ns() + (int64_t)STOP_MS * 1000000;
	int st;

	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		while (waitpid(d->pid, &st, WNOHANG) != d->pid) {
			if (now_ns() > deadline) {
				fprintf(stderr, "mbx-bench: mbxd ignored "
				    "SIGTERM for %d ms: killed\n", STOP_MS);
				kill(d->pid, SIGKILL);
				waitpid(d->pid, &st, 0);
				break;
			}
			poll(NULL, 0, 5);
		}
		d->pid = -1;
	}
	daemon_remove_dir(d);
}
