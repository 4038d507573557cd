/*
 * body.h - every frame body of the mbx protocol, each a struct with its
 * encoder and its decoder side by side: the code form of PROTOCOL.md's
 * body tables ("Frame types", "REPLY").  mbxd, libmbx, the tests and the
 * fuzzers encode and decode bodies here and nowhere else.
 *
 * For a body X:
 *
 *	void body_X_put(struct proto_writer *w, const struct body_X *b);
 *
 * appends the body to w, between proto_frame_begin() and
 * proto_frame_end() (the frame's type, id, flags and nfds are the
 * caller's).  A string over 65535 bytes, a blob over 4 GiB or a failed
 * allocation is left in w for proto_writer_failed(), as with the field
 * writers.
 *
 *	bool body_X_get(const void *body, size_t len, uint32_t flags,
 *	    struct body_X *out);
 *
 * decodes the len bytes of a body framed with the header flags `flags`.
 * It is true only when the bytes are exactly one such body: no field runs
 * past the end and nothing is left over.  Strings and blobs in *out are
 * views into body (no copy, no NUL): they live as long as the frame's
 * bytes.  A decoder checks the layout only; what the values mean (a name
 * that is valid, a timeout of at least -1, the flags a request may carry)
 * is for the receiver to check.  On false, *out is unspecified.
 *
 * A few header flags choose the layout: PROTO_SEND_FD, PROTO_POST_FD,
 * PROTO_MSG_FD (a u64 size where the blob would be) and PROTO_REPLY_MORE
 * (a cursor after a page).  The decoder reads them from `flags` into the
 * struct (has_fd, more); the encoder writes the layout those fields say,
 * and the caller sets the matching flags on the header.
 *
 * A sender that must not copy a large payload (libmbx writes SEND, POST
 * and SENDV payloads straight from its caller's buffer with writev) uses
 * body_X_put_head(): every field and the blob's u32 length, not the blob's
 * bytes, which the caller writes right after what w holds so that the
 * frame is whole.  The header's len must count those bytes too, which
 * proto_frame_end() cannot know: such a caller encodes its header itself
 * (proto_header_encode()).  The blob's length is payload.len; payload.ptr
 * is not read.
 *
 * Lists are read in place: an ACK's ids by index (body_ack_id()), a
 * SENDV's items one by one (body_sendv_next()) once body_sendv_get() has
 * checked them all; nothing is allocated.
 */
#ifndef MBX_BODY_H
#define MBX_BODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* HELLO: u32 version. */
struct body_hello {
	uint32_t	 version;
};

void	body_hello_put(struct proto_writer *, const struct body_hello *);
bool	body_hello_get(const void *, size_t, uint32_t, struct body_hello *);

/*
 * CREATE: str name, i64 capacity, u64 max_msg, u32 mode (0: 0600), u32 gid
 * (PROTO_ID_NONE: the creator's).
 */
struct body_create {
	struct proto_str name;
	int64_t		 capacity;
	uint64_t	 max_msg;
	uint32_t	 mode;
	uint32_t	 gid;
	uint32_t	 max_attempts;	/* 0: unlimited */
	uint32_t	 ack_timeout_ms;	/* 0: none */
	struct proto_str dead_letter;	/* empty: none */
	bool		 durable;	/* the frame's PROTO_CREATE_DURABLE */
};

/* The CREATE frame's flags for b. */
uint32_t body_create_flags(const struct body_create *b);
void	body_create_put(struct proto_writer *, const struct body_create *);
bool	body_create_get(const void *, size_t, uint32_t,
	    struct body_create *);

/* DESTROY, UNBIND and PURGE: str name, alone. */
struct body_name {
	struct proto_str name;
};

void	body_name_put(struct proto_writer *, const struct body_name *);
bool	body_name_get(const void *, size_t, uint32_t, struct body_name *);

/* BIND: str name, u32 how (enum proto_bind). */
struct body_bind {
	struct proto_str name;
	uint32_t	 how;
};

void	body_bind_put(struct proto_writer *, const struct body_bind *);
bool	body_bind_get(const void *, size_t, uint32_t, struct body_bind *);

/*
 * SEND: str name, i32 timeout_ms, then blob payload, or with has_fd
 * (PROTO_SEND_FD) u64 size, the payload's bytes in the memfd.  get sets
 * size to payload.len for an inline payload; put reads size only with
 * has_fd.
 */
struct body_send {
	struct proto_str name;
	int32_t		 timeout_ms;
	bool		 has_fd;
	uint64_t	 size;
	struct proto_str payload;
};

void	body_send_put(struct proto_writer *, const struct body_send *);
/* Without the payload's bytes (see the top of this file). */
void	body_send_put_head(struct proto_writer *, const struct body_send *);
bool	body_send_get(const void *, size_t, uint32_t, struct body_send *);

/*
 * RECV: str name (empty: any), i32 timeout_ms, u64 cap, u32 max_count,
 * u64 budget.
 */
struct body_recv {
	struct proto_str name;
	int32_t		 timeout_ms;
	uint64_t	 cap;
	uint32_t	 max_count;
	uint64_t	 budget;
	bool		 explicit_ack;	/* flag PROTO_RECV_ACK */
};

