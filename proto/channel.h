/*
 * channel.h - the shared memory of a version 6 channel (PROTOCOL.md,
 * "Version 6: the data path"): its layout, its records, and the two ends
 * of a ring.
 *
 * A channel is two page sets, each written by one side only:
 *
 *	client set (the client writes, mbxd reads)
 *	0		the client's control line (CHANNEL_CLIENT_*)
 *	4096		the tx ring: posts, CHANNEL_RING_SIZE bytes
 *
 *	daemon set (mbxd writes, the client maps it read-only)
 *	0		the daemon's control line (CHANNEL_DAEMON_*)
 *	4096		the grant slots (CHANNEL_GRANTS of them)
 *	8192		the rx ring: deliveries, CHANNEL_RING_SIZE bytes
 *
 * Both processes run on one host, so the words are in host byte order;
 * every field is a naturally aligned 64-bit word at a fixed offset, read
 * and written with the atomic accessors below, never through a C struct
 * (the two sides may be built by different compilers).  Positions are
 * byte counters that only grow; a position's place in the ring is the
 * counter modulo CHANNEL_RING_SIZE.  Each control line is one cache line
 * with one writer, so neither side's stores bounce the other's line.
 *
 * A ring holds records: a CHANNEL_REC_HEADER-byte header (u32 len, u16
 * kind, u16 flags, u64 stamp) and len bytes of body padded to 16 bytes (so
 * that the end of a ring always has room for a PAD header).  A
 * record never wraps: a PAD record fills the end of the ring instead.
 * The writer owns its ring; the reader treats it as hostile memory: it
 * copies each header once, checks it, and copies the body out before
 * anyone looks at it, so a writer that rewrites its ring meanwhile can
 * only corrupt its own records (channel_rx_*).
 *
 * No I/O, no clock and no policy live here: the callers read the clock,
 * decide what a stamp may be (channel_stamp_clamp() is the rule), and
 * wake a sleeping side through the socket.
 */
#ifndef MBX_CHANNEL_H
#define MBX_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * 256 KiB rings: at 64 KiB the prototype moved 4 KiB messages at 0.36x
 * POSIX mq (a wake-up every few messages), at 256 KiB at 1.24x
 * (PROTOCOL.md, "What was measured").
 */
#define CHANNEL_RING_SIZE	(256u * 1024)
#define CHANNEL_PAGE		4096u
#define CHANNEL_LINE		64u

#define CHANNEL_CLIENT_RING	CHANNEL_PAGE
#define CHANNEL_CLIENT_SIZE	(CHANNEL_CLIENT_RING + CHANNEL_RING_SIZE)
#define CHANNEL_DAEMON_GRANTS	CHANNEL_PAGE
#define CHANNEL_DAEMON_RING	(2 * CHANNEL_PAGE)
#define CHANNEL_DAEMON_SIZE	(CHANNEL_DAEMON_RING + CHANNEL_RING_SIZE)

/* The client's control line: offsets in the client set. */
#define CHANNEL_CLIENT_TX_TAIL	0	/* end of what it posted */
#define CHANNEL_CLIENT_RX_HEAD	8	/* consumption: end of what it took */
#define CHANNEL_CLIENT_SLEEP	16	/* CHANNEL_WANT_*: it sleeps */
#define CHANNEL_CLIENT_CONSUMED	24	/* PROTO_MSG_STORE messages numbered
					 * below this are received */

/* The daemon's control line: offsets in the daemon set. */
#define CHANNEL_DAEMON_TX_HEAD	0	/* end of the posts it consumed */
#define CHANNEL_DAEMON_RX_TAIL	8	/* end of what it delivered */
#define CHANNEL_DAEMON_REVOKE	16	/* revocation sequence */
#define CHANNEL_DAEMON_NOTICE	24	/* REVOKE frames queued, in all */
#define CHANNEL_DAEMON_SLEEP	32	/* CHANNEL_WANT_*: it sleeps */
#define CHANNEL_DAEMON_TAKEBACK	40	/* moves before messages the client
					 * holds are taken from it */
