/*
 * table.h - a hash table from byte-string keys to pointers.
 *
 * Open addressing with linear probing and backward-shift deletion, so a
 * lookup touches one or two cache lines whatever the table size.  The
 * table does not copy keys: a key must live as long as its entry (mailboxes
 * use their own name).
 *
 * Keys are hashed with SipHash-2-4 under the table's own 128-bit key, so
 * that whoever chooses the names cannot choose their slots.  The daemon
 * draws the key at random (getrandom()); a unit test passes a fixed one.
 */
#ifndef MBXD_TABLE_H
#define MBXD_TABLE_H

#include <stddef.h>
#include <stdint.h>

struct table_slot {
	const char	*key;	/* NULL: empty */
	size_t		 len;
	uint64_t	 hash;
	void		*value;
};

#define TABLE_KEY_LEN	16

struct table {
	uint8_t		 key[TABLE_KEY_LEN];	/* the hash's secret */
	struct table_slot *slots;
	size_t		 mask;	/* slot count - 1; slot count is a power of 2 */
	size_t		 count;
	/*
	 * The slot found last, tried first: lookups come in runs of one
	 * name (a batch of posts to one mailbox), and comparing a name costs
	 * less than its SipHash, which was a tenth of mbxd's CPU in batches.
	 */
	size_t		 recent;
};

/* An empty table whose hash is keyed with key (copied). */
void	 table_init(struct table *t, const uint8_t key[TABLE_KEY_LEN]);
void	 table_deinit(struct table *t);
void	*table_get(struct table *t, const char *key, size_t len);
/* 0, or -ENOMEM.  The key must not be present. */
int	 table_put(struct table *t, const char *key, size_t len, void *value);
/* Returns the removed value, or NULL when absent. */
void	*table_del(struct table *t, const char *key, size_t len);
/* Iteration: *pos starts at 0; returns NULL at the end. */
void	*table_next(const struct table *t, size_t *pos);
/* SipHash-2-4 of len bytes under key: the table's hash, for its tests. */
uint64_t table_siphash(const uint8_t key[TABLE_KEY_LEN], const void *data,
	    size_t len);

#endif
