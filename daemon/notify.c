/*
 * notify.c - the service manager's protocol without libsystemd.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

bool
notify_available(void)
{
	const char *path = getenv("NOTIFY_SOCKET");

	return path != NULL && path[0] != '\0';
}

/* The manager's address; 0, 1 when there is none, or -EINVAL. */
static int
notify_addr(struct sockaddr_un *sun, socklen_t *len)
{
	const char *path = getenv("NOTIFY_SOCKET");

	if (path == NULL || path[0] == '\0')
		return 1;
	if ((path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof(sun->sun_path))
		return -EINVAL;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	strcpy(sun->sun_path, path);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    strlen(path));
	/* An abstract address starts with a NUL byte, spelled '@'. */
	if (path[0] == '@')
		sun->sun_path[0] = '\0';
	else
		(*len)++;
	return 0;
}

/*
 * One datagram with descriptors, waiting up to wait_ms for room: -EAGAIN
 * at once with 0, -ETIMEDOUT once it has waited.
 */
static int
notify_send_with_fds(const char *text, const int *fds, size_t n, int wait_ms)
{
	union {
		struct cmsghdr	 align;
		char		 buf[CMSG_SPACE(sizeof(int) * NOTIFY_MAX_FDS)];
	} cbuf;
	struct sockaddr_un sun;
	struct iovec iov = { (void *)(uintptr_t)text, strlen(text) };
	struct msghdr mh;
	socklen_t len;
	int fd, err;

	if (n > NOTIFY_MAX_FDS)
		return -EINVAL;
	if ((err = notify_addr(&sun, &len)) != 0)
		return err > 0 ? -ENOTCONN : err;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	memset(&mh, 0, sizeof(mh));
	mh.msg_name = &sun;
	mh.msg_namelen = len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (n > 0) {
		struct cmsghdr *cm;

		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
	}
	/*
	 * The manager's queue may be full (net.unix.max_dgram_qlen is 10
	 * here): what the store must hold is retried, a little at a time,
	 * never for ever.
	 */
	for (int waited = 0;; waited += 10) {
		if (sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0) {
			err = 0;
			break;
		}
		err = -errno;
		if ((err != -EAGAIN && err != -EINTR) || waited >= wait_ms) {
			if (err == -EAGAIN && wait_ms > 0)
				err = -ETIMEDOUT;
			break;
		}
		poll(NULL, 0, 10);
	}
	close(fd);
	return err;
}

int
notify_send(const char *state)
{
	/*
	 * Never wait for the manager: a notify socket whose queue is full
	 * would stop the whole daemon.  A state line it has not room for is
	 * dropped; the next status line says the same again.
	 */
	return notify_available() ? notify_send_with_fds(state, NULL, 0, 0) :
	    0;
}

int
notify_store_fds(const char *name, const int *fds, size_t n, int wait_ms)
{
	char text[64 + NOTIFY_NAME_MAX];

	if (snprintf(text, sizeof(text), "FDSTORE=1\nFDNAME=%s", name) >=
	    (int)sizeof(text))
		return -ENAMETOOLONG;
	return notify_send_with_fds(text, fds, n, wait_ms);
}

int
notify_remove_fds(const char *name)
{
	char text[64 + NOTIFY_NAME_MAX];

	if (snprintf(text, sizeof(text), "FDSTOREREMOVE=1\nFDNAME=%s",
	    name) >= (int)sizeof(text))
		return -ENAMETOOLONG;
	return notify_send_with_fds(text, NULL, 0, 1000);
}

size_t
notify_listen_fds(struct notify_fd *fds, size_t max)
{
	const char *pid = getenv("LISTEN_PID");
	const char *nfds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	long n = 0;

	if (pid != NULL && nfds != NULL &&
	    strtol(pid, NULL, 10) == (long)getpid())
		n = strtol(nfds, NULL, 10);
	if (n < 0 || n > 65536)
		n = 0;
	for (long i = 0; i < n; i++) {
		int fd = NOTIFY_FDS_START + (int)i;
		size_t l = 0;

		if ((size_t)i >= max) {
			close(fd);
			continue;
		}
		fds[i].fd = fd;
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
		/* Colon-separated, in the order of the descriptors. */
		if (names != NULL) {
			l = strcspn(names, ":");
			if (l > NOTIFY_NAME_MAX)
				l = NOTIFY_NAME_MAX;
			memcpy(fds[i].name, names, l);
			names += strcspn(names, ":");
			if (*names == ':')
				names++;
		}
		fds[i].name[l] = '\0';
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return (size_t)n < max ? (size_t)n : max;
}
