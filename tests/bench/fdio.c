/*
 * fdio.c - the byte loops the hand-written transports of the benchmark
 * share (baseline.c and candidate.c): a write of everything, a read of
 * so many bytes, and one read into a buffered stream.  They are part of what is measured, so
 * both transports run the very same loops.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

int
fdio_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		/* Only a non-blocking socket (candidate.c's) says EAGAIN. */
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = { fd, POLLOUT, 0 };

			poll(&pfd, 1, -1);
			continue;
		}
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
fdio_read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
fdio_fill(int fd, uint8_t *buf, size_t cap, size_t *off, size_t *have)
{
	ssize_t n;

	if (*off > 0) {
		memmove(buf, buf + *off, *have - *off);
		*have -= *off;
		*off = 0;
	}
	do
		n = read(fd, buf + *have, cap - *have);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return -1;
	*have += (size_t)n;
	return 0;
}
