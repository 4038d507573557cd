/*
 * proto.h - the mbx wire contract, shared by mbxd and libmbx.
 *
 * This header, proto.c and body.[ch] are the only place where the byte
 * layout of the protocol lives; PROTOCOL.md beside them is its prose
 * specification.
 *
 * Every frame is a 16-byte header followed by `len` bytes of body:
 *
 *	offset	size	field
 *	0	4	len	body length, checked against PROTO_MAX_BODY
 *				before anything is allocated
 *	4	2	type	enum proto_type
 *	6	2	nfds	file descriptors attached to this frame
 *	8	4	id	request id chosen by the client, echoed in
 *				the reply; 0 in unsolicited frames
 *	12	4	flags	per-type flags
 *
 * All integers are little-endian and fixed width.  Bodies are sequences of
 * fields read and written with the proto_get_*() and proto_put_*()
 * helpers: integers, strings (u16 length + bytes, no NUL) and blobs (u32
 * length + bytes).  A decoder must consume the body exactly: trailing bytes
 * make the frame malformed.  Every body is encoded and decoded by body.h
 * (struct body_X, body_X_put(), body_X_get()), on top of those helpers.
 *
 * The decoder does no I/O: bytes in, a header or "need more" or
 * "malformed" out.  That keeps it unit-testable and fuzzable.
 */
#ifndef MBX_PROTO_H
#define MBX_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * Bump PROTO_VERSION whenever the layout of an existing frame type changes,
 * a type or status is given a new meaning, or a field is added to an
 * existing body.  Adding a new frame type that old peers never receive does
 * not need a bump.
 */
#define PROTO_VERSION		8

#define PROTO_HEADER_SIZE	16
/* Largest body a peer may announce: a maximal inline message plus fields. */
#define PROTO_MAX_PAYLOAD	(16u * 1024 * 1024)
#define PROTO_MAX_BODY		(PROTO_MAX_PAYLOAD + 4096u)
/* Largest number of descriptors one frame may carry. */
#define PROTO_MAX_FDS		4
#define PROTO_NAME_MAX		255

/*
 * The frame types and their bodies in brief.  body.h has each body as a
 * struct with its encoder and decoder: struct body_hello for HELLO and so
 * on, except that DESTROY, UNBIND and PURGE share struct body_name, LIST
 * and CLIENTS struct body_list, and a REPLY has one struct per kind of
 * answer (struct body_reply_hello, ...).
 */
enum proto_type {
	/* client -> daemon requests; each is answered by one reply */
	PROTO_HELLO = 1,	/* u32 version */
	PROTO_CREATE = 2,	/* str name, i64 capacity, u64 max_msg,
				 * u32 mode (0: 0600), u32 gid
				 * (PROTO_ID_NONE: the creator's),
				 * u32 max_attempts, u32 ack_timeout_ms,
				 * str dead_letter (empty: none) */
	PROTO_DESTROY = 3,	/* str name */
	PROTO_BIND = 4,		/* str name, u32 how */
	PROTO_UNBIND = 5,	/* str name; flags PROTO_UNBIND_EVICT */
	PROTO_SEND = 6,		/* str name, i32 timeout_ms, blob payload
				 * (u64 size with PROTO_SEND_FD); flags
				 * PROTO_SEND_SYNC, _FD, _SHARED, _CREDIT.
				 * With _CREDIT the OK reply may carry a
				 * credit grant (see PROTO_REPLY) */
	PROTO_RECV = 7,		/* str name (empty: any), i32 timeout_ms,
				 * u64 cap, u32 max_count, u64 budget:
				 * the first message, then up to
				 * max_count - 1 more while the payloads
				 * (the first included) total at most
				 * budget; each at most cap bytes, at most
				 * BROKER_RECV_MAX_FDS memfds; flags
				 * PROTO_RECV_ACK */
	PROTO_ACK = 8,		/* u64 msg_id, repeated: one or more;
				 * flags PROTO_ACK_REPLY (with exactly one)
				 * asks for an answer; else none comes */
	PROTO_REBIND = 9,	/* str name, u64 client_id */
	PROTO_LIST = 10,	/* empty, or str cursor: a page of the
				 * view (see PROTO_REPLY_MORE) */
	PROTO_CLIENTS = 11,	/* the same */
	PROTO_CHMOD = 12,	/* str name, u32 mode */
	PROTO_CHOWN = 13,	/* str name, u32 uid, u32 gid
				 * (PROTO_ID_NONE: unchanged) */
	PROTO_PURGE = 14,	/* str name */
	PROTO_SENDV = 15,	/* u32 count, then count x (str name, blob
				 * payload): enqueued in order, never
				 * waiting, until the first that cannot
				 * be.  Reply: status of that failure (OK
				 * if none), u32 how many were enqueued */
	PROTO_POST = 16,	/* u64 mailbox_id, blob payload: a send on
				 * credit, never answered (see PROTOCOL.md,
				 * "Credit") */
	PROTO_CHANNEL = 17,	/* empty: this connection's channel
				 * (PROTOCOL.md, "CHANNEL"); the OK reply
				 * carries u32 ring size and nfds 3: the
				 * client set, the daemon set, the doorbell */
	PROTO_GRANT_CHECK = 18,	/* u64 from: which ring posts from that
				 * position on mbxd dropped, their grant
				 * gone (PROTOCOL.md, "GRANT_CHECK"); the
				 * OK reply: u32 n, n x u64 position */
	PROTO_NACK = 19,	/* u64 msg_id, u32 delay_ms: give it back
				 * (PROTOCOL.md, "NACK"); flags
				 * PROTO_ACK_REPLY asks for an answer */

