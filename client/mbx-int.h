/*
 * mbx-int.h - the libmbx handle (mbx_t, struct mbx), shared by the files
 * of the library and by nothing else: nothing here is exported.
 *
 * The library, top down; each file calls only the ones below it:
 *
 *   mbx-admin.c mbx-send.c mbx-recv.c   the API of mbx.h, by part
 *   mbx.c          the handle's life, its options, message objects
 *   mbx-session.c  requests and answers, notices, acknowledgements
 *   net.c order.c  the socket; the order of writes across handles
 *   grant.c inbox.c shm.c chan.c   grants, held messages, memfd
 *                  buffers, the channel's rings
 *   proto/         the wire
 *
 * A handle is one connection to mbxd.  Its core is non-blocking: the
 * socket has O_NONBLOCK set, bytes go out through net_write() and come in
 * through net_read_frame(), and every wait is an explicit poll() between
 * the two.  Each public call is one or more request/answer exchanges:
 * session_call() writes a request with a fresh id and waits, with no
 * deadline of its own, for the answer carrying that id.  The daemon
 * enforces every timeout and always answers, so the library needs no
 * timer and never returns EINTR.
 *
 * Invariants:
 * - At most one request is outstanding (one mbx_t, one thread at a time),
 *   so what arrives is the answer to it, or a notice (REVOKE); any other
 *   frame is a protocol violation.  The answer's body stays in the read
 *   buffer, pointed to by struct answer, until the next read.
 * - Once the connection fails (EOF, a socket error, a malformed or
 *   unexpected frame, a descriptor nobody announced) the handle is broken
 *   (net.broken): the socket is shut down, so the daemon puts back every
 *   message this handle had not acknowledged, and every later call fails
 *   with ECONNRESET.  The descriptor itself stays open until mbx_close(),
 *   so an mbx_fd() the caller registered with epoll stays valid (it polls
 *   as readable, and the next call reports ECONNRESET).
 * - Everything is validated that must be before it reaches the wire (NULL
 *   pointers, names, timeouts, sizes); every other decision is the
 *   daemon's.
 */
#ifndef MBX_INT_H
#define MBX_INT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "body.h"
#include "chan.h"
#include "grant.h"
#include "inbox.h"
#include "net.h"
#include "proto.h"
#include "shm.h"

/* The library is built with -fvisibility=hidden: only these are exported. */
#define MBX_EXPORT	__attribute__((visibility("default")))

/*
 * Receives ask for up to MBX_PREFETCH_COUNT messages (MBX_PREFETCH_BYTES
 * of payload) at once and hold the rest; acknowledgements of held
 * messages go out in one ACK frame of up to MBX_ACK_MAX ids.
 */
#define MBX_PREFETCH_COUNT	64
#define MBX_PREFETCH_BYTES	(256u * 1024)
#define MBX_ACK_MAX		64

struct mbx {
	struct net	 net;		/* the socket, its bytes and fds */
	long		 id;		/* client id (HELLO answer) */
	uint32_t	 next_id;	/* next request id; never 0 */

	struct proto_writer out;	/* the request being built */
	size_t		 req_off;	/* where it starts in out */

	struct inbox	 inbox;		/* received ahead of the caller */
	uint64_t	 acks[MBX_ACK_MAX];	/* taken, not acknowledged */
	size_t		 nacks;
	unsigned	 prefetch;	/* messages asked for at once */
	struct grants	 grants;
	bool		 use_credit;
	size_t		 zerocopy_above;	/* mbx_send() bytes inline */

	/* Notices (see order.h): order_answers() when this handle last had
	 * read all the daemon sent it, and how many answers it read itself
	 * since. */
	unsigned	 notices_seen;
	unsigned	 own_answers;
	/* The last session_call() wrote its request (its answer may not
	 * have come): a durable message's ACK so written counts as
	 * received (session_ack()). */
	bool		 call_written;

	struct shm	 shm;		/* zero-copy buffers and mappings */

	struct chan	 chan;		/* the channel, once asked for */
	uint32_t	 channel_req;	/* the CHANNEL request waiting */

	/* MBX_OPT_ACK: messages handed out and not yet acknowledged. */
	unsigned	 ack_max;	/* 0: receives consume */
	struct unacked	*unacked;	/* ack_max slots, in receive order */
	size_t		 nunacked;
	uint64_t	 takeback_seen;	/* CHANNEL_DAEMON_TAKEBACK, as read */

	/*
	 * Consumption by a store (PROTOCOL.md): MSG frames read, the
	 * consumption word as stored, the takeback word as that path last
	 * read it, and the message a check asks about, with whether a
	 * REVOKE of it came meanwhile.  REVOKE frames read, against the
	 * daemon's notice word.
	 */
	uint64_t	 msgs_read;
	uint64_t	 consumed;
	uint64_t	 store_takeback_seen;
	uint64_t	 check_id;
	bool		 check_revoked;
	uint64_t	 watch_rung;	/* CHANNEL_DAEMON_WATCH, rung for */
	uint64_t	 revokes_read;
};

struct unacked {
	uint64_t	 id;
	bool		 sync;		/* its sender waits: answer needed */
};

/*
 * Argument checks, done before anything reaches the wire, by every file
 * of the API.
 */

/* Fails with err; a one-liner for the argument checks. */
static inline int
mbx_fail(int err)
{
	errno = err;
	return -1;
}

/* A C string as a body field (checked by mbx_name_ok() beforehand). */
static inline struct proto_str
mbx_str(const char *s)
{
	return (struct proto_str){ s, strlen(s) };
}

/*
 * True when name can go on the wire: a mailbox name or a direct address
 * "@ID".  Which of the two a request accepts is the daemon's call.
 */
static inline bool
mbx_name_ok(const char *name)
{
	size_t len;

	if (name == NULL)
		return false;
	len = strnlen(name, PROTO_NAME_MAX + 1);
	return proto_name_valid(name, len) || proto_direct_id(name, len) != 0;
}

#endif
