/*
 * framer.h - the frame splitter of both sides: bytes and received
 * descriptors in, whole frames with their descriptors out.
 *
 * The stream is a sequence of frames (proto.h: a 16-byte header, then
 * len bytes of body).  A descriptor is sent with the first byte of the
 * frame that declares it (nfds in its header), so the descriptors that
 * recvmsg() hands over queue in arrival order and each whole frame takes
 * the first nfds of them.  A frame that declares more than have come, or
 * descriptors that no frame can claim, is a peer that broke the protocol
 * (or the kernel dropped some: MSG_CTRUNC).  Descriptors are never left
 * unclaimed in a process that did not ask for them (CVE-2020-12049).
 *
 * The framer does no I/O and holds no bytes: the caller reads into a
 * buffer of its own and shows the framer the unconsumed bytes, starting
 * at a frame boundary, and consumes a frame's size once it is done with
 * it.  It holds only the queue of descriptors received and not yet bound
 * to a frame.  It decides nothing either: which frame types may carry
 * descriptors, how big a buffer may grow, when to close the connection
 * are the caller's; the framer only says "frame", "need more" or
 * "malformed", and on "malformed" the caller drops the connection (and
 * calls framer_close_fds()).
 *
 * Ownership: a descriptor given to the framer (framer_take_fds(),
 * framer_push_fd()) is the framer's until framer_bind() hands it to the
 * caller with its frame; framer_close_fds() and framer_deinit() close
 * those still queued.
 *
 * A reading loop (the shape of both mbxd's conn.c and libmbx's net.c):
 *
 *	for (;;) {
 *		switch (framer_next(&f, buf + pos, len, &fr)) {
 *		case FRAMER_FRAME:
 *			handle(&fr.h, fr.body, fr.fds);	// owns fr.fds
 *			pos += fr.size;
 *			len -= fr.size;
 *			continue;
 *		case FRAMER_MORE:
 *			// grow the buffer to fr.size (PROTO_HEADER_SIZE when
 *			// fr.size is 0), then recvmsg() with a union
 *			// framer_control and framer_take_fds()
 *			...
 *		case FRAMER_MALFORMED:
 *			framer_close_fds(&f);
 *			// drop the connection
 *		}
 *	}
 */
#ifndef MBX_PROTO_FRAMER_H
#define MBX_PROTO_FRAMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proto.h"

/*
 * The most descriptors a framer can hold unclaimed: those of one frame
 * being read and of one more whose first byte came with the same read.
 */
#define FRAMER_MAX_FDS	(2 * PROTO_MAX_FDS)

/* Room for the control data of one recvmsg(): one frame's descriptors. */
union framer_control {
	struct cmsghdr	align;
	char		buf[CMSG_SPACE(sizeof(int) * PROTO_MAX_FDS)];
};

enum framer_result {
	FRAMER_FRAME = 0,	/* a whole frame */
	FRAMER_MORE = 1,	/* not enough bytes yet */
	FRAMER_MALFORMED = -1,	/* the peer broke the protocol */
};

struct framer {
	uint32_t	 max_body;	/* the longest body accepted */
	size_t		 max_fds;	/* the most descriptors queued */
	int		 fds[FRAMER_MAX_FDS];	/* received, not yet bound */
	size_t		 nfds;
};

/* One frame at the head of the bytes shown to the framer. */
struct framer_frame {
	/* The header: valid once PROTO_HEADER_SIZE bytes were shown. */
	struct proto_header h;
	/*
	 * The bytes the whole frame takes (PROTO_HEADER_SIZE + h.len), once
	 * its header is in; 0 before.  What to consume after a frame, and
	 * what the buffer must hold for FRAMER_MORE to end.
	 */
	size_t		 size;
	/* The body, h.len bytes inside the caller's buffer (FRAMER_FRAME). */
	const uint8_t	*body;
	/* The h.nfds descriptors bound to it (framer_bind()): the caller's. */
	int		 fds[PROTO_MAX_FDS];
};

/*
 * An empty framer for bodies of up to max_body bytes (proto_header_decode
 * rejects more) that queues up to max_fds descriptors (at most
 * FRAMER_MAX_FDS; one frame's PROTO_MAX_FDS at least).
 */
void	framer_init(struct framer *f, uint32_t max_body, size_t max_fds);
/* Closes the descriptors still queued. */
void	framer_deinit(struct framer *f);
/* Closes the descriptors still queued; the framer stays usable. */
void	framer_close_fds(struct framer *f);

/*
 * Queues the SCM_RIGHTS descriptors of the control data of mh, the
 * msghdr of a recvmsg() (which should pass MSG_CMSG_CLOEXEC).
 * FRAMER_MALFORMED when more came than the queue holds (those are
 * closed) or the control data was truncated (MSG_CTRUNC in
 * mh->msg_flags: descriptors were lost, the stream cannot be trusted);
 * the descriptors queued stay the framer's.  Else FRAMER_FRAME.
 */
enum framer_result framer_take_fds(struct framer *f, struct msghdr *mh);
/*
 * Queues one descriptor, which becomes the framer's; FRAMER_MALFORMED
 * (fd closed) when the queue is full.
 */
enum framer_result framer_push_fd(struct framer *f, int fd);
/* The descriptors queued, not yet bound to a frame. */
size_t	framer_nfds(const struct framer *f);

/*
 * Decodes the frame at the head of buf (len bytes from a frame
 * boundary) without taking anything: FRAMER_FRAME when it is whole
 * (fr->h, fr->size, fr->body set), FRAMER_MORE when bytes are missing
 * (fr->h and fr->size set once the header is in), FRAMER_MALFORMED when
 * the header is (proto_header_decode(): too long a body for max_body,
 * an unknown type, too many descriptors announced).
 */
enum framer_result framer_peek(const struct framer *f, const uint8_t *buf,
	    size_t len, struct framer_frame *fr);
/*
 * Binds the fr->h.nfds first queued descriptors to fr (into fr->fds,
 * the caller's from now on).  FRAMER_MALFORMED, nothing taken, when
 * fewer are queued: they came with the frame's first byte or not at all.
 * For a frame peeked (whole, or dropped unread by the caller).
 */
enum framer_result framer_bind(struct framer *f, struct framer_frame *fr);
/* framer_peek(), then framer_bind() when the frame is whole. */
enum framer_result framer_next(struct framer *f, const uint8_t *buf,
	    size_t len, struct framer_frame *fr);

/*
 * True when descriptors are queued that no frame can claim: none of the
 * bytes shown (len unconsumed ones) is left to be a frame's first byte.
 */
bool	framer_stray_fds(const struct framer *f, size_t len);

#endif