	/* daemon -> client */
	PROTO_REPLY = 64,	/* u32 status, then per request:
				 *   HELLO:  u32 version, u64 client_id
				 *   LIST, CLIENTS: blob json (one page:
				 *     the pages concatenated are one
				 *     JSON array), then with
				 *     PROTO_REPLY_MORE str cursor
				 *   SEND (OK): nothing, or a credit grant:
				 *     u64 mailbox_id, u32 count, u64 bytes,
				 *     u64 max_msg (the mailbox's: a post
				 *     must not exceed it)
				 *   SENDV: u32 enqueued
				 *   others: nothing */
	PROTO_MSG = 65,		/* answer to RECV: u64 msg_id, str mailbox,
				 * u64 sender_id, u32 pid, u32 uid,
				 * u32 attempt, str origin (a dead
				 * letter's mailbox, else empty),
				 * u32 origin_attempts, blob payload (u64 size with
				 * PROTO_MSG_FD); flags PROTO_MSG_SYNC,
				 * _MORE, _FD, _SHARED */
	PROTO_REVOKE = 66,	/* unsolicited (id 0): u32 what, str
				 * mailbox, u64 mailbox_id: the binding
				 * (PROTO_REVOKE_BINDING), the mailbox and
				 * any credit in it (PROTO_REVOKE_GONE), or
				 * the right to post there
				 * (PROTO_REVOKE_CREDIT) is no more; for
				 * PROTO_REVOKE_MSG then u64 msg_id: that
				 * one message was taken back */
	PROTO_WAKE = 67,	/* unsolicited (id 0), empty: look at the
				 * channel's rings (PROTOCOL.md, "CHANNEL") */
};

#define PROTO_REVOKE_BINDING	1
#define PROTO_REVOKE_GONE	2
/*
 * The sender may no longer write there: it must stop posting on its
 * grant (posts already written still land).
 */
#define PROTO_REVOKE_CREDIT	3
/*
 * One message in flight at the connection went back to its mailbox (its
 * acknowledgement timeout passed): an ACK or NACK of it is stale.
 */
#define PROTO_REVOKE_MSG	4

/* "No uid" or "no gid" in CREATE and CHOWN. */
#define PROTO_ID_NONE		0xffffffffu

/* bind modes (PROTO_BIND) */
enum proto_bind {
	PROTO_BIND_EXCLUSIVE = 0,
	PROTO_BIND_REPLACE = 1,
	PROTO_BIND_QUEUE = 2,
};

#define PROTO_SEND_SYNC		0x1u
/*
 * The payload is in a memfd passed with the frame (nfds 1); the body ends
 * with u64 size instead of the blob.  The memfd holds a
 * PROTO_SHARED_HEADER-byte header page, then the size bytes of payload
 * (see PROTOCOL.md, "Zero-copy messages").  Without PROTO_SEND_SHARED it
 * must carry the write, grow, shrink and seal seals; with it, grow and
 * shrink at least.
 */
#define PROTO_SEND_FD		0x2u
#define PROTO_SEND_SHARED	0x4u
#define PROTO_SHARED_HEADER	4096u
/* The sender uses credit: the OK answer may carry a grant. */
#define PROTO_SEND_CREDIT	0x8u
/*
 * A POST whose payload is in a memfd (nfds 1, body u64 mailbox_id, u64
 * size), checked as for PROTO_SEND_FD; only on a grant whose REPLY had
 * PROTO_REPLY_ZEROCOPY.
 */
