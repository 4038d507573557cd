/*
 * notify.c - sd_notify without libsystemd.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify.h"

int
notify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;
	ssize_t n;
	int fd;

	if (path == NULL || path[0] == '\0')
		return 0;
	if ((path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof(sun.sun_path))
		return -EINVAL;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, path);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	/* An abstract address starts with a NUL byte, spelled '@'. */
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	else
		len++;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/*
	 * Never wait for the manager: a notify socket whose queue is full
	 * (net.unix.max_dgram_qlen is 10 here) would stop the whole daemon
	 * in sendto().  A state line it has not room for is dropped; the
	 * next status line says the same again.
	 */
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT,
	    (struct sockaddr *)&sun, len);
	close(fd);
	return n < 0 ? -errno : 0;
}
