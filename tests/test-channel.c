/*
 * test-channel.c - the rings of a version 6 channel (proto/channel.c),
 * their writer and their reader, fed memory directly; the reader also
 * against rings a hostile writer filled.
 */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "channel.h"
#include "suites.h"

/* A ring of its own allocation, so that ASan sees any read past it. */
static uint8_t *
ring_new(void)
{
	uint8_t *r = malloc(CHANNEL_RING_SIZE);

	ck_assert_ptr_nonnull(r);
	memset(r, 0xee, CHANNEL_RING_SIZE);
	return r;
}

START_TEST(rec_need_is_aligned)
{
	ck_assert_uint_eq(channel_rec_need(0), CHANNEL_REC_HEADER);
	ck_assert_uint_eq(channel_rec_need(1), CHANNEL_REC_HEADER + 16);
	ck_assert_uint_eq(channel_rec_need(16), CHANNEL_REC_HEADER + 16);
	ck_assert_uint_eq(channel_rec_need(64), CHANNEL_REC_HEADER + 64);
	ck_assert_uint_eq(channel_rec_need(65), CHANNEL_REC_HEADER + 80);
}
END_TEST

START_TEST(layout_fits_pages)
{
	/* The lines are one cache line each, the rings page aligned. */
	ck_assert_uint_lt(CHANNEL_CLIENT_SLEEP + 8, CHANNEL_LINE + 1);
	ck_assert_uint_lt(CHANNEL_DAEMON_SLEEP + 8, CHANNEL_LINE + 1);
	ck_assert_uint_eq(CHANNEL_CLIENT_RING % CHANNEL_PAGE, 0);
	ck_assert_uint_eq(CHANNEL_DAEMON_RING % CHANNEL_PAGE, 0);
	ck_assert_uint_eq(CHANNEL_GRANTS * CHANNEL_GRANT_SIZE, CHANNEL_PAGE);
	ck_assert_uint_ge(CHANNEL_DAEMON_RING, CHANNEL_DAEMON_GRANTS +
	    CHANNEL_PAGE);
}
END_TEST

START_TEST(words_round_trip)
{
	uint64_t set[8] = { 0 };

	channel_store(set, CHANNEL_CLIENT_RX_HEAD, 0x1122334455667788ull);
	ck_assert_uint_eq(channel_load(set, CHANNEL_CLIENT_RX_HEAD),
	    0x1122334455667788ull);
	ck_assert_uint_eq(channel_load(set, CHANNEL_CLIENT_TX_TAIL), 0);
}
END_TEST

/* Writes n records of varying sizes and reads them back, many laps. */
START_TEST(records_round_trip_across_laps)
{
	uint8_t *ring = ring_new(), body[CHANNEL_REC_MAX], out[CHANNEL_REC_MAX];
	struct channel_tx tx;
	struct channel_rx rx;
	struct channel_rec rec;
	uint64_t written = 0, read = 0;

	channel_tx_init(&tx, ring, 0);
	channel_rx_init(&rx, ring, 0);
	while (read < 20000) {
		/* Fill until full, then drain part of it. */
		for (;;) {
			size_t len = (written * 7919) % 3000;
			uint8_t *p = channel_tx_reserve(&tx, rx.head,
			    CHANNEL_POST, (uint16_t)written, written, len);

			if (p == NULL)
				break;
			memset(p, (int)(written & 0xff), len);
			written++;
		}
		ck_assert_int_eq(channel_rx_limit(&rx,
		    channel_tx_publish(&tx)), CHANNEL_READ_OK);
		for (int k = 0; k < 37; k++) {
			size_t len = (read * 7919) % 3000;

			if (read == written)
				break;
			ck_assert_int_eq(channel_rx_peek(&rx, sizeof(out),
			    &rec), CHANNEL_READ_OK);
			ck_assert_uint_eq(rec.len, len);
			ck_assert_uint_eq(rec.kind, CHANNEL_POST);
			ck_assert_uint_eq(rec.flags, (uint16_t)read);
			ck_assert_uint_eq(rec.stamp, read);
			channel_rx_take(&rx, out);
			memset(body, (int)(read & 0xff), len);
			ck_assert_mem_eq(out, body, len);
			read++;
		}
	}
	ck_assert_uint_gt(tx.tail, 4 * CHANNEL_RING_SIZE);
	free(ring);
}
END_TEST