#define PROTO_POST_FD		0x2u
#define PROTO_POST_SHARED	0x4u
/* The grant in this SEND's REPLY covers memfd POSTs too. */
#define PROTO_REPLY_ZEROCOPY	0x1u
/*
 * ... and memfd POSTs of shared buffers (PROTO_POST_SHARED): the mailbox
 * passed the shared-buffer rule for this connection when the grant was
 * last given.
 */
#define PROTO_REPLY_SHARED	0x2u
/*
 * A LIST or CLIENTS page that another follows: ask for it with the
 * cursor that ends this REPLY.
 */
#define PROTO_REPLY_MORE	0x4u
/* CREATE: a durable mailbox (PROTOCOL.md, "Durable mailboxes"). */
#define PROTO_CREATE_DURABLE	0x1u
/* The receiver must acknowledge with PROTO_ACK_REPLY and wait for the answer. */
#define PROTO_MSG_SYNC		0x1u
/* More MSG frames answering the same RECV follow this one. */
#define PROTO_MSG_MORE		0x2u
/* As PROTO_SEND_FD and PROTO_SEND_SHARED: u64 size, the memfd in nfds. */
#define PROTO_MSG_FD		0x4u
#define PROTO_MSG_SHARED	0x8u
/*
 * The receiver may acknowledge this one by a store into its channel's
 * consumption word (PROTOCOL.md, "Consumption by a store").
 */
#define PROTO_MSG_STORE		0x10u
/*
 * A durable mailbox's message (with PROTO_MSG_SYNC): once its ACK is
 * written the receiver keeps it, answered or not (PROTOCOL.md, "Durable
 * mailboxes").
 */
#define PROTO_MSG_DURABLE	0x20u
#define PROTO_ACK_REPLY		0x1u
/*
 * RECV: the caller acknowledges each message itself (MBX_OPT_ACK): the
 * mailbox's acknowledgement timeout applies to what this answers.
 */
#define PROTO_RECV_ACK		0x1u
/* The longest delay a NACK may ask for: one day. */
#define PROTO_NACK_DELAY_MAX	86400000u
/* Remove whoever is the receiver (an operator's unbind), not the caller. */
#define PROTO_UNBIND_EVICT	0x1u

/*
 * Status codes on the wire.  They are the protocol's own numbers, never
 * host errno values; proto_status_to_errno() maps them on each side.
 */
enum proto_status {
	PROTO_OK = 0,
	PROTO_ENOENT = 1,
	PROTO_EEXIST = 2,
	PROTO_EINVAL = 3,
	PROTO_EAGAIN = 4,
	PROTO_ETIMEDOUT = 5,
	PROTO_EMSGSIZE = 6,
	PROTO_EBUSY = 7,
	PROTO_EPERM = 8,
	PROTO_EACCES = 9,
	PROTO_ENOBUFS = 10,
	PROTO_EIDRM = 11,
	PROTO_EPROTO = 12,	/* version mismatch, or an error with no
				 * status of its own */
	PROTO_ESHUTDOWN = 13,	/* the daemon is stopping */
	PROTO_ESRCH = 14,	/* the named client does not stand by */
	PROTO_ENOMEM = 15,
	PROTO_EDQUOT = 16,
	PROTO_EMFILE = 17,
	PROTO_STALE = 18,	/* ACK: the message was withdrawn meanwhile */
	PROTO_EIO = 19,		/* a durable mailbox's log failed */
	PROTO_ENOSPC = 20,	/* no room on disk for a durable send */
	PROTO_STATUS_MAX
};

int	proto_status_to_errno(uint32_t status);
uint32_t proto_errno_to_status(int err);

struct proto_header {
	uint32_t len;
	uint16_t type;
	uint16_t nfds;
	uint32_t id;
	uint32_t flags;
};

enum proto_decode {
	PROTO_DECODE_OK = 0,
	PROTO_DECODE_MORE = 1,		/* not enough bytes yet */
	PROTO_DECODE_MALFORMED = -1,	/* close the connection */
};

/*
 * Decodes the header at the start of buf.  MALFORMED when the announced
 * length exceeds max_body (never more than PROTO_MAX_BODY), the type is
 * unknown or more than PROTO_MAX_FDS descriptors are announced.
 */
enum proto_decode proto_header_decode(const uint8_t *buf, size_t len,
	    uint32_t max_body, struct proto_header *h);
void	proto_header_encode(uint8_t out[PROTO_HEADER_SIZE],
	    const struct proto_header *h);
bool	proto_type_known(uint16_t type);

/* True when name is 1..255 bytes of [A-Za-z0-9._:/-] (not "@ID"). */
bool	proto_name_valid(const char *name, size_t len);
/*
 * The bytes a memfd must hold for a payload of size bytes (the header page
 * first), in *len; false when that does not fit a size_t and an off_t,
 * which no memfd can hold (a size near UINT64_MAX would wrap).
 */
