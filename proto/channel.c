/*
 * channel.c - the two ends of a version 6 ring (channel.h).
 *
 * The writer trusts its own memory and nobody else's word: it never
 * lets its tail run more than a ring past the head it is given.  The
 * reader trusts nothing in the ring: a header is copied once into
 * struct channel_rx and only that copy is looked at, a body is copied out
 * with the length the copy says, and every position is checked against
 * the tail accepted by channel_rx_limit() and the ring's end before a
 * byte is read, so the worst a hostile writer can do is feed garbage
 * into its own records, which the caller's decoder then refuses.
 */
#include <string.h>

#include "channel.h"

/* The header's layout in the ring (host order: see channel.h). */
#define REC_LEN		0
#define REC_KIND	4
#define REC_FLAGS	6
#define REC_STAMP	8

_Static_assert(CHANNEL_REC_ALIGN == CHANNEL_REC_HEADER &&
    CHANNEL_RING_SIZE % CHANNEL_REC_ALIGN == 0,
    "a PAD header must always fit at the end of a ring");

size_t
channel_rec_need(size_t len)
{
	return CHANNEL_REC_HEADER +
	    ((len + CHANNEL_REC_ALIGN - 1) & ~(size_t)(CHANNEL_REC_ALIGN - 1));
}

uint64_t
channel_load(const void *set, size_t off)
{
	return __atomic_load_n((const uint64_t *)((const uint8_t *)set + off),
	    __ATOMIC_ACQUIRE);
}

void
channel_store(void *set, size_t off, uint64_t v)
{
	__atomic_store_n((uint64_t *)((uint8_t *)set + off), v,
	    __ATOMIC_RELEASE);
}

void
channel_fence(void)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static void
rec_write(uint8_t *at, uint32_t len, uint16_t kind, uint16_t flags,
    uint64_t stamp)
{
	memcpy(at + REC_LEN, &len, sizeof(len));
	memcpy(at + REC_KIND, &kind, sizeof(kind));
	memcpy(at + REC_FLAGS, &flags, sizeof(flags));
	memcpy(at + REC_STAMP, &stamp, sizeof(stamp));
}

void
channel_tx_init(struct channel_tx *tx, uint8_t *ring, uint64_t tail)
{
	tx->ring = ring;
	tx->tail = tail;
	tx->published = tail;
}

/* The PAD a record of need bytes at the tail needs first (0: none). */
static size_t
tx_pad(const struct channel_tx *tx, size_t need)
{
	size_t off = tx->tail % CHANNEL_RING_SIZE;

	return off + need > CHANNEL_RING_SIZE ? CHANNEL_RING_SIZE - off : 0;
}

bool
channel_tx_fits(const struct channel_tx *tx, uint64_t head, size_t len)
{
	size_t need;

	if (len > CHANNEL_REC_MAX || head > tx->tail)
		return false;
	need = channel_rec_need(len);
	return tx->tail + tx_pad(tx, need) + need - head <= CHANNEL_RING_SIZE;
}

void *
channel_tx_reserve(struct channel_tx *tx, uint64_t head, uint16_t kind,
    uint16_t flags, uint64_t stamp, size_t len)
{
	size_t off = tx->tail % CHANNEL_RING_SIZE, need, pad;

	if (!channel_tx_fits(tx, head, len))
		return NULL;
	need = channel_rec_need(len);
	pad = tx_pad(tx, need);
	if (pad > 0) {
		/*
		 * The end of the ring always has room for a PAD header:
		 * positions, records and the ring are multiples of
		 * CHANNEL_REC_ALIGN, which is CHANNEL_REC_HEADER.
		 */
		rec_write(tx->ring + off, (uint32_t)(pad - CHANNEL_REC_HEADER),
		    CHANNEL_PAD, 0, 0);
		tx->tail += pad;
		off = 0;
	}
	rec_write(tx->ring + off, (uint32_t)len, kind, flags, stamp);
	tx->tail += need;
	return tx->ring + off + CHANNEL_REC_HEADER;
}

uint64_t
channel_tx_publish(struct channel_tx *tx)
{
	tx->published = tx->tail;
	return tx->published;
}

bool
channel_room_wake(uint64_t tail, uint64_t head)
{
	return head <= tail && tail - head <= CHANNEL_RING_SIZE / 2;
}