START_TEST(reserve_respects_the_head)
{
	uint8_t *ring = ring_new();
	struct channel_tx tx;
	size_t n = 0;

	channel_tx_init(&tx, ring, 0);
	while (channel_tx_reserve(&tx, 0, CHANNEL_POST, 0, 0, 48) != NULL)
		n++;
	ck_assert_uint_eq(n, CHANNEL_RING_SIZE / channel_rec_need(48));
	ck_assert_uint_le(tx.tail, CHANNEL_RING_SIZE);
	/* Too large, or a head the reader cannot have: no room. */
	ck_assert_ptr_null(channel_tx_reserve(&tx, tx.tail, CHANNEL_POST, 0, 0,
	    CHANNEL_REC_MAX + 1));
	ck_assert_ptr_null(channel_tx_reserve(&tx, tx.tail + 16, CHANNEL_POST,
	    0, 0, 0));
	ck_assert_ptr_nonnull(channel_tx_reserve(&tx, tx.tail, CHANNEL_POST,
	    0, 0, CHANNEL_REC_MAX));
	free(ring);
}
END_TEST

START_TEST(room_wake_hysteresis)
{
	ck_assert(!channel_room_wake(CHANNEL_RING_SIZE, 0));
	ck_assert(!channel_room_wake(CHANNEL_RING_SIZE, 16));
	ck_assert(channel_room_wake(CHANNEL_RING_SIZE, CHANNEL_RING_SIZE / 2));
	ck_assert(channel_room_wake(5, 5));
	ck_assert(!channel_room_wake(5, 6));
}
END_TEST

START_TEST(rx_limit_refuses_impossible_tails)
{
	uint8_t *ring = ring_new();
	struct channel_rx rx;

	channel_rx_init(&rx, ring, 1024);
	ck_assert_int_eq(channel_rx_limit(&rx, 1008),
	    CHANNEL_READ_MALFORMED);
	ck_assert_int_eq(channel_rx_limit(&rx, 1024 + CHANNEL_RING_SIZE + 16),
	    CHANNEL_READ_MALFORMED);
	ck_assert_int_eq(channel_rx_limit(&rx, 1032), CHANNEL_READ_MALFORMED);
	ck_assert_int_eq(channel_rx_limit(&rx, 1024 + CHANNEL_RING_SIZE),
	    CHANNEL_READ_OK);
	/* Once accepted, a tail never goes back. */
	ck_assert_int_eq(channel_rx_limit(&rx, 2048), CHANNEL_READ_MALFORMED);
	free(ring);
}
END_TEST

/* A header written by a hostile writer at position pos of ring. */
static void
put_header(uint8_t *ring, size_t pos, uint32_t len, uint16_t kind)
{
	uint64_t stamp = 7;
	uint16_t flags = 0;

	memcpy(ring + pos, &len, 4);
	memcpy(ring + pos + 4, &kind, 2);
	memcpy(ring + pos + 6, &flags, 2);
	memcpy(ring + pos + 8, &stamp, 8);
}

static enum channel_read
peek_at(uint8_t *ring, uint64_t head, uint64_t tail, size_t cap)
{
	struct channel_rx rx;
	struct channel_rec rec;

	channel_rx_init(&rx, ring, head);
	if (channel_rx_limit(&rx, tail) != CHANNEL_READ_OK)
		return CHANNEL_READ_MALFORMED;
	return channel_rx_peek(&rx, cap, &rec);
}

START_TEST(rx_refuses_bad_headers)
{
	uint8_t *ring = ring_new();
	const size_t end = CHANNEL_RING_SIZE;

	put_header(ring, 0, 32, CHANNEL_POST);
	ck_assert_int_eq(peek_at(ring, 0, 48, 64), CHANNEL_READ_OK);
	ck_assert_int_eq(peek_at(ring, 0, 0, 64), CHANNEL_READ_EMPTY);
	/* Past the tail, bigger than the reader allows, unknown kinds. */
	ck_assert_int_eq(peek_at(ring, 0, 32, 64), CHANNEL_READ_MALFORMED);
	ck_assert_int_eq(peek_at(ring, 0, 48, 31), CHANNEL_READ_MALFORMED);
	put_header(ring, 0, 32, 0);
	ck_assert_int_eq(peek_at(ring, 0, 48, 64), CHANNEL_READ_MALFORMED);
	put_header(ring, 0, 32, CHANNEL_KIND_MAX);
	ck_assert_int_eq(peek_at(ring, 0, 48, 64), CHANNEL_READ_MALFORMED);
	/* A length that would wrap the need, or cross the ring's end. */
	put_header(ring, 0, UINT32_MAX, CHANNEL_POST);
	ck_assert_int_eq(peek_at(ring, 0, CHANNEL_RING_SIZE, UINT32_MAX),
	    CHANNEL_READ_MALFORMED);
	put_header(ring, end - 32, 32, CHANNEL_POST);
	ck_assert_int_eq(peek_at(ring, end - 32, end + 32, 64),
	    CHANNEL_READ_MALFORMED);
	/* A PAD must reach the end exactly, and be followed by a record. */
	put_header(ring, end - 64, 32, CHANNEL_PAD);
	ck_assert_int_eq(peek_at(ring, end - 64, end + 64, 64),
	    CHANNEL_READ_MALFORMED);
	put_header(ring, end - 64, 48, CHANNEL_PAD);
	put_header(ring, 0, 16, CHANNEL_POST);
	ck_assert_int_eq(peek_at(ring, end - 64, end + 32, 64),
	    CHANNEL_READ_OK);
	ck_assert_int_eq(peek_at(ring, end - 64, end, 64),
	    CHANNEL_READ_EMPTY);
	/* A tail that is not on a record boundary. */
	ck_assert_int_eq(peek_at(ring, end - 64, end + 8, 64),
	    CHANNEL_READ_MALFORMED);
	free(ring);
}
END_TEST