#define CHANNEL_DAEMON_WATCH	48	/* nonzero: ring the doorbell after
					 * a store to CONSUMED */
#define CHANNEL_DAEMON_FINAL	56	/* nonzero: a planned restart settled
					 * the connection for good, taking
					 * the posts below TX_HEAD and the
					 * messages numbered below FINAL - 1
					 * (PROTOCOL.md, "The restart") */

/*
 * What a side that sleeps waits for.  Data wakes it at once (latency);
 * room wakes it only once half the ring is free, so that a full ring
 * drains in batches, not with one wake-up per record (without this
 * hysteresis the prototype fell into a wake-up per message).
 */
#define CHANNEL_WANT_DATA	1u
#define CHANNEL_WANT_ROOM	2u

/*
 * One grant slot: the totals a sender may post into one mailbox, which
 * only grow, and the revocation mark (PROTOCOL.md, "Grants in shared
 * memory").  Offsets within a slot.
 */
#define CHANNEL_GRANT_SIZE	32u
#define CHANNEL_GRANTS		(CHANNEL_PAGE / CHANNEL_GRANT_SIZE)
#define CHANNEL_GRANT_MAILBOX	0	/* mailbox id; 0: slot unused */
#define CHANNEL_GRANT_COUNT	8	/* messages granted, in all */
#define CHANNEL_GRANT_BYTES	16	/* payload bytes granted, in all */
#define CHANNEL_GRANT_REVOKED	24	/* nonzero: post no more */

#define CHANNEL_REC_HEADER	16u
#define CHANNEL_REC_ALIGN	16u
/*
 * The largest record body: larger payloads travel through the buffer
 * pools, since a 64 KiB record in a 256 KiB ring moved 22 k msg/s.
 */
#define CHANNEL_REC_MAX		(CHANNEL_RING_SIZE / 16)

enum channel_kind {
	CHANNEL_PAD = 1,	/* fills the end of the ring: skipped */
	CHANNEL_POST = 2,	/* tx: a POST body (proto.h) */
	CHANNEL_MSG = 3,	/* rx: a MSG body (proto.h) */
	CHANNEL_KIND_MAX
};

/* A record's header, as the reader copied it. */
struct channel_rec {
	uint32_t	len;		/* body bytes, before padding */
	uint16_t	kind;
	uint16_t	flags;
	uint64_t	stamp;		/* CLOCK_MONOTONIC ns, the writer's word */
};

/* The ring bytes a record of len body bytes takes. */
size_t	 channel_rec_need(size_t len);

/* Atomic access to a word of a page set (off: a CHANNEL_* offset). */
uint64_t channel_load(const void *set, size_t off);
void	 channel_store(void *set, size_t off, uint64_t v);
/* A full fence: the store-then-look half of the wake-up protocol. */
void	 channel_fence(void);

/*
 * The writing end of a ring, in the writer's own memory.  tail is the
 * end of what it reserved; published is what the reader may see; head is
 * where the reader says it is (read from the other side's line by the
 * caller and passed in, so that this code never trusts a stale copy).
 */
struct channel_tx {
	uint8_t		*ring;		/* CHANNEL_RING_SIZE bytes */
	uint64_t	 tail;
	uint64_t	 published;
};

void	 channel_tx_init(struct channel_tx *tx, uint8_t *ring, uint64_t tail);
/*
 * Room for one record of len body bytes (len at most CHANNEL_REC_MAX),
 * given the reader's head: a pointer to its body, which the caller fills
 * before channel_tx_publish(), or NULL when the ring is too full now.
 * A PAD record is written first when the record would cross the end.
 */
void	*channel_tx_reserve(struct channel_tx *tx, uint64_t head,
	    uint16_t kind, uint16_t flags, uint64_t stamp, size_t len);