void	body_recv_put(struct proto_writer *, const struct body_recv *);
bool	body_recv_get(const void *, size_t, uint32_t, struct body_recv *);

/*
 * ACK: u64 msg_id, one or more (a body that is not a nonzero multiple of
 * 8 bytes does not decode).  put writes the count ids at ids; get points
 * wire at the count ids in the body, read with body_ack_id().
 */
struct body_ack {
	size_t		 count;
	const uint64_t	*ids;
	const uint8_t	*wire;
};

void	body_ack_put(struct proto_writer *, const struct body_ack *);
bool	body_ack_get(const void *, size_t, uint32_t, struct body_ack *);
/* The i-th id (i < count) of a decoded ACK. */
uint64_t body_ack_id(const struct body_ack *, size_t i);

/*
 * NACK: u64 msg_id, u32 delay_ms (at most PROTO_NACK_DELAY_MAX); flag
 * PROTO_ACK_REPLY asks for an answer.
 */
struct body_nack {
	uint64_t	 msg_id;
	uint32_t	 delay_ms;
	bool		 reply;
};

void	body_nack_put(struct proto_writer *, const struct body_nack *);
bool	body_nack_get(const void *, size_t, uint32_t, struct body_nack *);

/* REBIND: str name, u64 client_id. */
struct body_rebind {
	struct proto_str name;
	uint64_t	 client_id;
};

void	body_rebind_put(struct proto_writer *, const struct body_rebind *);
bool	body_rebind_get(const void *, size_t, uint32_t,
	    struct body_rebind *);

/*
 * LIST and CLIENTS: empty, or with has_cursor str cursor (the page to
 * start from; an empty cursor is the first page, as an empty body).
 */
struct body_list {
	bool		 has_cursor;
	struct proto_str cursor;
};

void	body_list_put(struct proto_writer *, const struct body_list *);
bool	body_list_get(const void *, size_t, uint32_t, struct body_list *);

/* CHMOD: str name, u32 mode. */
struct body_chmod {
	struct proto_str name;
	uint32_t	 mode;
};

void	body_chmod_put(struct proto_writer *, const struct body_chmod *);
bool	body_chmod_get(const void *, size_t, uint32_t, struct body_chmod *);

/* CHOWN: str name, u32 uid, u32 gid (PROTO_ID_NONE: unchanged). */
struct body_chown {
	struct proto_str name;
	uint32_t	 uid;
	uint32_t	 gid;
};

void	body_chown_put(struct proto_writer *, const struct body_chown *);
bool	body_chown_get(const void *, size_t, uint32_t, struct body_chown *);

/*
 * SENDV: u32 count, then count items of str name, blob payload.
 * body_sendv_put() writes the count; the caller then writes count items
 * with body_sendv_item_put() or body_sendv_item_put_head().
 * body_sendv_get() checks every item and leaves `items` at the first, for
 * body_sendv_next().
 */
struct body_sendv {
	uint32_t	 count;
	struct proto_reader items;
};

struct body_sendv_item {
	struct proto_str name;
	struct proto_str payload;
};

/* The bytes of an item before its payload's, for a name of n bytes. */
#define BODY_SENDV_ITEM_HEAD(n)	(2 + (size_t)(n) + 4)

void	body_sendv_put(struct proto_writer *, const struct body_sendv *);
void	body_sendv_item_put(struct proto_writer *,
	    const struct body_sendv_item *);
/* Without the payload's bytes (see the top of this file). */
void	body_sendv_item_put_head(struct proto_writer *,
	    const struct body_sendv_item *);
bool	body_sendv_get(const void *, size_t, uint32_t, struct body_sendv *);
/* The next item of a decoded SENDV into *item; false after the last. */
bool	body_sendv_next(struct body_sendv *, struct body_sendv_item *item);

/*
 * POST: u64 mailbox_id, then blob payload, or with has_fd (PROTO_POST_FD)
 * u64 size.  size and payload as in struct body_send.
 */
struct body_post {
	uint64_t	 mailbox_id;
	bool		 has_fd;
	uint64_t	 size;
	struct proto_str payload;
};

/* The bytes of an inline POST before its payload's. */
#define BODY_POST_HEAD		(8 + 4)

void	body_post_put(struct proto_writer *, const struct body_post *);
/* Without the payload's bytes (see the top of this file). */
void	body_post_put_head(struct proto_writer *, const struct body_post *);
bool	body_post_get(const void *, size_t, uint32_t, struct body_post *);

/*
 * REPLY: u32 status (enum proto_status), then what the request asks for
 * (PROTOCOL.md, "REPLY").  The answerer knows which request it answers,
 * and so does the asker once it has matched the id: each kind of answer
 * has its body here.  body_reply_status() reads the status alone, for an
 * asker that handles every error status alike whatever follows it.
 */
bool	body_reply_status(const void *, size_t, uint32_t *status);

/* The answer to every request not below: the status alone. */
struct body_reply {
	uint32_t	 status;
};

