/*
 * net.h - the transport of one libmbx handle: a non-blocking Unix socket
 * that frames and descriptors go over, every wait an explicit poll().
 *
 * This layer moves bytes, descriptors and frames; frames are cut from the
 * bytes, and the descriptors that arrive bound in order to the frames
 * whose headers declare them, by proto/framer.h.  It knows nothing of
 * what a frame means: which types may come, and which of them may carry
 * a descriptor, is the session's policy (session.c).  Internal to
 * libmbx: nothing here is exported.
 */
#ifndef MBX_NET_H
#define MBX_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "framer.h"
#include "proto.h"

/*
 * Read buffer sizes: what a handle starts with, and the size above which
 * the buffer is given back once the frame that needed it is consumed (a
 * single 16 MiB message must not pin 16 MiB for the handle's lifetime,
 * while the default 1 MiB messages should not realloc every time).
 */
#define NET_RBUF_MIN	(64u * 1024)
#define NET_RBUF_KEEP	(2u * 1024 * 1024)

struct net {
	int		 fd;
	/* Once set, the socket is shut down and every read or write fails
	 * with ECONNRESET (see "Invariants" in mbx-int.h). */
	bool		 broken;

	/* Bytes received and not yet consumed, rlen of them from rbuf +
	 * rpos; the first rdone of them are the frame handed out last,
	 * dropped at the next read. */
	uint8_t		*rbuf;
	size_t		 rpos;
	size_t		 rlen;
	size_t		 rcap;
	size_t		 rdone;

	/* The descriptors received and not yet bound to a frame. */
	struct framer	 framer;
};

void	 net_init(struct net *n);
/* Closes the socket and every descriptor not yet bound; frees the buffer. */
void	 net_deinit(struct net *n);
/* Connects to the daemon's socket at path; -1 with errno. */
int	 net_connect(struct net *n, const char *path);
/* Marks the transport broken and fails with err (-1, errno err). */
int	 net_break(struct net *n, int err);
/*
 * Writes every byte of iov, with descriptor fd (or -1) riding on the
 * first byte; waits as long as it takes.
 */
int	 net_write(struct net *n, struct iovec *iov, size_t iovcnt, int fd);
/* Closes the descriptors received and not bound to a frame yet. */
void	 net_close_in_fds(struct net *n);
/*
 * Reads the next whole frame, waiting as long as it takes: its header,
 * its body (in the read buffer until the next read) and the h.nfds
 * descriptors bound to it, which the reader of the frame owns.
 */
int	 net_read_frame(struct net *n, struct framer_frame *f);
/*
 * Reads the next frame if it has arrived whole, without waiting: 1 and
 * the frame, 0 when nothing more has arrived, -1 (broken) on failure.
 */
int	 net_poll_frame(struct net *n, struct framer_frame *f);

#endif
