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
#ifndef MBX_CONN_H
#define MBX_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"

struct event_base;
struct conn;

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
	 * Charges (delta > 0) or releases (delta < 0) the memory of a large
	 * frame announced and not yet complete.  0, or -1 to refuse (the
	 * connection is closed).
	 */
	int	(*charge)(void *ctx, int64_t delta);
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

/* Output: append whole frames to the writer, then conn_flush_soon(). */
struct proto_writer *conn_out(struct conn *c);
/*
 * Sends fd (which the conn now owns) with the frame that starts at offset
 * frame_start of the output writer: the kernel attaches it to that frame's
 * first byte.
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
