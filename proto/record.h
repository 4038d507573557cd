/*
 * record.h - the records of a durable mailbox's log (PROTOCOL.md,
 * "Durable mailboxes") and of the state a planned restart hands over
 * ("The state"), as body.h is for frames: their framing, with a CRC-32C
 * each, and their bodies, little-endian like the wire.
 *
 * A record: u32 length of what follows the checksum, u32 CRC-32C of it,
 * u8 type, body.  The reader takes a record only whole and checked:
 * record_next() tells a torn or corrupt one from the end.
 */
#ifndef MBX_RECORD_H
#define MBX_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define RECORD_HEAD	8	/* u32 length, u32 CRC-32C */

enum record_type {
	RECORD_ATTR = 1,	/* the mailbox's attributes and owner */
	RECORD_PUT = 2,		/* a message accepted */
	RECORD_DEL = 3,		/* a message received or removed for good */
	RECORD_HAND = 4,	/* a message handed out: its attempts */
	/* The restart state: STATE first, COUNT last, PUTs after a MAILBOX. */
	RECORD_STATE = 5,	/* its version and the broker's counters */
	RECORD_MAILBOX = 6,	/* a mailbox; its messages follow (PUT) */
	RECORD_COUNT = 7,	/* the last: what came before it, counted */
	RECORD_DELAY = 8,	/* the PUT before it waits (NACK): minor 1 */
};

/* The restart state's version: another major is refused, a newer minor's
 * unknown records are skipped. */
#define RECORD_STATE_MAJOR	1
#define RECORD_STATE_MINOR	1

/* ATTR: i64 capacity, u64 max_msg, u32 mode, uid, gid, max_attempts,
 * ack_timeout_ms, str dead_letter. */
struct record_attr {
	int64_t		 capacity;
	uint64_t	 max_msg;
	uint32_t	 mode;
	uint32_t	 uid;
	uint32_t	 gid;
	uint32_t	 max_attempts;
	uint32_t	 ack_timeout_ms;
	struct proto_str dead_letter;
};

/* PUT: u64 seq, u64 sender_id, u32 pid, u32 uid, u32 attempts, str
 * origin, u32 origin_attempts, blob payload. */
struct record_msg {
	uint64_t	 seq;		/* its number in its log, from 1 */
	uint64_t	 sender_id;
	uint32_t	 pid;
	uint32_t	 uid;
	uint32_t	 attempts;	/* deliveries so far */
	struct proto_str origin;	/* a dead letter: where from */
	uint32_t	 origin_attempts;
	struct proto_str payload;
};

/* STATE: u32 major, u32 minor, u64 next_peer_id, next_mailbox_id,
 * next_msg_id. */
struct record_state {
	uint32_t	 major;
	uint32_t	 minor;
	uint64_t	 next_peer_id;
	uint64_t	 next_mailbox_id;
	uint64_t	 next_msg_id;
};

/* MAILBOX: str name, then ATTR's body, then u64 sent, received,
 * redelivered, dead. */
struct record_mailbox {
	struct proto_str name;
	struct record_attr attr;
	uint64_t	 sent;
	uint64_t	 received;
	uint64_t	 redelivered;
	uint64_t	 dead;
};

/* CRC-32C (Castagnoli). */
uint32_t record_crc32c(uint32_t crc, const void *data, size_t len);

/*
 * Appends one whole record to w; false (w as it was) when out of memory.
 * record_put() frames any body (the others build theirs).
 */
bool	record_put(struct proto_writer *w, uint8_t type, const void *body,
	    size_t len);
bool	record_attr_put(struct proto_writer *w, const struct record_attr *a);
bool	record_msg_put(struct proto_writer *w, const struct record_msg *m);
bool	record_state_put(struct proto_writer *w, const struct record_state *s);
bool	record_mailbox_put(struct proto_writer *w,
	    const struct record_mailbox *m);
/* DELAY: u64 due, CLOCK_MONOTONIC ms (they run on across a restart). */
bool	record_delay_put(struct proto_writer *w, uint64_t due_ms);
/* COUNT: u64 mailboxes, u64 messages (the MAILBOX and PUT records). */
bool	record_count_put(struct proto_writer *w, uint64_t mailboxes,
	    uint64_t messages);
/* DEL: u64 seq. */
bool	record_del_put(struct proto_writer *w, uint64_t seq);
/* HAND: u64 seq, u32 attempts. */
bool	record_hand_put(struct proto_writer *w, uint64_t seq,
	    uint32_t attempts);

enum record_read {
	RECORD_OK,
	RECORD_END,		/* no byte left */
	RECORD_TORN,		/* short, or its checksum is wrong */
};

/*
 * The record at *off of buf (size bytes): its type and body (pointing
 * into buf), *off moved past it.
 */
enum record_read record_next(const uint8_t *buf, uint64_t size,
	    uint64_t *off, uint8_t *type, const uint8_t **body, size_t *len);

/* Bodies; false when one does not decode (a corrupt record). */
bool	record_attr_get(const uint8_t *body, size_t len,
	    struct record_attr *a);
bool	record_msg_get(const uint8_t *body, size_t len, struct record_msg *m);
bool	record_state_get(const uint8_t *body, size_t len,
	    struct record_state *s);
bool	record_mailbox_get(const uint8_t *body, size_t len,
	    struct record_mailbox *m);
bool	record_delay_get(const uint8_t *body, size_t len, uint64_t *due_ms);
bool	record_count_get(const uint8_t *body, size_t len,
	    uint64_t *mailboxes, uint64_t *messages);
bool	record_del_get(const uint8_t *body, size_t len, uint64_t *seq);
bool	record_hand_get(const uint8_t *body, size_t len, uint64_t *seq,
	    uint32_t *attempts);

#endif
