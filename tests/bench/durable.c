/*
 * durable.c - durable sends (issue 13) beside what one fdatasync() per
 * message costs on the same disk, in the same run: 64 B messages, one
 * mbx_send() per message into a durable mailbox that nobody receives
 * from (unbounded, so that the senders never wait for room), with 1 and
 * with 8 sender processes.  The group commit is what lets 8 senders go
 * faster than one sync each.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "mbx.h"

#define DUR_SIZE	64
#define DUR_SENDERS	8

/* Messages one process sent to name until the deadline, or -1. */
static long
send_until(const char *sock, const char *name, int64_t deadline)
{
	char payload[DUR_SIZE];
	mbx_t *c = mbx_open(sock);
	long n = 0;

	if (c == NULL)
		return -1;
	memset(payload, 'd', sizeof(payload));
	while (now_ns() < deadline) {
		if (mbx_send(c, name, payload, sizeof(payload), 0, -1) != 0) {
			mbx_close(c);
			return -1;
		}
		n++;
	}
	mbx_close(c);
	return n;
}

/* senders processes at once; their total per second, or -1. */
static double
senders_rate(const char *sock, const char *name, unsigned senders,
    double seconds)
{
	int fds[2];
	pid_t pids[DUR_SENDERS];
	int64_t start, deadline;
	long total = 0;
	bool failed = false;

	if (pipe(fds) < 0)
		return -1;
	start = now_ns() + 50 * 1000000LL;
	deadline = start + (int64_t)(seconds * 1e9);
	fflush(NULL);
	for (unsigned i = 0; i < senders; i++) {
		if ((pids[i] = fork()) == 0) {
			long n;

			close(fds[0]);
			while (now_ns() < start)
				;
			n = send_until(sock, name, deadline);
			_exit(write(fds[1], &n, sizeof(n)) == sizeof(n) ? 0 : 1);
		}
		if (pids[i] < 0) {
			failed = true;
			senders = i;
			break;
		}
	}
	close(fds[1]);
	for (unsigned i = 0; i < senders; i++) {
		long n;

		if (read(fds[0], &n, sizeof(n)) != sizeof(n) || n < 0)
			failed = true;
		else
			total += n;
	}
	close(fds[0]);
	for (unsigned i = 0; i < senders; i++)
		waitpid(pids[i], NULL, 0);
	return failed ? -1 : (double)total / seconds;
}

/* One 64 B write and one fdatasync() per message, in dir. */
static double
fsync_rate(const char *dir, double seconds)
{
	char path[256], payload[DUR_SIZE];
	int64_t deadline;
	long n = 0;
	off_t off = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/fsync.dat", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) < 0)
		return -1;
	memset(payload, 'f', sizeof(payload));
	deadline = now_ns() + (int64_t)(seconds * 1e9);
	while (now_ns() < deadline) {
		if (pwrite(fd, payload, sizeof(payload), off) !=
		    (ssize_t)sizeof(payload) || fdatasync(fd) < 0) {
			close(fd);
			unlink(path);
			return -1;
		}
		off += (off_t)sizeof(payload);
		n++;
	}
	close(fd);
	unlink(path);
	return (double)n / seconds;
}

static const char *
fs_name(long type)
{
	switch (type) {
	case 0xef53:		return "ext4";
	case 0x58465342:	return "xfs";
	case 0x9123683e:	return "btrfs";
	case 0x01021994:	return "tmpfs (no real sync)";
	default:		return "another file system";
	}
}

int
durable_run(const char *mbxd, double seconds, struct durfig *f)
{
	struct daemon d;
	struct mbx_attr a;
	struct statfs sfs;
	mbx_t *admin = NULL;
	int ret = -1;

	memset(f, 0, sizeof(*f));
	f->secs = seconds;
	if (daemon_start(&d, mbxd) < 0) {
		snprintf(f->err, sizeof(f->err), "mbxd did not start");
		return -1;
	}
	if (statfs(d.dir, &sfs) == 0)
		snprintf(f->fs, sizeof(f->fs), "%s", fs_name((long)sfs.f_type));
	if ((f->fsync_rate = fsync_rate(d.dir, seconds)) <= 0) {
		snprintf(f->err, sizeof(f->err), "fdatasync in %s: %s", d.dir,
		    strerror(errno));
		goto out;
	}
	if ((admin = mbx_open(d.sock)) == NULL)
		goto fail;
	mbx_attr_init(&a);
	a.capacity = MBX_UNBOUNDED;
	a.durable = 1;
	if (mbx_create(admin, "dur.1", &a) < 0 ||
	    mbx_create(admin, "dur.8", &a) < 0)
		goto fail;
	if ((f->one_rate = senders_rate(d.sock, "dur.1", 1, seconds)) <= 0 ||
	    (f->eight_rate = senders_rate(d.sock, "dur.8", DUR_SENDERS,
	    seconds)) <= 0) {
		snprintf(f->err, sizeof(f->err), "a durable sender failed");
		goto out;
	}
	f->ok = true;
	ret = 0;
	goto out;
fail:
	snprintf(f->err, sizeof(f->err), "mbx: %s", strerror(errno));
out:
	if (admin != NULL)
		mbx_close(admin);
	daemon_stop(&d);
	return ret;
}
