/*
 * rings.c - the memfds of one connection's channel (rings.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "rings.h"

/* A memfd of len bytes, mapped with prot, then sealed with seals. */
static int
rings_memfd(const char *name, size_t len, int prot, int seals, void **map)
{
	int fd, err;

	if ((fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)) < 0)
		return -errno;
	if (ftruncate(fd, (off_t)len) < 0)
		goto fail;
	/*
	 * Map before sealing: F_SEAL_FUTURE_WRITE refuses new writable
	 * mappings, mbxd's own included, and leaves this one be.
	 */
	*map = mmap(NULL, len, prot, MAP_SHARED, fd, 0);
	if (*map == MAP_FAILED)
		goto fail;
	if (fcntl(fd, F_ADD_SEALS, seals) < 0) {
		err = -errno;
		munmap(*map, len);
		*map = NULL;
		close(fd);
		return err;
	}
	return fd;
fail:
	err = -errno;
	*map = NULL;
	close(fd);
	return err;
}

void
rings_init(struct rings *r)
{
	r->client = NULL;
	r->daemon = NULL;
	r->client_fd = r->daemon_fd = r->doorbell = -1;
}

int
rings_new(struct rings *r)
{
	void *client, *daemon;
	int fd;

	rings_init(r);
	if ((r->doorbell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return -errno;
	if ((fd = rings_memfd("mbx-client", CHANNEL_CLIENT_SIZE, PROT_READ,
	    RINGS_SEALS, &client)) < 0) {
		rings_free(r);
		return fd;
	}
	r->client_fd = fd;
	r->client = client;
	if ((fd = rings_memfd("mbx-daemon", CHANNEL_DAEMON_SIZE,
	    PROT_READ | PROT_WRITE, RINGS_SEALS_DAEMON, &daemon)) < 0) {
		rings_free(r);
		return fd;
	}
	r->daemon_fd = fd;
	r->daemon = daemon;
	return 0;
}

void
rings_free(struct rings *r)
{
	if (r->client != NULL)
		munmap((void *)(uintptr_t)r->client, CHANNEL_CLIENT_SIZE);
	if (r->daemon != NULL)
		munmap(r->daemon, CHANNEL_DAEMON_SIZE);
	if (r->client_fd >= 0)
		close(r->client_fd);
	if (r->daemon_fd >= 0)
		close(r->daemon_fd);
	if (r->doorbell >= 0)
		close(r->doorbell);
	r->client = NULL;
	r->daemon = NULL;
	r->client_fd = r->daemon_fd = r->doorbell = -1;
}

bool
rings_doorbell_drain(struct rings *r)
{
	eventfd_t v;

	return eventfd_read(r->doorbell, &v) == 0;
}
