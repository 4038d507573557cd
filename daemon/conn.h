/*
 * conn.h - the byte transport of one client connection.
 *
 * A conn reads frames off a non-blocking Unix stream socket and hands each
 * complete one to its owner; it queues the owner's output and writes it
 * when the socket takes it.  It knows nothing of mailboxes.
 *
 * Lifetime: a conn is never freed inside its own callbacks.  conn_kill()
 * (or EOF, an error, malformed input) marks it dead and schedules the
 * owner's closed() for the next loop turn; the owner frees it there.
 */
#ifndef MBXD_CONN_H
#define MBXD_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"

struct event_base;
struct conn;

/* conn_ops.charge(): the frame's room is its owner's already. */
#define CONN_COVERED	1

struct conn_ops {
	/*
	 * One complete frame; body holds h->len bytes and stays valid only
	 * during the call; fds holds the h->nfds descriptors that came with
	 * it, which the callee now owns (and closes, even on error).
	 * Returns 0, or -1 to close the connection.
	 */
	int	(*frame)(void *ctx, const struct proto_header *h,
		    const uint8_t *body, int *fds);
	/* The connection is dead; called once, from the event loop. */
	void	(*closed)(void *ctx);
	/*
	 * Charges (delta > 0, h the frame's header) or releases (delta < 0,
	 * h NULL) the memory of a large frame announced and not yet
	 * complete; released before frame() is called with it.  0;
	 * CONN_COVERED when the owner already holds room for that frame
	 * (nothing charged, nothing to release); or -1 to refuse: the frame
	 * is then read and dropped, its descriptors closed, and refused()
	 * called.
	 */
	int	(*charge)(void *ctx, const struct proto_header *h,
		    int64_t delta);
	/*
	 * A frame dropped because its charge was refused (h is its header):
	 * the owner answers its request.  0, or -1 to close the connection.
	 */
	int	(*refused)(void *ctx, const struct proto_header *h);
	/*
	 * The output this connection holds changed by bytes and fds
	 * (either may be negative): unwritten bytes, and descriptors
	 * queued or passed to the peer and not yet seen read.  Optional.
	 */
	void	(*output)(void *ctx, int64_t bytes, int fds);
	/*
	 * Asked before each frame while output waits to be written: false
	 * stops reading until conn_resume().  Optional.
	 */
	bool	(*may_read)(void *ctx);
};

/* Takes ownership of fd (closed by conn_free, or on failure). */
struct conn *conn_new(struct event_base *base, int fd, uint32_t max_body,
	    const struct conn_ops *ops, void *ctx);
void	 conn_free(struct conn *c);

/*
 * Reads what the socket holds now and hands the owner the frames whose
 * types are in `types` (bit 1 << type) at the head of the input, in
 * order, stopping at the first frame of another type (left for the event
 * loop).  Does nothing while this
 * connection's own frames are being handed over.  For an owner that must
 * act on what a peer has already said before it acts for another one.
 */
void	 conn_take_leading(struct conn *c, uint32_t types);

/*
 * For a planned restart: the peer can write no more from now (its writes
 * fail with EPIPE), and every frame it wrote before is read and handed
 * over now, whatever output waits.  The connection stays open for its
 * output; it reads nothing more.
 */
void	 conn_read_to_end(struct conn *c);
/* Output bytes not yet written (0 once dead). */
size_t	 conn_unwritten(const struct conn *c);

/* Output: append whole frames to the writer, then conn_flush_soon(). */
struct proto_writer *conn_out(struct conn *c);
/*
 * Sends fd with the frame that starts at offset frame_start of the output
 * writer: the kernel attaches it to that frame's first byte.  On success
 * the conn owns fd; on failure (-EMFILE: too many wait already, or no
 * memory) it stays the caller's, to close.
 */
int	 conn_attach_fd(struct conn *c, size_t frame_start, int fd);
/*
 * Descriptors queued or passed and not yet seen read by the peer: the
 * peer has read them all once the socket holds nothing unread (asked of
 * the kernel here).
 */
unsigned conn_out_fds(struct conn *c);
/* Reading paused by may_read() is tried again (on the next loop turn). */
void	 conn_resume(struct conn *c);
/* Writes the output at the end of this loop turn (coalescing replies). */
void	 conn_flush_soon(struct conn *c);
/* Writes what the socket takes now, without waiting; for shutdown. */
void	 conn_flush_now(struct conn *c);
/* Closes once the queued output is written (a refused handshake). */
void	 conn_close_after_flush(struct conn *c);
/* Closes; why, when not NULL, is logged as an anomaly. */
void	 conn_kill(struct conn *c, const char *why);
/*
 * Releases what the connection has charged, input and output (before
 * its owner goes); nothing is reported after it.
 */
void	 conn_uncharge(struct conn *c);
/* Names the connection in log lines. */
void	 conn_set_label(struct conn *c, const char *label);
bool	 conn_dead(const struct conn *c);

#endif