void
channel_rx_init(struct channel_rx *rx, const uint8_t *ring, uint64_t head)
{
	rx->ring = ring;
	rx->head = head;
	rx->tail = head;
	rx->peeked = false;
}

enum channel_read
channel_rx_limit(struct channel_rx *rx, uint64_t tail)
{
	/*
	 * The head is ours, but a reader set up on a misaligned one would
	 * read a header across the ring's end: refuse it here too.
	 */
	if (tail < rx->tail || tail - rx->head > CHANNEL_RING_SIZE ||
	    tail % CHANNEL_REC_ALIGN != 0 || rx->head % CHANNEL_REC_ALIGN != 0)
		return CHANNEL_READ_MALFORMED;
	rx->tail = tail;
	return CHANNEL_READ_OK;
}

/* Copies the header at the head once and checks it against the limits. */
static enum channel_read
rx_header(struct channel_rx *rx, struct channel_rec *rec)
{
	size_t off = rx->head % CHANNEL_RING_SIZE;
	const uint8_t *at = rx->ring + off;
	uint64_t need;

	if (rx->tail - rx->head < CHANNEL_REC_HEADER)
		return CHANNEL_READ_MALFORMED;	/* a torn record */
	memcpy(&rec->len, at + REC_LEN, sizeof(rec->len));
	memcpy(&rec->kind, at + REC_KIND, sizeof(rec->kind));
	memcpy(&rec->flags, at + REC_FLAGS, sizeof(rec->flags));
	memcpy(&rec->stamp, at + REC_STAMP, sizeof(rec->stamp));
	need = channel_rec_need(rec->len);
	if (rec->kind == 0 || rec->kind >= CHANNEL_KIND_MAX ||
	    need > CHANNEL_RING_SIZE - off || need > rx->tail - rx->head)
		return CHANNEL_READ_MALFORMED;
	/* A PAD fills the end of the ring exactly, and only the end. */
	if (rec->kind == CHANNEL_PAD && need != CHANNEL_RING_SIZE - off)
		return CHANNEL_READ_MALFORMED;
	return CHANNEL_READ_OK;
}

enum channel_read
channel_rx_peek(struct channel_rx *rx, size_t cap, struct channel_rec *rec)
{
	enum channel_read rc;

	if (rx->peeked) {
		*rec = rx->rec;
		return CHANNEL_READ_OK;
	}
	for (;;) {
		if (rx->head == rx->tail)
			return CHANNEL_READ_EMPTY;
		if ((rc = rx_header(rx, &rx->rec)) != CHANNEL_READ_OK)
			return rc;
		if (rx->rec.kind != CHANNEL_PAD)
			break;
		rx->head += channel_rec_need(rx->rec.len);
	}
	if (rx->rec.len > cap)
		return CHANNEL_READ_MALFORMED;
	rx->peeked = true;
	*rec = rx->rec;
	return CHANNEL_READ_OK;
}

void
channel_rx_take(struct channel_rx *rx, void *dst)
{
	size_t off = rx->head % CHANNEL_RING_SIZE;

	memcpy(dst, rx->ring + off + CHANNEL_REC_HEADER, rx->rec.len);
	channel_rx_skip(rx);
}

void
channel_rx_skip(struct channel_rx *rx)
{
	if (!rx->peeked)
		return;
	rx->head += channel_rec_need(rx->rec.len);
	rx->peeked = false;
}

uint64_t
channel_rx_pos(const struct channel_rx *rx)
{
	return rx->head;
}

bool
channel_rx_copy(const struct channel_rx *rx, uint64_t pos,
    const struct channel_rec *rec, size_t off, void *dst, size_t len)
{
	/*
	 * rx_header() checked that the record, as rec says, lies before the
	 * ring's end; these bounds keep it so whatever the caller passes.
	 */
	if (off > rec->len || len > rec->len - off)
		return false;
	memcpy(dst, rx->ring + pos % CHANNEL_RING_SIZE + CHANNEL_REC_HEADER +
	    off, len);
	return true;
}

void
channel_rx_rewind(struct channel_rx *rx, uint64_t pos)
{
	rx->head = pos;
	rx->peeked = false;
}

uint64_t
channel_stamp_clamp(uint64_t stamp, uint64_t lo, uint64_t hi)
{
	if (stamp < lo)
		return lo;
	if (stamp >= hi)
		return hi - 1;
	return stamp;
}
