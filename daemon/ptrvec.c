/*
 * ptrvec.c - ordered pointer set (see ptrvec.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ptrvec.h"

void
ptrvec_init(struct ptrvec *v)
{
	v->items = NULL;
	v->len = v->cap = 0;
}

void
ptrvec_deinit(struct ptrvec *v)
{
	free(v->items);
	ptrvec_init(v);
}

int
ptrvec_push(struct ptrvec *v, void *p)
{
	if (v->len == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 4;
		void **items = realloc(v->items, cap * sizeof(*items));

		if (items == NULL)
			return -ENOMEM;
		v->items = items;
		v->cap = cap;
	}
	v->items[v->len++] = p;
	return 0;
}

static size_t
ptrvec_find(const struct ptrvec *v, const void *p)
{
	/* From the end, where the last pushed (and next removed) usually is. */
	for (size_t i = v->len; i > 0; i--)
		if (v->items[i - 1] == p)
			return i - 1;
	return v->len;
}

bool
ptrvec_remove(struct ptrvec *v, const void *p)
{
	size_t i = ptrvec_find(v, p);

	if (i == v->len)
		return false;
	memmove(&v->items[i], &v->items[i + 1],
	    (v->len - i - 1) * sizeof(v->items[0]));
	v->len--;
	return true;
}

bool
ptrvec_contains(const struct ptrvec *v, const void *p)
{
	return ptrvec_find(v, p) < v->len;
}
