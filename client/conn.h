/*
 * conn.h - one libmbx handle's connection: the handle itself, the
 * transport (frames and descriptors over a non-blocking socket, every wait
 * an explicit poll()), and the request/answer plumbing every call uses.
 * Internal to libmbx: nothing here is exported.
 */
#ifndef MBX_CONN_H
#define MBX_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "credit.h"
#include "inbox.h"
#include "proto.h"
#include "shm.h"

/*
 * Read buffer sizes: what a handle starts with, and the size above which
 * the buffer is given back once the frame that needed it is consumed (a
 * single 16 MiB message must not pin 16 MiB for the handle's lifetime,
 * while the default 1 MiB messages should not realloc every time).
 */
#define RBUF_MIN	(64u * 1024)
#define RBUF_KEEP	(2u * 1024 * 1024)

/*
 * Receives ask for up to PREFETCH_COUNT messages (PREFETCH_BYTES of
 * payload) at once and hold the rest; acknowledgements of held messages
 * go out in one ACK frame of up to ACK_MAX ids.
 */
#define PREFETCH_COUNT	64
#define PREFETCH_BYTES	(256u * 1024)
#define ACK_MAX		64

struct mbx {
	int		 fd;
	long		 id;		/* client id (HELLO answer) */
	uint32_t	 next_id;	/* next request id; never 0 */
	bool		 broken;	/* see "Invariants" in mbx.c */

	/* Bytes received and not yet consumed, rlen of them from rbuf +
	 * rpos; the first rdone of them are the answer handed out last,
	 * dropped at the next read. */
	uint8_t		*rbuf;
	size_t		 rpos;
	size_t		 rlen;
	size_t		 rcap;
	size_t		 rdone;

	struct proto_writer out;	/* the request being built */
	size_t		 req_off;	/* where it starts in out */

	struct inbox	 inbox;		/* received ahead of the caller */
	uint64_t	 acks[ACK_MAX];	/* taken, not yet acknowledged */
	size_t		 nacks;
	unsigned	 prefetch;	/* messages asked for at once */
	struct credits	 credits;
	bool		 use_credit;
	size_t		 zerocopy_above;	/* mbx_send() bytes inline */

	/* Notices (see order.h): order_answers() when this handle last had
	 * read all the daemon sent it, and how many answers it read itself
	 * since. */
	unsigned	 notices_seen;
	unsigned	 own_answers;

	struct shm	 shm;		/* zero-copy buffers and mappings */
	int		 in_fds[PROTO_MAX_FDS];	/* received, not yet claimed */
	size_t		 nin_fds;
};

/* An answer frame; its body points into the read buffer until the next
 * read. */
struct answer {
	struct proto_header	h;
	struct proto_reader	r;
	int			fd;	/* the descriptor it came with, or -1:
					 * the reader of the answer owns it */
};

/* Transport. */
int	 conn_break(struct mbx *c, int err);
int	 conn_write_fd(struct mbx *c, struct iovec *iov, size_t iovcnt, int fd);
int	 conn_write(struct mbx *c, struct iovec *iov, size_t iovcnt);
void	 conn_close_in_fds(struct mbx *c);
int	 conn_read_frame(struct mbx *c, struct answer *a);
int	 conn_drain(struct mbx *c);
int	 conn_drain_if_due(struct mbx *c);

/* Requests and their answers. */
void	 req_begin(struct mbx *c);
void	 req_put_name(struct mbx *c, const char *name);
uint32_t req_end_nfds(struct mbx *c, uint16_t type, uint32_t flags,
	    size_t extra, uint16_t nfds);
uint32_t req_end(struct mbx *c, uint16_t type, uint32_t flags, size_t extra);
int	 req_send(struct mbx *c, const void *extra, size_t extralen);
int	 answer_wait(struct mbx *c, uint32_t id, struct answer *a);
int	 call(struct mbx *c, uint32_t id, const void *extra, size_t extralen,
	    struct answer *a);
int	 reply_status(struct mbx *c, struct answer *a, uint32_t *status);
int	 status_fail(struct mbx *c, uint32_t status);
int	 call_status(struct mbx *c, uint32_t id, const void *extra,
	    size_t extralen);
int	 name_request(struct mbx *c, uint16_t type, uint32_t flags,
	    const char *name);
int	 acks_flush(struct mbx *c);

#endif
