/*
 * deadline.h - one ordered structure for every deadline in the broker.
 *
 * A binary min-heap of deadline nodes embedded in their owners (parked
 * calls).  Each node knows its heap slot, so removal is O(log n) when a
 * call completes before its deadline.
 */
#ifndef MBXD_DEADLINE_H
#define MBXD_DEADLINE_H

#include <stddef.h>
#include <stdint.h>

#define DEADLINE_NONE	UINT64_MAX

struct deadline {
	uint64_t	when;	/* monotonic ms */
	size_t		slot;	/* index in the heap; SIZE_MAX when not in it */
};

struct deadline_heap {
	struct deadline	**nodes;
	size_t		  count;
	size_t		  cap;
};

void	deadline_heap_init(struct deadline_heap *h);
void	deadline_heap_deinit(struct deadline_heap *h);
void	deadline_node_init(struct deadline *d);
/* 0 or -ENOMEM.  d must not be in the heap. */
int	deadline_heap_add(struct deadline_heap *h, struct deadline *d,
	    uint64_t when);
/* Removes d if it is in the heap. */
void	deadline_heap_remove(struct deadline_heap *h, struct deadline *d);
/* The earliest node, or NULL. */
struct deadline *deadline_heap_first(const struct deadline_heap *h);

#endif
