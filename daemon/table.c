/*
 * table.c - open-addressing hash table (see table.h).
 * Invariant: the load factor stays at or below 1/2, so probes are short
 * and an empty slot always exists.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

/*
 * SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
 * 2012), written from the paper.  Names are chosen by clients: with an
 * unkeyed hash (FNV-1a before) a client could pick thousands of names
 * that share a home slot and make every lookup walk all of them.  Keyed
 * with a secret, the slot of a name cannot be predicted.
 */
#define SIP_ROTL(x, b)	(((x) << (b)) | ((x) >> (64 - (b))))

static void
sip_round(uint64_t v[4])
{
	v[0] += v[1]; v[1] = SIP_ROTL(v[1], 13); v[1] ^= v[0];
	v[0] = SIP_ROTL(v[0], 32);
	v[2] += v[3]; v[3] = SIP_ROTL(v[3], 16); v[3] ^= v[2];
	v[0] += v[3]; v[3] = SIP_ROTL(v[3], 21); v[3] ^= v[0];
	v[2] += v[1]; v[1] = SIP_ROTL(v[1], 17); v[1] ^= v[2];
	v[2] = SIP_ROTL(v[2], 32);
}

static uint64_t
sip_le64(const unsigned char *p)
{
	uint64_t x;

	memcpy(&x, p, sizeof(x));
	return le64toh(x);
}

uint64_t
table_siphash(const uint8_t key[TABLE_KEY_LEN], const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t k0 = sip_le64(key), k1 = sip_le64(key + 8);
	uint64_t v[4] = {
		k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
		k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL,
	};
	uint64_t m;
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		m = sip_le64(p + i);
		v[3] ^= m;
		sip_round(v);
		sip_round(v);
		v[0] ^= m;
	}
	/* The last block: the tail bytes, and the length's low byte on top. */
	m = (uint64_t)(len & 0xff) << 56;
	for (size_t j = 0; i + j < len; j++)
		m |= (uint64_t)p[i + j] << (8 * j);
	v[3] ^= m;
	sip_round(v);
	sip_round(v);
	v[0] ^= m;
	v[2] ^= 0xff;
	for (int r = 0; r < 4; r++)
		sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static uint64_t
table_hash(const struct table *t, const char *key, size_t len)
{
	return table_siphash(t->key, key, len);
}

void
table_init(struct table *t, const uint8_t key[TABLE_KEY_LEN])
{
	memset(t, 0, sizeof(*t));
	memcpy(t->key, key, TABLE_KEY_LEN);
}

void
table_deinit(struct table *t)
{
	free(t->slots);
	t->slots = NULL;
	t->mask = t->count = 0;
}

static size_t
table_find(const struct table *t, const char *key, size_t len, uint64_t hash)
{
	size_t i = hash & t->mask;

	for (;;) {
		const struct table_slot *s = &t->slots[i];

		if (s->key == NULL || (s->hash == hash && s->len == len &&
		    memcmp(s->key, key, len) == 0))
			return i;
		i = (i + 1) & t->mask;
	}
}

void *
table_get(struct table *t, const char *key, size_t len)
{
	const struct table_slot *s;
	size_t i;

	if (t->slots == NULL)
		return NULL;
	/*
	 * Keys are unique, so a slot holding these bytes is their entry,
	 * wherever deletions and growth have moved things since.
	 */
	s = &t->slots[t->recent & t->mask];
	if (s->key != NULL && s->len == len && memcmp(s->key, key, len) == 0)
		return s->value;
	i = table_find(t, key, len, table_hash(t, key, len));
	if (t->slots[i].key == NULL)
		return NULL;
	t->recent = i;
	return t->slots[i].value;
}

static int
table_grow(struct table *t)
{
	size_t nslots = t->slots ? (t->mask + 1) * 2 : 16;
	struct table old = *t;

	t->slots = calloc(nslots, sizeof(*t->slots));
	if (t->slots == NULL) {
		t->slots = old.slots;
		return -ENOMEM;
	}
	t->mask = nslots - 1;
	for (size_t i = 0; old.slots != NULL && i <= old.mask; i++) {
		struct table_slot *s = &old.slots[i];

		if (s->key != NULL)
			t->slots[table_find(t, s->key, s->len, s->hash)] = *s;
	}
	free(old.slots);
	return 0;
}

int
table_put(struct table *t, const char *key, size_t len, void *value)
{
	uint64_t hash = table_hash(t, key, len);
	size_t i;

	if (t->slots == NULL || (t->count + 1) * 2 > t->mask + 1) {
		int err = table_grow(t);

		if (err < 0)
			return err;
	}
	i = table_find(t, key, len, hash);
	t->slots[i] = (struct table_slot){ key, len, hash, value };
	t->count++;
	return 0;
}

void *
table_del(struct table *t, const char *key, size_t len)
{
	size_t i, j;
	void *value;

	if (t->slots == NULL)
		return NULL;
	i = table_find(t, key, len, table_hash(t, key, len));
	if (t->slots[i].key == NULL)
		return NULL;
	value = t->slots[i].value;
	/*
	 * Backward-shift deletion: move later members of the probe run into
	 * the hole when their home slot is not between the hole and them.
	 */
	for (j = (i + 1) & t->mask; t->slots[j].key != NULL;
	    j = (j + 1) & t->mask) {
		size_t home = t->slots[j].hash & t->mask;

		if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
			t->slots[i] = t->slots[j];
			i = j;
		}
	}
	t->slots[i] = (struct table_slot){ NULL, 0, 0, NULL };
	t->count--;
	return value;
}

void *
table_next(const struct table *t, size_t *pos)
{
	while (t->slots != NULL && *pos <= t->mask) {
		struct table_slot *s = &t->slots[(*pos)++];

		if (s->key != NULL)
			return s->value;
	}
	return NULL;
}
