/*
 * msg.c - message allocation.  Header and payload share one allocation.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "msg.h"

struct msg *
msg_new(uint64_t id, const void *data, size_t len)
{
	struct msg *m = malloc(sizeof(*m) + len);

	if (m == NULL)
		return NULL;
	memset(m, 0, sizeof(*m));
	m->id = id;
	m->fd = -1;
	m->len = len;
	if (len > 0)
		memcpy(m->data, data, len);
	return m;
}

struct msg *
msg_new_fd(uint64_t id, int fd, size_t len, bool shared)
{
	struct msg *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->id = id;
	m->fd = fd;
	m->shared = shared;
	m->len = len;
	return m;
}

void
msg_free(struct msg *m)
{
	if (m != NULL && m->fd >= 0)
		close(m->fd);
	free(m);
}
