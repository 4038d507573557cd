/*
 * mbx-session.h - the protocol state of one libmbx handle, between the API
 * (mbx*.c) and the transport (net.c): requests built and matched with
 * their answers, the frame-type policy (which frames may come, and with
 * descriptors), the daemon's notices (REVOKE) applied to the inbox and
 * the grants, the channel's opening and its wait for room (WAKE), acknowledgements written late, and the order of this
 * handle's writes against the process's other handles (order.c).
 *
 * A request is built in c->out: session_req_begin(), its body with a
 * body_*_put() of proto/body.h, then session_req_end(); session_call()
 * sends it and waits for its answer, whose body the caller decodes with
 * the matching body_*_get().  Internal to libmbx: nothing here is
 * exported.
 */
#ifndef MBX_CLIENT_SESSION_H
#define MBX_CLIENT_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "mbx-int.h"
#include "proto.h"

/* An answer frame; its body (h.len bytes) points into the read buffer
 * until the next read. */
/* A CHANNEL answer's descriptors: client set, daemon set, doorbell. */
#define SESSION_CHANNEL_FDS	3
/*
 * How long a check whose connection broke waits for a planned restart's
 * final word: the daemon writes it within milliseconds of shutting the
 * socket; a daemon that died writes none, and the check then fails.
 */
#define SESSION_FINAL_WAIT_MS	5000

struct answer {
	struct proto_header	h;
	const uint8_t		*body;
	int			fd;	/* the descriptor it came with, or -1:
					 * the reader of the answer owns it */
	int			fds[SESSION_CHANNEL_FDS];	/* all of them */
};

/* Requests. */
/*
 * Starts a new request in c->out, forgetting the previous one; pending
 * acknowledgements ride in front of it.
 */
void	 session_req_begin(struct mbx *c);
/*
 * Fills in the header of the request in c->out, whose body goes on for
 * extra bytes that are not in c->out, with nfds descriptors.  Returns the
 * request id, or 0 with errno ENOMEM.
 */
uint32_t session_req_end_nfds(struct mbx *c, uint16_t type, uint32_t flags,
	    size_t extra, uint16_t nfds);
uint32_t session_req_end(struct mbx *c, uint16_t type, uint32_t flags,
	    size_t extra);
/* Writes iov (and fd, or -1, with its first byte), in order with the
 * process's other handles. */
int	 session_write(struct mbx *c, struct iovec *iov, size_t iovcnt,
	    int fd);
/* Writes the request in c->out, then the extra bytes. */
int	 session_req_send(struct mbx *c, const void *extra, size_t extralen);

/* Answers. */
/* Reads frames until the answer to id, applying notices on the way. */
int	 session_answer_wait(struct mbx *c, uint32_t id, struct answer *a);
/* Sends the request built in c->out (plus extra) and waits for its
 * answer. */
int	 session_call(struct mbx *c, uint32_t id, const void *extra,
	    size_t extralen, struct answer *a);
/* Reads the status that starts a REPLY; -1 (handle broken) when a is
 * no REPLY. */
int	 session_reply_status(struct mbx *c, struct answer *a,
	    uint32_t *status);
/* Checks that an OK answer a is the status alone; -1 (broken) if not. */
int	 session_reply_bare(struct mbx *c, const struct answer *a);
/* Fails with the errno of a status other than PROTO_OK. */
int	 session_status_fail(struct mbx *c, uint32_t status);
/* session_call() of a request whose success is a bare status. */
int	 session_call_status(struct mbx *c, uint32_t id, const void *extra,
	    size_t extralen);

/* Notices. */
/* Applies the notices that arrived since the last call, without waiting. */
int	 session_drain(struct mbx *c);
/* The same, only when the process may have seen a cause of one since. */
int	 session_drain_if_due(struct mbx *c);

/* The channel (chan.h). */
/* Asks for the channel once; a refusal leaves posts on the socket. */
int	 session_channel_open(struct mbx *c);
/*
 * The channel for a receiver, asked for by its first bind (or receive):
 * its receives are then acknowledged by a store (PROTOCOL.md).  Not with
 * credit off, which keeps the version 5 path whole.  0, or -1 when the
 * handle broke.
 */
int	 session_channel_for_receives(struct mbx *c);
/* Waits until a tx record of len bytes fits, reading WAKEs. */
int	 session_room_wait(struct mbx *c, size_t len);
/*
 * After publishing ring posts that start at pos[0..n) (rising, n at most
 * BODY_DROPPED_MAX): *kept, how many of them mbxd certainly queued
 * before the first it dropped because its mailbox was destroyed.  Only
 * when the daemon ended a grant since the last look does it ask (a
 * GRANT_CHECK round trip, which applies the REVOKEs that came first).
 * 0, or -1 when the handle broke.
 */
int	 session_posts_kept(struct mbx *c, const uint64_t *pos, size_t n,
	    size_t *kept);

/* Acknowledgements. */
/* Confirms the message msg_id the caller now has (sync: at once). */
int	 session_ack(struct mbx *c, uint64_t msg_id, bool sync,
	    bool durable);
/* A message handed to the caller, as session_consume() needs it. */
struct taken {
	uint64_t	 id;
	uint64_t	 seq;		/* its MSG's number (msgs_read) */
	bool		 sync;		/* PROTO_MSG_SYNC */
	bool		 store;		/* PROTO_MSG_STORE */
	bool		 durable;	/* PROTO_MSG_DURABLE */
};

/*
 * The second phase of a receive: on a handle that consumes, a store into
 * the consumption word (PROTO_MSG_STORE, nothing older held), else
 * session_ack(); with MBX_OPT_ACK the message is noted as held for the
 * caller's mbx_ack() or mbx_nack().  0, or -1 (ESTALE: taken back
 * before the receive counted; receive again).
 */
int	 session_consume(struct mbx *c, const struct taken *t);
/*
 * mbx_ack() (nack false) or mbx_nack() of a held message: written
 * without waiting unless the daemon took something back since the last
 * look (the takeback word), then checked by a round trip.  0, or -1
 * with ESTALE when the handle no longer holds it.
 */
int	 session_settle_held(struct mbx *c, uint64_t msg_id, bool nack,
	    uint32_t delay_ms);
/* Writes the pending acknowledgements now, alone. */
int	 session_acks_flush(struct mbx *c);

/* The handle is closing: acknowledgements out, its writes forgotten. */
void	 session_end(struct mbx *c);

#endif
