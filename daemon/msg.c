/*
 * msg.c - message allocation.  Header and payload share one allocation.
 */
#include <stdlib.h>
#include <string.h>

#include "msg.h"

struct msg *
msg_new(uint64_t id, const void *data, size_t len)
{
	struct msg *m = malloc(sizeof(*m) + len);

	if (m == NULL)
		return NULL;
	memset(m, 0, sizeof(*m));
	m->id = id;
	m->len = len;
	if (len > 0)
		memcpy(m->data, data, len);
	return m;
}

void
msg_free(struct msg *m)
{
	free(m);
}
