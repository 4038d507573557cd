/*
 * msg.c - message allocation.  Header and payload share one allocation.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <unistd.h>

#include "memfd-layout.h"
#include "msg.h"
#include "proto.h"

struct msg *
msg_new(uint64_t id, const void *data, size_t len)
{
	struct msg *m;

	if (len > SIZE_MAX - sizeof(*m) || (m = malloc(sizeof(*m) + len)) == NULL)
		return NULL;
	memset(m, 0, sizeof(*m));
	m->id = id;
	m->fd = -1;
	m->len = len;
	if (len > 0)
		memcpy(m->data, data, len);
	return m;
}

struct msg *
msg_new_fd(uint64_t id, int fd, size_t len, bool shared)
{
	struct msg *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->id = id;
	m->fd = fd;
	m->shared = shared;
	m->len = len;
	return m;
}

int
msg_make_private(struct msg *m)
{
	const uint32_t state_free = PROTO_MEMFD_FREE;
	loff_t in = PROTO_MEMFD_PAYLOAD, out = PROTO_MEMFD_PAYLOAD;
	size_t left = m->len, total;
	int fd;

	/* Checked when the message was accepted; checked again, not wrapped. */
	if (!proto_memfd_len(m->len, &total))
		return -EINVAL;
	if ((fd = memfd_create("mbxd", MFD_CLOEXEC | MFD_ALLOW_SEALING)) < 0)
		return -errno;
	if (ftruncate(fd, (off_t)total) < 0)
		goto fail;
	/* The kernel copies page cache to page cache: nothing passes here. */
	while (left > 0) {
		ssize_t n = copy_file_range(m->fd, &in, fd, &out, left, 0);

		if (n == 0)
			errno = EIO;
		if (n <= 0)
			goto fail;
		left -= (size_t)n;
	}
	if (fcntl(fd, F_ADD_SEALS, PROTO_MEMFD_SEALS_SEALED) < 0)
		goto fail;
	/*
	 * The sender may reuse its buffer: nobody will read it now.  Should
	 * the write fail, the buffer only stays busy and the sender's pool
	 * makes another.
	 */
	if (pwrite(m->fd, &state_free, sizeof(state_free),
	    PROTO_MEMFD_STATE) < 0)
		errno = 0;
	close(m->fd);
	m->fd = fd;
	m->shared = false;
	return 0;
fail:
	{
		int err = errno != 0 ? errno : EIO;

		close(fd);
		return -err;
	}
}

struct msg *
msg_new_copy_memfd(uint64_t id, int fd, size_t len, bool shared, int *err)
{
	const uint32_t state_free = PROTO_MEMFD_FREE;
	struct msg *m = msg_new(id, NULL, 0);
	struct msg *grown;
	size_t got = 0;

	*err = -ENOMEM;
	if (m == NULL || len > SIZE_MAX - sizeof(*m) ||
	    (grown = realloc(m, sizeof(*m) + len)) == NULL) {
		free(m);
		return NULL;
	}
	m = grown;
	/* The sender's memory: read once into ours, then judged as ours. */
	while (got < len) {
		ssize_t n = pread(fd, m->data + got, len - got,
		    (off_t)(PROTO_MEMFD_PAYLOAD + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*err = n < 0 ? -errno : -EINVAL;
			free(m);
			return NULL;
		}
		got += (size_t)n;
	}
	m->len = len;
	/* A recycled buffer is free again: nobody reads it now. */
	if (shared && pwrite(fd, &state_free, sizeof(state_free),
	    PROTO_MEMFD_STATE) < 0)
		errno = 0;
	return m;
}

void
msg_free(struct msg *m)
{
	if (m == NULL)
		return;
	if (m->fd >= 0)
		close(m->fd);
	free(m->origin);
	free(m);
}