bool	proto_memfd_len(uint64_t size, size_t *len);
/*
 * Parses a direct address "@ID" (decimal, no sign, no leading zero,
 * positive).  Returns the id, or 0 when name is not a direct address.
 */
uint64_t proto_direct_id(const char *name, size_t len);

/*
 * Text that came over the wire (or from another process) made safe for a
 * log line or a terminal: writes src (len bytes) into dst (size bytes,
 * always NUL-terminated, cut short rather than overflow) with every byte
 * that could end a line, forge a syslog priority or drive a terminal
 * written as \xHH: C0 controls, DEL, backslash, C1 controls and bytes
 * that are not UTF-8.  Other UTF-8 is copied.  PROTO_ESCAPED_MAX(len) is
 * the size that always fits.  Returns the length of dst.  The daemon's
 * log and CLIENTS, and mbxctl's tables, follow this one rule.
 */
#define PROTO_ESCAPED_MAX(len)	(4 * (len) + 1)
size_t	proto_escape(char *dst, size_t size, const char *src, size_t len);

/* A view into a body; strings and blobs point into the frame's bytes. */
struct proto_reader {
	const uint8_t	*p;
	size_t		 left;
	bool		 bad;
};

struct proto_str {
	const char	*ptr;	/* not NUL-terminated */
	size_t		 len;
};

void	 proto_reader_init(struct proto_reader *r, const void *body,
	    size_t len);
uint32_t proto_get_u32(struct proto_reader *r);
uint64_t proto_get_u64(struct proto_reader *r);
int32_t	 proto_get_i32(struct proto_reader *r);
int64_t	 proto_get_i64(struct proto_reader *r);
struct proto_str proto_get_str(struct proto_reader *r);
struct proto_str proto_get_blob(struct proto_reader *r);
/* True when every read succeeded and the body was consumed exactly. */
bool	 proto_reader_done(const struct proto_reader *r);

/*
 * A growable output buffer.  Writers append; an allocation failure is
 * remembered and reported once by proto_writer_failed(), so builders can
 * chain puts without checking each one.
 */
struct proto_writer {
	uint8_t	*buf;
	size_t	 len;
	size_t	 cap;
	bool	 failed;
	bool	 fixed;		/* buf is the caller's: it never grows */
};

void	proto_writer_init(struct proto_writer *w);
/*
 * A writer into cap bytes of the caller's memory (a ring record): a put
 * past them fails the writer instead of growing it.  Never freed.
 */
void	proto_writer_fixed(struct proto_writer *w, void *buf, size_t cap);
void	proto_writer_free(struct proto_writer *w);
/* Drops the first n bytes (written out). */
void	proto_writer_consume(struct proto_writer *w, size_t n);
bool	proto_writer_failed(const struct proto_writer *w);
/* Reserves n more bytes; returns a pointer to them or NULL. */
uint8_t	*proto_put_raw(struct proto_writer *w, size_t n);
void	proto_put_u32(struct proto_writer *w, uint32_t v);
void	proto_put_u64(struct proto_writer *w, uint64_t v);
void	proto_put_i32(struct proto_writer *w, int32_t v);
void	proto_put_i64(struct proto_writer *w, int64_t v);
void	proto_put_str(struct proto_writer *w, const char *s, size_t len);
void	proto_put_blob(struct proto_writer *w, const void *p, size_t len);

/*
 * Control data carrying one descriptor, for the sendmsg() of the frame
 * that declares it (nfds 1): the descriptor travels with that frame's
 * first byte.  buf must outlive the sendmsg().
 */
union proto_fd_control {
	struct cmsghdr	align;
	char		buf[CMSG_SPACE(sizeof(int))];
};

void	proto_attach_fd(struct msghdr *mh, union proto_fd_control *buf, int fd);

/* The same for a frame that declares n (at most PROTO_MAX_FDS) of them. */
union proto_fds_control {
	struct cmsghdr	align;
	char		buf[CMSG_SPACE(PROTO_MAX_FDS * sizeof(int))];
};

void	proto_attach_fds(struct msghdr *mh, union proto_fds_control *buf,
	    const int *fds, unsigned n);

/*
 * Frame building: proto_frame_begin() reserves a header and returns its
 * offset; proto_frame_end() fills the header in once the body is written.
 */
size_t	proto_frame_begin(struct proto_writer *w);
void	proto_frame_end(struct proto_writer *w, size_t start, uint16_t type,
	    uint32_t id, uint32_t flags, uint16_t nfds);

#endif /* MBX_PROTO_H */
