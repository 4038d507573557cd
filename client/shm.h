/*
 * shm.h - shared-memory message buffers (memfds) for zero-copy messages.
 *
 * Every buffer is laid out as one PROTO_SHARED_HEADER-byte header page
 * followed by the payload.  The header's first word says who may touch a
 * shared (recycled) buffer: SHM_BUSY from the moment the sender posts it
 * until the receiver is done with it, then SHM_FREE again, which is how
 * the sender's pool knows it may reuse it without a round trip.  Sealed
 * buffers are never reused and their header is never written after the
 * seal.
 *
 * What fresh pages cost (3-10 us each on our machines, far more than a
 * copy: tests/bench/COSTS.md) is why buffers are pooled on the sending
 * side and mappings cached on the receiving side:
 * a recycled buffer is written, passed and read with no new page faults.
 */
#ifndef MBX_SHM_H
#define MBX_SHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto.h"

#define SHM_FREE	0u
#define SHM_BUSY	1u
#define SHM_POOL_MAX	16
#define SHM_CACHE_MAX	32

/* A message object (mbx_msg_t): allocated, or received. */
struct mbx_msg {
	unsigned char	*data;		/* the payload */
	size_t		 len;
	int		 fd;		/* the memfd, or -1 (a heap copy) */
	void		*map;		/* its mapping (header first) */
	size_t		 map_len;
	struct shm_buf	*pooled;	/* sender side: the pool's buffer */
	struct shm_map	*cached;	/* receiver side: a cached mapping */
	bool		 sealed;	/* already sealed (a failed send) */
	bool		 shared_once;	/* offered shared: never to be sealed */
	bool		 received;
	bool		 shared_uncached; /* received shared, own mapping */
};

/* A sender's recycled buffer. */
struct shm_buf {
	int		 fd;
	void		*map;		/* read-write, header first */
	size_t		 cap;		/* payload room */
	bool		 lent;		/* in a message the caller holds */
	bool		 shared_once;	/* a receiver may map it writable */
};

/* A receiver's mapping of a shared buffer, kept for its next uses. */
struct shm_map {
	dev_t		 dev;
	ino_t		 ino;
	void		*map;
	size_t		 map_len;
	unsigned	 refs;		/* messages using it now */
	uint64_t	 used;		/* for eviction: last use */
};

struct shm {
	struct shm_buf	*pool[SHM_POOL_MAX];	/* messages point at them */
	size_t		 npool;
	struct shm_map	 cache[SHM_CACHE_MAX];
	size_t		 ncache;
	uint64_t	 clock;
};

void	 shm_init(struct shm *s);
/* Unmaps and closes everything; messages still out keep their own. */
void	 shm_deinit(struct shm *s);

/* A new message of len bytes for the caller to fill; NULL with errno. */
struct mbx_msg *shm_alloc(struct shm *s, size_t len);
/*
 * Prepares m to travel: seals it (sealed) or marks it busy (shared).
 * Returns the descriptor to pass, or -1 with errno.
 */
int	 shm_ready(struct shm *s, struct mbx_msg *m, bool shared);
/* m went: the sender lets go of it (a pooled buffer stays pooled). */
void	 shm_sent(struct shm *s, struct mbx_msg *m);
/* The send failed: m is the caller's again, as before shm_ready(). */
void	 shm_unsent(struct mbx_msg *m, bool shared);

/*
 * A received message of len bytes in memfd fd (taken): mapped read-only
 * (sealed) or through the mapping cache (shared).  NULL with errno.
 */
struct mbx_msg *shm_receive(struct shm *s, int fd, size_t len, bool shared);
/* A received message whose payload is a heap copy. */
struct mbx_msg *shm_receive_copy(const void *data, size_t len);
/* Frees any message; a shared one is handed back to its sender. */
void	 shm_free(struct mbx_msg *m);
/*
 * Frees a received message that was not received after all (its ACK came
 * back STALE, or was never written): a shared buffer is not handed back,
 * for it is not ours to free.  A withdrawn one its sender has taken back
 * already and may be reusing; one that goes back to its queue is still
 * the daemon's.
 */
void	 shm_discard(struct mbx_msg *m);

#endif