void	body_reply_put(struct proto_writer *, const struct body_reply *);
bool	body_reply_get(const void *, size_t, uint32_t, struct body_reply *);

/* To HELLO, whatever the status: u32 version, u64 client_id. */
struct body_reply_hello {
	uint32_t	 status;
	uint32_t	 version;
	uint64_t	 client_id;
};

void	body_reply_hello_put(struct proto_writer *,
	    const struct body_reply_hello *);
bool	body_reply_hello_get(const void *, size_t, uint32_t,
	    struct body_reply_hello *);

/*
 * To LIST and CLIENTS: after OK, blob json (one page), then with more
 * (PROTO_REPLY_MORE) str cursor; after another status, nothing.
 */
struct body_reply_page {
	uint32_t	 status;
	struct proto_str json;
	bool		 more;
	struct proto_str cursor;
};

void	body_reply_page_put(struct proto_writer *,
	    const struct body_reply_page *);
bool	body_reply_page_get(const void *, size_t, uint32_t,
	    struct body_reply_page *);

/*
 * To SEND: after OK, nothing or (has_grant) a credit grant: u64
 * mailbox_id, u32 count, u64 bytes, u64 max_msg; after another status,
 * nothing.  The header's PROTO_REPLY_ZEROCOPY and PROTO_REPLY_SHARED
 * qualify the grant; they do not change the layout.
 */
struct body_reply_send {
	uint32_t	 status;
	bool		 has_grant;
	uint64_t	 mailbox_id;
	uint32_t	 count;
	uint64_t	 bytes;
	uint64_t	 max_msg;
};

void	body_reply_send_put(struct proto_writer *,
	    const struct body_reply_send *);
bool	body_reply_send_get(const void *, size_t, uint32_t,
	    struct body_reply_send *);

/* To SENDV, whatever the status: u32 enqueued. */
struct body_reply_sendv {
	uint32_t	 status;
	uint32_t	 enqueued;
};

void	body_reply_sendv_put(struct proto_writer *,
	    const struct body_reply_sendv *);
bool	body_reply_sendv_get(const void *, size_t, uint32_t,
	    struct body_reply_sendv *);

/* To CHANNEL: u32 status, and when it is OK u32 ring size. */
struct body_reply_channel {
	uint32_t	 status;
	uint32_t	 ring_size;
};

void	body_reply_channel_put(struct proto_writer *,
	    const struct body_reply_channel *);
bool	body_reply_channel_get(const void *, size_t, uint32_t,
	    struct body_reply_channel *);

/* GRANT_CHECK: u64 from, a position in the connection's tx ring. */
struct body_grant_check {
	uint64_t	 from;
};

void	body_grant_check_put(struct proto_writer *,
	    const struct body_grant_check *);
bool	body_grant_check_get(const void *, size_t, uint32_t,
	    struct body_grant_check *);

/* The most positions one GRANT_CHECK answer carries. */
#define BODY_DROPPED_MAX	64

/*
 * To GRANT_CHECK: u32 status, and when it is OK u32 n (at most
 * BODY_DROPPED_MAX), then n x u64 position, rising: the records at or
 * after the asked position that mbxd dropped.
 */
struct body_reply_grant_check {
	uint32_t	 status;
	uint32_t	 n;
	uint64_t	 pos[BODY_DROPPED_MAX];
};

void	body_reply_grant_check_put(struct proto_writer *,
	    const struct body_reply_grant_check *);
bool	body_reply_grant_check_get(const void *, size_t, uint32_t,
	    struct body_reply_grant_check *);

/*
 * MSG: u64 msg_id, str mailbox, u64 sender_id, u32 pid, u32 uid, then
 * blob payload, or with has_fd (PROTO_MSG_FD) u64 size.  size and payload
 * as in struct body_send.
 */
struct body_msg {
	uint64_t	 msg_id;
	struct proto_str mailbox;
	uint64_t	 sender_id;
	uint32_t	 pid;
	uint32_t	 uid;
	uint32_t	 attempt;	/* 1 on the first delivery */
	struct proto_str origin;	/* a dead letter's mailbox, else empty */
	uint32_t	 origin_attempts; /* its deliveries there */
	bool		 has_fd;
	uint64_t	 size;
	struct proto_str payload;
};

void	body_msg_put(struct proto_writer *, const struct body_msg *);
/* Without the payload's bytes (see the top of this file). */
void	body_msg_put_head(struct proto_writer *, const struct body_msg *);
bool	body_msg_get(const void *, size_t, uint32_t, struct body_msg *);

/*
 * REVOKE: u32 what (PROTO_REVOKE_*), str mailbox, u64 mailbox_id, and for
 * PROTO_REVOKE_MSG alone u64 msg_id.
 */
struct body_revoke {
	uint32_t	 what;
	struct proto_str mailbox;
	uint64_t	 mailbox_id;
	uint64_t	 msg_id;	/* PROTO_REVOKE_MSG */
};

void	body_revoke_put(struct proto_writer *, const struct body_revoke *);
bool	body_revoke_get(const void *, size_t, uint32_t,
	    struct body_revoke *);

#endif /* MBX_BODY_H */
