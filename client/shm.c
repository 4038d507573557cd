/*
 * shm.c - memfd message buffers: the sender's pool, the receiver's
 * mapping cache, and the message objects of the zero-copy calls (see
 * shm.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memfd-layout.h"
#include "shm.h"

#define HDR	PROTO_SHARED_HEADER

/* The state word at the start of every buffer's header page. */
static _Atomic uint32_t *
shm_state(void *map)
{
	return (_Atomic uint32_t *)map;
}

void
shm_init(struct shm *s)
{
	memset(s, 0, sizeof(*s));
}

void
shm_deinit(struct shm *s)
{
	for (size_t i = 0; i < s->npool; i++) {
		munmap(s->pool[i]->map, HDR + s->pool[i]->cap);
		close(s->pool[i]->fd);
		free(s->pool[i]);
	}
	for (size_t i = 0; i < s->ncache; i++)
		munmap(s->cache[i].map, s->cache[i].map_len);
	shm_init(s);
}

/* Rounds a payload size up to its buffer class: fewer, reusable sizes. */
static size_t
shm_class(size_t len)
{
	size_t cap = 64 * 1024;

	while (cap < len && cap < SIZE_MAX / 2)
		cap *= 2;
	return cap < len ? len : cap;
}

/*
 * A fresh memfd of HDR + cap bytes, mapped read-write.  ENOMEM for a cap
 * no memfd can hold (HDR + cap would wrap).
 */