/*
 * The body copied is the one the peeked header announced, whatever the
 * writer put in the header after the peek.
 */
START_TEST(rx_uses_its_copy_of_the_header)
{
	uint8_t *ring = ring_new(), out[64];
	struct channel_rx rx;
	struct channel_rec rec;

	put_header(ring, 0, 16, CHANNEL_POST);
	memset(ring + CHANNEL_REC_HEADER, 'a', 16);
	channel_rx_init(&rx, ring, 0);
	ck_assert_int_eq(channel_rx_limit(&rx, 32), CHANNEL_READ_OK);
	ck_assert_int_eq(channel_rx_peek(&rx, 16, &rec), CHANNEL_READ_OK);
	put_header(ring, 0, 100000, CHANNEL_POST);
	ck_assert_int_eq(channel_rx_peek(&rx, 16, &rec), CHANNEL_READ_OK);
	ck_assert_uint_eq(rec.len, 16);
	memset(out, 0, sizeof(out));
	channel_rx_take(&rx, out);
	ck_assert_uint_eq(rx.head, 32);
	ck_assert_uint_eq(out[15], 'a');
	ck_assert_uint_eq(out[16], 0);
	ck_assert_int_eq(channel_rx_peek(&rx, 16, &rec), CHANNEL_READ_EMPTY);
	free(ring);
}
END_TEST

/*
 * Random rings and tails: the reader never reads outside the ring (ASan
 * watches), never moves past the tail, and stops at the first bad record.
 */
START_TEST(rx_survives_random_rings)
{
	uint8_t *ring = ring_new(), out[CHANNEL_REC_MAX];
	unsigned seed = 12345;

	for (int round = 0; round < 2000; round++) {
		struct channel_rx rx;
		struct channel_rec rec;
		uint64_t head = (uint64_t)(rand_r(&seed) % 4096) * 16 *
		    (uint64_t)(rand_r(&seed) % 200);
		uint64_t tail = head + (uint64_t)(rand_r(&seed) %
		    (CHANNEL_RING_SIZE / 16 + 2)) * 16;

		for (int k = 0; k < 64; k++) {
			size_t pos = ((size_t)rand_r(&seed) % (CHANNEL_RING_SIZE /
			    16)) * 16;
			uint32_t len = (uint32_t)rand_r(&seed) %
			    (k & 1 ? 70000 : 300);

			put_header(ring, pos, len, (uint16_t)(rand_r(&seed) %
			    (CHANNEL_KIND_MAX + 1)));
		}
		channel_rx_init(&rx, ring, head);
		if (channel_rx_limit(&rx, tail) != CHANNEL_READ_OK)
			continue;
		while (channel_rx_peek(&rx, sizeof(out), &rec) ==
		    CHANNEL_READ_OK) {
			ck_assert_uint_le(rec.len, sizeof(out));
			channel_rx_take(&rx, out);
			ck_assert_uint_le(rx.head, tail);
		}
	}
	free(ring);
}
END_TEST

START_TEST(stamp_clamp_bounds_a_liar)
{
	ck_assert_uint_eq(channel_stamp_clamp(50, 100, 200), 100);
	ck_assert_uint_eq(channel_stamp_clamp(150, 100, 200), 150);
	ck_assert_uint_eq(channel_stamp_clamp(200, 100, 200), 199);
	ck_assert_uint_eq(channel_stamp_clamp(UINT64_MAX, 100, 200), 199);
	ck_assert_uint_eq(channel_stamp_clamp(0, 100, 101), 100);
}
END_TEST

Suite *
channel_suite(void)
{
	Suite *s = suite_create("channel");
	TCase *tc = tcase_create("rings");

	tcase_add_test(tc, rec_need_is_aligned);
	tcase_add_test(tc, layout_fits_pages);
	tcase_add_test(tc, words_round_trip);
	tcase_add_test(tc, records_round_trip_across_laps);
	tcase_add_test(tc, reserve_respects_the_head);
	tcase_add_test(tc, room_wake_hysteresis);
	tcase_add_test(tc, rx_limit_refuses_impossible_tails);
	tcase_add_test(tc, rx_refuses_bad_headers);
	tcase_add_test(tc, rx_uses_its_copy_of_the_header);
	tcase_add_test(tc, rx_survives_random_rings);
	tcase_add_test(tc, stamp_clamp_bounds_a_liar);
	suite_add_tcase(s, tc);
	return s;
}
