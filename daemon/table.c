/*
 * table.c - open-addressing hash table (see table.h).
 * Invariant: the load factor stays at or below 1/2, so probes are short
 * and an empty slot always exists.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

/* FNV-1a: short keys, no adversary can pick them beyond names we allow. */
static uint64_t
table_hash(const char *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

void
table_init(struct table *t)
{
	memset(t, 0, sizeof(*t));
}

void
table_deinit(struct table *t)
{
	free(t->slots);
	table_init(t);
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
table_get(const struct table *t, const char *key, size_t len)
{
	size_t i;

	if (t->slots == NULL)
		return NULL;
	i = table_find(t, key, len, table_hash(key, len));
	return t->slots[i].key != NULL ? t->slots[i].value : NULL;
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
	uint64_t hash = table_hash(key, len);
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
	i = table_find(t, key, len, table_hash(key, len));
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