static int
shm_create(size_t cap, int *fd, void **map)
{
	size_t total;

	if (!proto_memfd_len(cap, &total)) {
		errno = ENOMEM;
		return -1;
	}
	*fd = memfd_create("mbx", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (*fd < 0)
		return -1;
	/* Its size is fixed from now on, so no mapping can ever fault. */
	if (ftruncate(*fd, (off_t)total) < 0 ||
	    fcntl(*fd, F_ADD_SEALS, PROTO_MEMFD_SEALS_SIZE) < 0) {
		close(*fd);
		return -1;
	}
	*map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	if (*map == MAP_FAILED) {
		close(*fd);
		return -1;
	}
	return 0;
}

/* A free pooled buffer with room for len, or a new one while room. */
static struct shm_buf *
shm_pool_get(struct shm *s, size_t len)
{
	size_t cap = shm_class(len);
	struct shm_buf *b;

	for (size_t i = 0; i < s->npool; i++) {
		b = s->pool[i];
		if (!b->lent && b->cap == cap && atomic_load_explicit(
		    shm_state(b->map), memory_order_acquire) == SHM_FREE)
			return b;
	}
	if (s->npool == SHM_POOL_MAX || (b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	if (shm_create(cap, &b->fd, &b->map) < 0) {
		free(b);
		return NULL;
	}
	b->cap = cap;
	s->pool[s->npool++] = b;
	return b;
}

struct mbx_msg *
shm_alloc(struct shm *s, size_t len)
{
	struct mbx_msg *m = calloc(1, sizeof(*m));
	struct shm_buf *b;

	if (m == NULL)
		return NULL;
	m->len = len;
	b = shm_pool_get(s, len);
	if (b != NULL) {
		b->lent = true;
		m->pooled = b;
		m->fd = b->fd;
		m->map = b->map;
		m->map_len = HDR + b->cap;
		/*
		 * A recycled buffer keeps its last payload, one of this
		 * handle's own, as malloc() would: clearing 1 MiB that the
		 * caller is about to fill doubled the cost of a send.
		 */
	} else {
		/* The pool is full of buffers still out: a one-off. */
		m->map_len = HDR + len;
		if (shm_create(len, &m->fd, &m->map) < 0) {
			free(m);
			return NULL;
		}
	}
	m->data = (unsigned char *)m->map + HDR;
	return m;
}

/*
 * m's payload moves to a fresh one-off buffer, to be sealed there.  The
 * old one stays pooled (a pooled one) or goes (a one-off).
 */
static int
shm_move_to_fresh(struct mbx_msg *m)
{
	void *map;
	int fd;

	if (shm_create(m->len, &fd, &map) < 0)
		return -1;
	memcpy((unsigned char *)map + HDR, m->data, m->len);
	if (m->pooled != NULL) {
		m->pooled->lent = false;
		m->pooled = NULL;
	} else {
		munmap(m->map, m->map_len);
		close(m->fd);
	}
	m->fd = fd;
	m->map = map;
	m->map_len = HDR + m->len;
	m->data = (unsigned char *)map + HDR;
	return 0;
}

/*
 * A pooled buffer about to be sealed leaves the pool for good.  One that
 * went out shared before may still be mapped writable by a receiver,
 * which a write seal refuses, and the daemon freezes the seals of every
 * shared buffer it is offered: its payload moves to a fresh buffer then,
 * and a pooled one stays pooled.
 */
static int
shm_take_out_of_pool(struct shm *s, struct mbx_msg *m)
{
	struct shm_buf *b = m->pooled;

	if (m->shared_once || (b != NULL && b->shared_once))
		return shm_move_to_fresh(m);
	if (b == NULL)
		return 0;
	m->pooled = NULL;
	for (size_t i = 0; i < s->npool; i++)
		if (s->pool[i] == b)
			s->pool[i] = s->pool[--s->npool];
	free(b);
	return 0;
}

int
shm_ready(struct shm *s, struct mbx_msg *m, bool shared)
{
	if (m->received || m->fd < 0) {
		errno = EINVAL;
		return -1;
	}
	if (shared) {
		if (m->sealed) {
			errno = EINVAL;
			return -1;
		}
		atomic_store_explicit(shm_state(m->map), SHM_BUSY,
		    memory_order_release);
		m->shared_once = true;
		if (m->pooled != NULL)
			m->pooled->shared_once = true;
		return m->fd;
	}
	if (m->sealed)
		return m->fd;
	if (shm_take_out_of_pool(s, m) < 0)
		return -1;
	/*
	 * A write seal needs every shared mapping that could write gone,
	 * ours too, even read-only ones of this read-write descriptor: map
	 * it again only once sealed.
	 */
	if (munmap(m->map, m->map_len) < 0)
		return -1;
	m->map = NULL;
	if (fcntl(m->fd, F_ADD_SEALS, PROTO_MEMFD_SEALS_SEALED) < 0)
		return -1;
	m->map = mmap(NULL, m->map_len, PROT_READ, MAP_SHARED, m->fd, 0);
	if (m->map == MAP_FAILED) {
		m->map = NULL;
		return -1;
	}
	m->data = (unsigned char *)m->map + HDR;
	m->sealed = true;
	return m->fd;
}

void
shm_sent(struct shm *s, struct mbx_msg *m)
{
	(void)s;
	if (m->pooled != NULL) {
		/* The pool keeps the buffer until the receiver frees it. */
		m->pooled->lent = false;
	} else {
		munmap(m->map, m->map_len);
		close(m->fd);
	}
	free(m);
}

void
shm_unsent(struct mbx_msg *m, bool shared)
{
	if (shared)
		atomic_store_explicit(shm_state(m->map), SHM_FREE,
		    memory_order_release);
}

/* A cached mapping of the shared buffer fd, mapped once per buffer. */
static struct shm_map *
shm_cache_get(struct shm *s, int fd, size_t need)
{
	struct shm_map *e = NULL;
	struct stat st;
	void *map;

	if (fstat(fd, &st) < 0)
		return NULL;
	if ((uint64_t)st.st_size < need) {
		errno = EPROTO;
		return NULL;
	}
	for (size_t i = 0; i < s->ncache; i++)
		if (s->cache[i].dev == st.st_dev && s->cache[i].ino == st.st_ino &&
		    s->cache[i].map_len == (size_t)st.st_size) {
			s->cache[i].used = ++s->clock;
			return &s->cache[i];
		}
	/* Room: a new slot, or the least recently used idle one. */
	if (s->ncache < SHM_CACHE_MAX) {
		e = &s->cache[s->ncache++];
	} else {
		for (size_t i = 0; i < s->ncache; i++)
			if (s->cache[i].refs == 0 &&
			    (e == NULL || s->cache[i].used < e->used))
				e = &s->cache[i];
		if (e == NULL) {
			errno = ENOMEM;
			return NULL;
		}
		munmap(e->map, e->map_len);
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		*e = s->cache[--s->ncache];
		return NULL;
	}
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	e->map = map;
	e->map_len = (size_t)st.st_size;
	e->refs = 0;
	e->used = ++s->clock;
	return e;
}

/* A memfd must hold what it claims, or touching its mapping faults. */
static int
shm_check_size(int fd, size_t need)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -1;
	if ((uint64_t)st.st_size < need) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}

struct mbx_msg *
shm_receive(struct shm *s, int fd, size_t len, bool shared)
{
	struct mbx_msg *m;
	size_t need;

	/* A size the daemon could not have accepted: HDR + len would wrap. */
	if (!proto_memfd_len(len, &need)) {
		close(fd);
		errno = EPROTO;
		return NULL;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		close(fd);
		return NULL;
	}
	m->received = true;
	m->len = len;
	m->fd = -1;
	if (shared && (m->cached = shm_cache_get(s, fd, need)) != NULL) {
		close(fd);
		m->cached->refs++;
		m->data = (unsigned char *)m->cached->map + HDR;
		return m;
	}
	/*
	 * Sealed, or shared with every cached mapping in use: a mapping of
	 * its own.  A shared one is mapped writable, for its state word.
	 */
	if (shm_check_size(fd, need) < 0) {
		close(fd);
		free(m);
		return NULL;
	}
	m->shared_uncached = shared;
	m->map_len = need;
	m->map = mmap(NULL, m->map_len, shared ? PROT_READ | PROT_WRITE :
	    PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m->map == MAP_FAILED) {
		free(m);
		return NULL;
	}
	m->data = (unsigned char *)m->map + HDR;
	return m;
}

struct mbx_msg *
shm_receive_copy(const void *data, size_t len)
{
	struct mbx_msg *m;

	if (len > SIZE_MAX - sizeof(*m) - 1) {
		errno = ENOMEM;
		return NULL;
	}
	if ((m = malloc(sizeof(*m) + len + 1)) == NULL)
		return NULL;
	memset(m, 0, sizeof(*m));
	m->received = true;
	m->fd = -1;
	m->len = len;
	m->data = (unsigned char *)(m + 1);
	if (len > 0)
		memcpy(m->data, data, len);
	return m;
}

/* Frees m; release: hand a received shared buffer back to its sender. */
static void
shm_put(struct mbx_msg *m, bool release)
{
	if (m == NULL)
		return;
	if (m->cached != NULL) {
		/* Done reading: the sender may write the buffer again. */
		if (release)
			atomic_store_explicit(shm_state(m->cached->map),
			    SHM_FREE, memory_order_release);
		m->cached->refs--;
	} else if (m->pooled != NULL) {
		m->pooled->lent = false;
	} else if (m->map != NULL && m->fd >= 0) {
		munmap(m->map, m->map_len);
		close(m->fd);
	} else if (m->map != NULL) {
		if (m->shared_uncached && release)
			atomic_store_explicit(shm_state(m->map), SHM_FREE,
			    memory_order_release);
		munmap(m->map, m->map_len);
	}
	free(m);
}

void
shm_free(struct mbx_msg *m)
{
	shm_put(m, true);
}

void
shm_discard(struct mbx_msg *m)
{
	shm_put(m, false);
}
