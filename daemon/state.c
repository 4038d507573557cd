/*
 * state.c - the restart state's memfd (see state.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state.h"

/* Written out past this: a few records, or one large message. */
#define STATE_FLUSH_AT	(1u << 20)
#define STATE_SEALS	(F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | \
	F_SEAL_WRITE)

int
state_out_open(struct state_out *so)
{
	proto_writer_init(&so->w);
	so->size = 0;
	so->err = 0;
	so->fd = memfd_create("mbxd-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	return so->fd < 0 ? -errno : 0;
}

int
state_out_flush(struct state_out *so, bool all)
{
	size_t off = 0;

	if (so->err == 0 && proto_writer_failed(&so->w))
		so->err = -ENOMEM;
	if (so->err != 0 || (!all && so->w.len < STATE_FLUSH_AT))
		return so->err;
	while (off < so->w.len) {
		ssize_t n = write(so->fd, so->w.buf + off, so->w.len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			so->err = n < 0 ? -errno : -EIO;
			return so->err;
		}
		off += (size_t)n;
		so->size += (uint64_t)n;
	}
	proto_writer_consume(&so->w, so->w.len);
	return 0;
}

int
state_out_seal(struct state_out *so)
{
	int err, fd;

	if ((err = state_out_flush(so, true)) < 0)
		return err;
	if (fcntl(so->fd, F_ADD_SEALS, STATE_SEALS) < 0)
		return -errno;
	fd = so->fd;
	so->fd = -1;
	return fd;
}

void
state_out_free(struct state_out *so)
{
	if (so->fd >= 0)
		close(so->fd);
	so->fd = -1;
	proto_writer_free(&so->w);
}

int
state_in_open(struct state_in *si, int fd, const char **why)
{
	struct stat st;
	int seals;
	void *p;

	si->buf = NULL;
	si->size = 0;
	/*
	 * Sealed, so that whoever else holds it cannot change it under the
	 * reader: what is checked is what is read.
	 */
	if ((seals = fcntl(fd, F_GET_SEALS)) < 0 ||
	    (seals & (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)) !=
	    (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW)) {
		*why = "not a sealed memfd";
		return -EINVAL;
	}
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size <= 0) {
		*why = "empty";
		return -EINVAL;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	si->buf = p;
	si->size = (uint64_t)st.st_size;
	return 0;
}

void
state_in_close(struct state_in *si)
{
	if (si->buf != NULL)
		munmap((void *)(uintptr_t)si->buf, (size_t)si->size);
	si->buf = NULL;
	si->size = 0;
}
