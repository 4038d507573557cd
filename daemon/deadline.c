/*
 * deadline.c - binary min-heap of deadlines (see deadline.h).
 */
#include <errno.h>
#include <stdlib.h>

#include "deadline.h"

void
deadline_heap_init(struct deadline_heap *h)
{
	h->nodes = NULL;
	h->count = h->cap = 0;
}

void
deadline_heap_deinit(struct deadline_heap *h)
{
	free(h->nodes);
	deadline_heap_init(h);
}

void
deadline_node_init(struct deadline *d)
{
	d->when = DEADLINE_NONE;
	d->slot = SIZE_MAX;
}

static void
heap_set(struct deadline_heap *h, size_t i, struct deadline *d)
{
	h->nodes[i] = d;
	d->slot = i;
}

static void
heap_up(struct deadline_heap *h, size_t i)
{
	struct deadline *d = h->nodes[i];

	while (i > 0 && h->nodes[(i - 1) / 2]->when > d->when) {
		heap_set(h, i, h->nodes[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(h, i, d);
}

static void
heap_down(struct deadline_heap *h, size_t i)
{
	struct deadline *d = h->nodes[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->count)
			break;
		if (c + 1 < h->count && h->nodes[c + 1]->when < h->nodes[c]->when)
			c++;
		if (h->nodes[c]->when >= d->when)
			break;
		heap_set(h, i, h->nodes[c]);
		i = c;
	}
	heap_set(h, i, d);
}

int
deadline_heap_add(struct deadline_heap *h, struct deadline *d, uint64_t when)
{
	if (h->count == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct deadline **nodes = realloc(h->nodes, cap * sizeof(*nodes));

		if (nodes == NULL)
			return -ENOMEM;
		h->nodes = nodes;
		h->cap = cap;
	}
	d->when = when;
	heap_set(h, h->count++, d);
	heap_up(h, d->slot);
	return 0;
}

void
deadline_heap_remove(struct deadline_heap *h, struct deadline *d)
{
	size_t i = d->slot;

	if (i == SIZE_MAX || i >= h->count || h->nodes[i] != d)
		return;
	d->slot = SIZE_MAX;
	if (--h->count == i)
		return;
	heap_set(h, i, h->nodes[h->count]);
	heap_down(h, i);
	heap_up(h, h->nodes[i]->slot);
}

struct deadline *
deadline_heap_first(const struct deadline_heap *h)
{
	return h->count > 0 ? h->nodes[0] : NULL;
}