/* Whether channel_tx_reserve() of len bytes would succeed now. */
bool	 channel_tx_fits(const struct channel_tx *tx, uint64_t head,
	    size_t len);
/*
 * The position to store into the writer's tail word: every record
 * reserved so far becomes visible once it is stored (with release
 * order: channel_store()).
 */
uint64_t channel_tx_publish(struct channel_tx *tx);
/*
 * True when a writer waiting for room should be woken: the reader, at
 * head, has freed at least half of the ring written up to tail.
 */
bool	 channel_room_wake(uint64_t tail, uint64_t head);

/*
 * The reading end of a ring that the other side writes.  head is the end
 * of what this side took; tail the writer's tail as last accepted by
 * channel_rx_limit().
 */
struct channel_rx {
	const uint8_t	*ring;
	uint64_t	 head;
	uint64_t	 tail;
	bool		 peeked;	/* rec holds the next record's header */
	struct channel_rec rec;
};

enum channel_read {
	CHANNEL_READ_OK = 0,
	CHANNEL_READ_EMPTY = 1,		/* nothing up to the tail */
	CHANNEL_READ_MALFORMED = -1,	/* the writer broke the rules */
};

void	 channel_rx_init(struct channel_rx *rx, const uint8_t *ring,
	    uint64_t head);
/*
 * Accepts the writer's tail word (read once by the caller): MALFORMED
 * when it went backwards, claims more than a ring beyond the head, or
 * either end is not on a record boundary (CHANNEL_REC_ALIGN).
 */
enum channel_read channel_rx_limit(struct channel_rx *rx, uint64_t tail);
/*
 * The header of the next record, copied once and checked (its kind is
 * known, it lies wholly before the tail and the ring's end, its body is
 * at most cap bytes); PAD records are skipped.  Peeking again returns the
 * same copy until channel_rx_take() or channel_rx_skip().
 */
enum channel_read channel_rx_peek(struct channel_rx *rx, size_t cap,
	    struct channel_rec *rec);
/*
 * Copies the peeked record's body (rec->len bytes, as peeked, whatever the
 * ring says now) into dst and moves past it.
 */
void	 channel_rx_take(struct channel_rx *rx, void *dst);
/* Moves past the peeked record without copying it. */
void	 channel_rx_skip(struct channel_rx *rx);
/*
 * Where the peeked record starts (after any PAD): a reader that takes
 * records in two steps (headers first, bodies once it knows which it
 * keeps, as mbxd's passes do) notes it, then copies with
 * channel_rx_copy() and comes back with channel_rx_rewind().
 */
uint64_t channel_rx_pos(const struct channel_rx *rx);
/*
 * Copies len bytes from offset off of the body of the record at pos,
 * whose header rec was peeked there; off + len must be at most rec->len
 * (the caller's copy, never the ring's), else nothing is copied and the
 * answer is false.
 */
bool	 channel_rx_copy(const struct channel_rx *rx, uint64_t pos,
	    const struct channel_rec *rec, size_t off, void *dst, size_t len);
/* Goes back to pos, a record's start this reader peeked, to read on. */
void	 channel_rx_rewind(struct channel_rx *rx, uint64_t pos);

/*
 * A stamp is the writer's word: the reader keeps it within [lo, hi), lo
 * being the latest of its last look at an empty source and the last stamp
 * it took from that source, hi the time of its read of the tail, after
 * which no honest record of that source was published.  A lying writer
 * can therefore place its own records only where it could have sent them
 * honestly (PROTOCOL.md, "The order rule").  lo must be a clock reading
 * taken before a look that found the source empty (a pass's start) or a
 * stamp already taken from it: raising a stamp to it never moves a record
 * past its true publication.  lo < hi is the caller's.
 */
uint64_t channel_stamp_clamp(uint64_t stamp, uint64_t lo, uint64_t hi);

#endif /* MBX_CHANNEL_H */
