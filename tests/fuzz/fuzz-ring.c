/*
 * fuzz-ring.c - libFuzzer target over the rings of a version 6 channel
 * (proto/channel.c), whose reader faces memory a hostile process writes.
 *
 * The first byte picks the mode:
 * - even: the input is a hostile ring.  Two u64 give the reader's head
 *   and the writer's tail; the rest fills the ring from the head's place
 *   on.  The reader must never read outside the ring (ASan watches: the
 *   ring is an allocation of exactly CHANNEL_RING_SIZE bytes), never move
 *   past the tail it accepted, never hand out a record larger than its
 *   cap, and stop at the first record that breaks the rules.
 * - odd: the input is a script for an honest writer and reader sharing a
 *   ring (reserve a record of some length, publish, take some), checked
 *   against a model FIFO: every record comes out once, in order, with
 *   its kind, flags, stamp and bytes; a reserve fails only when the
 *   ring truly has no room.
 * A broken invariant aborts, which libFuzzer reports as a crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz-ring: %s:%d: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

static uint8_t	*ring;
static uint8_t	 body[CHANNEL_REC_MAX];

static uint64_t
take_u64(const uint8_t **p, size_t *left)
{
	uint64_t v = 0;
	size_t n = *left < 8 ? *left : 8;

	memcpy(&v, *p, n);
	*p += n;
	*left -= n;
	return v;
}

static void
hostile(const uint8_t *p, size_t left)
{
	struct channel_rx rx;
	struct channel_rec rec;
	uint64_t head = take_u64(&p, &left), tail = take_u64(&p, &left);
	size_t cap = left > 0 ? (size_t)p[0] * 97 : CHANNEL_REC_MAX;
	enum channel_read rc;

	if (cap > CHANNEL_REC_MAX)
		cap = CHANNEL_REC_MAX;
	memset(ring, 0, CHANNEL_RING_SIZE);
	for (size_t i = 0; i < left && i < CHANNEL_RING_SIZE; i++)
		ring[(head + i) % CHANNEL_RING_SIZE] = p[i];
	channel_rx_init(&rx, ring, head);
	if (channel_rx_limit(&rx, tail) != CHANNEL_READ_OK) {
		CHECK(tail < head || tail - head > CHANNEL_RING_SIZE ||
		    tail % CHANNEL_REC_ALIGN != 0 ||
		    head % CHANNEL_REC_ALIGN != 0);
		return;
	}
	while ((rc = channel_rx_peek(&rx, cap, &rec)) == CHANNEL_READ_OK) {
		uint64_t before = rx.head;

		CHECK(rec.len <= cap);
		CHECK(rec.kind != CHANNEL_PAD && rec.kind < CHANNEL_KIND_MAX);
		channel_rx_take(&rx, body);
		CHECK(rx.head == before + channel_rec_need(rec.len));
		CHECK(rx.head <= tail);
	}
	CHECK(rx.head <= tail);
	if (rc == CHANNEL_READ_EMPTY)
		CHECK(rx.head == tail);
}

/* The model: what was published and not yet taken. */
struct model_rec {
	uint32_t	len;
	uint16_t	flags;
	uint64_t	stamp;
	uint8_t		fill;
};

static void
honest(const uint8_t *p, size_t left)
{
	static struct model_rec q[CHANNEL_RING_SIZE / CHANNEL_REC_HEADER];
	size_t qhead = 0, qtail = 0, qpub = 0;
	uint64_t start = take_u64(&p, &left) % (1ull << 40) *
	    CHANNEL_REC_ALIGN, stamp = 0;
	struct channel_tx tx;
	struct channel_rx rx;
	struct channel_rec rec;

	channel_tx_init(&tx, ring, start);
	channel_rx_init(&rx, ring, start);
	while (left >= 3) {
		uint8_t op = p[0];
		size_t len = ((size_t)p[1] << 8 | p[2]) % (CHANNEL_REC_MAX + 1);

		p += 3;
		left -= 3;
		if (op % 4 == 0) {
			uint64_t was = tx.tail;
			uint8_t *b = channel_tx_reserve(&tx, rx.head,
			    CHANNEL_POST, op, ++stamp, len);

			if (b == NULL) {
				/* Only when the record truly does not fit. */
				size_t off = was % CHANNEL_RING_SIZE;
				size_t need = channel_rec_need(len);

				if (off + need > CHANNEL_RING_SIZE)
					need += CHANNEL_RING_SIZE - off;
				CHECK(was == tx.tail);
				CHECK(was + need - rx.head >
				    CHANNEL_RING_SIZE);
				continue;
			}
			CHECK(tx.tail - rx.head <= CHANNEL_RING_SIZE);
			memset(b, op ^ 0x5a, len);
			q[qtail++ % (sizeof(q) / sizeof(q[0]))] =
			    (struct model_rec){ (uint32_t)len, op, stamp,
			    (uint8_t)(op ^ 0x5a) };
		} else if (op % 4 == 1) {
			CHECK(channel_rx_limit(&rx, channel_tx_publish(&tx)) ==
			    CHANNEL_READ_OK);
			qpub = qtail;
		} else {
			size_t n = op / 4 % 8 + 1;

			while (n-- > 0) {
				enum channel_read rc = channel_rx_peek(&rx,
				    CHANNEL_REC_MAX, &rec);
				struct model_rec *m;

				if (qhead == qpub) {
					CHECK(rc == CHANNEL_READ_EMPTY);
					break;
				}
				CHECK(rc == CHANNEL_READ_OK);
				m = &q[qhead++ % (sizeof(q) / sizeof(q[0]))];
				CHECK(rec.len == m->len && rec.kind ==
				    CHANNEL_POST && rec.flags == m->flags &&
				    rec.stamp == m->stamp);
				channel_rx_take(&rx, body);
				for (size_t i = 0; i < rec.len; i++)
					CHECK(body[i] == m->fill);
			}
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (ring == NULL && (ring = malloc(CHANNEL_RING_SIZE)) == NULL)
		abort();
	if (size == 0)
		return 0;
	if (data[0] % 2 == 0)
		hostile(data + 1, size - 1);
	else
		honest(data + 1, size - 1);
	return 0;
}
