/*
 * notify-listen.c - a stand-in for systemd's notification socket, used by
 * tests/system.sh to watch what mbxd tells systemd.
 *
 *   notify-listen [-t SECONDS] PATH
 *	Binds a datagram socket at PATH and prints every datagram received
 *	as one line, "MS PID FIELD...": MS is the time in milliseconds since
 *	the listener started, PID the sender's (from SCM_CREDENTIALS, the way
 *	systemd checks NotifyAccess=), and the datagram's newline-separated
 *	fields follow, separated by spaces.  Stdout is flushed after every
 *	line so that a shell can poll the file.  Exits 0 on SIGTERM or SIGINT,
 *	and by itself after SECONDS (default 60) so that it cannot outlive a
 *	test that forgot it.  Removes PATH on exit.
 *
 *   notify-listen --send PATH MESSAGE
 *	Sends MESSAGE as one datagram to PATH, as sd_notify() would.  The
 *	tests use it to put marks into the listener's timeline.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path)) {
		fprintf(stderr, "notify-listen: %s: path too long\n", path);
		return -1;
	}
	strcpy(sun->sun_path, path);
	return 0;
}

static int
send_one(const char *path, const char *msg)
{
	struct sockaddr_un sun;
	int fd;

	if (addr(path, &sun) < 0)
		return 2;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, msg, strlen(msg), 0,
	    (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "notify-listen: send to %s: %s\n", path,
		    strerror(errno));
		return 1;
	}
	close(fd);
	return 0;
}

/* Prints one datagram as a line; control characters become spaces. */
static void
print_one(long long ms, pid_t pid, char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)buf[i] < 0x20)
			buf[i] = ' ';
	while (len > 0 && buf[len - 1] == ' ')
		len--;
	printf("%lld %ld %.*s\n", ms, (long)pid, (int)len, buf);
	fflush(stdout);
}

static int
listen_loop(const char *path, int seconds)
{
	struct sockaddr_un sun;
	struct sigaction sa;
	long long start = now_ms(), end = start + (long long)seconds * 1000;
	int fd, one = 1;

	if (addr(path, &sun) < 0)
		return 2;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "notify-listen: %s: %s\n", path,
		    strerror(errno));
		return 1;
	}
	while (!stop && now_ms() < end) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		union {
			struct cmsghdr	hdr;
			char		buf[CMSG_SPACE(sizeof(struct ucred))];
		} ctl;
		char buf[4096];
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { 0 };
		struct cmsghdr *cm;
		pid_t pid = 0;
		ssize_t n;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = &ctl;
		mh.msg_controllen = sizeof(ctl);
		n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0)
			continue;
		for (cm = CMSG_FIRSTHDR(&mh); cm != NULL;
		    cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level == SOL_SOCKET &&
			    cm->cmsg_type == SCM_CREDENTIALS) {
				struct ucred uc;

				memcpy(&uc, CMSG_DATA(cm), sizeof(uc));
				pid = uc.pid;
			}
		}
		print_one(now_ms() - start, pid, buf, (size_t)n);
	}
	close(fd);
	unlink(path);
	return 0;
}

int
main(int argc, char **argv)
{
	int seconds = 60;

	if (argc == 4 && strcmp(argv[1], "--send") == 0)
		return send_one(argv[2], argv[3]);
	if (argc == 4 && strcmp(argv[1], "-t") == 0) {
		seconds = atoi(argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (argc != 2 || seconds <= 0) {
		fprintf(stderr, "usage: notify-listen [-t SECONDS] PATH\n"
		    "       notify-listen --send PATH MESSAGE\n");
		return 2;
	}
	return listen_loop(argv[1], seconds);
}
