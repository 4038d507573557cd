/*
 * raw.h - raw protocol frames for the end-to-end suites: what libmbx
 * cannot be made to send (malformed, out of order, with odd descriptors)
 * and answers read without libmbx, on a connection from
 * harness_raw_connect() / harness_raw_hello() (harness.h).
 *
 * Every function here asserts (ck_assert): call them only from the test
 * process itself, never from a forked helper.  Writers take the body as
 * given and check nothing about it: a test that means to send bad bytes
 * builds them and writes them with raw_frame() or raw_write_fd().
 */
#ifndef MBX_TESTS_RAW_H
#define MBX_TESTS_RAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "body.h"
#include "proto.h"

/*
 * Frames appended to w, for a test that writes many at once (raw_flush())
 * or in pieces of its own (one byte at a time): each a valid body encoded
 * by body.h, with the name of len bytes as given.
 */

void	 raw_put_hello(struct proto_writer *w, uint32_t id);
void	 raw_put_create(struct proto_writer *w, uint32_t id, const char *name,
	    size_t len, int64_t cap, uint64_t max_msg, uint32_t mode);
/* A request whose body is one str name (DESTROY, UNBIND, PURGE...). */
void	 raw_put_name(struct proto_writer *w, uint16_t type, uint32_t id,
	    const char *name, size_t len);
void	 raw_put_bind(struct proto_writer *w, uint32_t id, const char *name,
	    size_t len, uint32_t how);
/* An inline SEND. */
void	 raw_put_send(struct proto_writer *w, uint32_t id, uint32_t flags,
	    const char *name, size_t len, int32_t timeout, const void *data,
	    size_t dlen);
/* A memfd SEND (flags | PROTO_SEND_FD, one descriptor) of size bytes. */
void	 raw_put_send_fd(struct proto_writer *w, uint32_t id, uint32_t flags,
	    const char *name, size_t len, int32_t timeout, uint64_t size);
void	 raw_put_recv(struct proto_writer *w, uint32_t id, const char *name,
	    size_t len, int32_t timeout, uint64_t cap, uint32_t max_count,
	    uint64_t budget);
/* An ACK of the n ids (flags: PROTO_ACK_REPLY or 0). */
void	 raw_put_ack(struct proto_writer *w, uint32_t id, uint32_t flags,
	    const uint64_t *ids, size_t n);
/* LIST or CLIENTS from cursor (len 0: the first page, an empty body). */
void	 raw_put_list(struct proto_writer *w, uint16_t type, uint32_t id,
	    const char *cursor, size_t len);
/* Writes what w holds and empties it (w stays the caller's). */
void	 raw_flush(int fd, struct proto_writer *w);

/*
 * Frames written
 */

/* One frame: header (nfds as given, none attached) and body b (NULL: empty). */
void	 raw_frame(int fd, uint16_t type, uint32_t id, uint32_t flags,
	    uint16_t nfds, const struct proto_writer *b);
/* The frame(s) in w with descriptor fd attached (none if -1); frees w. */
void	 raw_write_fd(int sock, struct proto_writer *w, int fd);
/* sendmsg() of len bytes with nfds (1..16) descriptors; true when whole. */
bool	 raw_send_fds(int sock, const void *buf, size_t len, const int *fds,
	    int nfds);
/*
 * A frame of type whose body is the str name then tail; false when the
 * daemon has closed the connection.
 */
bool	 raw_named(int sock, uint16_t type, uint32_t id, const char *name,
	    const void *tail, size_t tail_len);

/* A request whose body is one str name (DESTROY, UNBIND, PURGE...). */
void	 raw_name_req(int fd, uint16_t type, uint32_t id, const char *name,
	    size_t len);
/* CREATE of name (len bytes) with capacity cap, default max_msg, 0666. */
void	 raw_create(int fd, uint32_t id, const char *name, size_t len,
	    int64_t cap);
void	 raw_bind(int fd, uint32_t id, const char *name, size_t len,
	    uint32_t how);
/* A BIND of name, exclusive, answered OK (REVOKE notices skipped). */
void	 raw_bind_ok(int sock, uint32_t id, const char *name);
/* RECV of one message of at most cap bytes (cap also the budget). */
void	 raw_recv(int fd, uint32_t id, const char *name, size_t len,
	    int32_t timeout, uint64_t cap);
/* SEND of an inline payload. */
void	 raw_send(int fd, uint32_t id, const char *name, size_t len,
	    const void *data, size_t dlen, uint32_t flags, int32_t timeout);
/* A memfd SEND of size bytes to name (flags | PROTO_SEND_FD); fd stays ours. */
void	 raw_send_fd(int sock, const char *name, uint32_t id, uint32_t flags,
	    int fd, uint64_t size);
/* A memfd POST on the grant of mailbox_id (flags | PROTO_POST_FD). */
void	 raw_post_fd(int sock, uint32_t id, uint64_t mailbox_id,
	    uint32_t flags, int fd, uint64_t size);
/* An ACK of msg_id that asks for no answer. */
void	 raw_ack(int fd, uint32_t id, uint64_t msg_id);
/* An ACK of msg_id that asks for an answer (PROTO_ACK_REPLY): its status. */
uint32_t raw_ack_reply(int fd, uint32_t id, uint64_t msg_id);
/* A round trip (LIST): everything written before is read; asserts OK. */
void	 raw_sync(int fd, uint32_t id);

/*
 * Frames read
 */

/*
 * Reads the REPLY to id (the next frame): its status; *flags and, when
 * the reply carries a grant, *mailbox_id (else 0), when not NULL.
 */
uint32_t raw_reply(int fd, uint32_t id, uint32_t *flags,
	    uint64_t *mailbox_id);
uint32_t raw_status(int fd, uint32_t id);
/* raw_status(), and the whole body in *rest (malloc'd) when not NULL. */
uint32_t raw_status_body(int fd, uint32_t id, uint8_t **rest,
	    size_t *rest_len);
/* The msg_id of the MSG answering id (the next frame). */
uint64_t raw_msg_id(int fd, uint32_t id);
/*
 * The next frame but REVOKE notices (harness_raw_read_fd()): 1, 0 on
 * EOF, -1 on a time-out or after 64 notices.
 */
int	 raw_next(int sock, uint16_t *type, uint32_t *id, uint32_t *flags,
	    uint8_t **body, size_t *len, int *fd);
/*
 * The REPLY to the SEND id (the next frame), decoded into *out (asserted
 * to decode); its status.  *flags when not NULL.
 */
uint32_t raw_reply_send(int fd, uint32_t id, uint32_t *flags,
	    struct body_reply_send *out);
/*
 * The next frame but REVOKE notices of id 0 (at most 16), which must be
 * of type and answer id: its body (malloc'd) in *body, *len and *flags
 * when not NULL.
 */
void	 raw_expect(int fd, uint16_t type, uint32_t id, uint32_t *flags,
	    uint8_t **body, size_t *len);
/* raw_expect() of a REPLY: its status. */
uint32_t raw_expect_status(int fd, uint32_t id);
/* raw_reply() after REVOKEs, no descriptor with it; *mailbox_id always. */
uint32_t raw_reply_skip(int sock, uint32_t id, uint32_t *flags,
	    uint64_t *mailbox_id);
/*
 * True when the daemon closes fd (EOF or reset) within the wait bound,
 * after at most frames frames (whatever it answers before closing).
 */
bool	 raw_closed(int fd, int frames);

#endif
