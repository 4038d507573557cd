/*
 * inbox.c - held messages of a handle (see inbox.h).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "inbox.h"

void
inbox_init(struct inbox *in)
{
	memset(in, 0, sizeof(*in));
	in->tail = &in->head;
}

static void
free_list(struct held *h)
{
	struct held *next;

	for (; h != NULL; h = next) {
		next = h->next;
		if (h->fd >= 0)
			close(h->fd);
		free(h);
	}
}

void
inbox_clear(struct inbox *in)
{
	free_list(in->head);
	free_list(in->spare);
	inbox_init(in);
}

void
inbox_release(struct inbox *in, struct held *h)
{
	if (h == NULL)
		return;
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	if (in->nspare == INBOX_SPARE_MAX ||
	    h->cap > INBOX_SPARE_BYTES - in->spare_bytes) {
		free(h);
		return;
	}
	h->next = in->spare;
	in->spare = h;
	in->nspare++;
	in->spare_bytes += h->cap;
}

/* A block with room for len bytes: a spare one that fits, or new. */
static struct held *
held_alloc(struct inbox *in, size_t len)
{
	struct held **pp, *h;

	for (pp = &in->spare; (h = *pp) != NULL; pp = &h->next) {
		if (h->cap < len)
			continue;
		*pp = h->next;
		in->nspare--;
		in->spare_bytes -= h->cap;
		return h;
	}
	/* Small ones share one size, so that any spare fits them. */
	if (len < 256)
		len = 256;
	if ((h = malloc(sizeof(*h) + len)) != NULL)
		h->cap = len;
	return h;
}

struct held *
inbox_push(struct inbox *in, const struct mbx_meta *meta, const void *data,
    int fd, bool shared, bool sync, bool unsettled)
{
	size_t inline_len = fd >= 0 ? 0 : meta->len;
	struct held *h;

	if ((h = held_alloc(in, inline_len)) == NULL) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	h->fd = fd;
	h->shared = shared;
	h->sync = sync;
	h->unsettled = unsettled;
	h->store = false;
	h->durable = false;
	h->seq = 0;
	h->next = NULL;
	h->meta = *meta;
	if (inline_len > 0)
		memcpy(h->data, data, inline_len);
	*in->tail = h;
	in->tail = &h->next;
	in->count++;
	return h;
}

uint64_t
inbox_store_floor(const struct inbox *in, uint64_t next)
{
	/* The FIFO is in arrival order, which is the numbers' order. */
	for (const struct held *h = in->head; h != NULL; h = h->next)
		if (h->store)
			return h->seq;
	return next;
}

struct held *
inbox_find(const struct inbox *in, const char *mailbox)
{
	struct held *h, *oldest = NULL;

	for (h = in->head; h != NULL; h = h->next) {
		if (mailbox != NULL && strcmp(h->meta.mailbox, mailbox) == 0)
			return h;
		/* Batches of different receives interleave in the FIFO. */
		if (mailbox == NULL && (oldest == NULL ||
		    h->meta.id < oldest->meta.id))
			oldest = h;
	}
	return oldest;
}

void
inbox_settle(struct inbox *in, uint64_t upto)
{
	for (struct held *h = in->head; h != NULL; h = h->next)
		if (h->meta.id <= upto)
			h->unsettled = false;
}

void
inbox_take(struct inbox *in, struct held *h)
{
	struct held **pp;

	for (pp = &in->head; *pp != NULL; pp = &(*pp)->next) {
		if (*pp != h)
			continue;
		*pp = h->next;
		if (in->tail == &h->next)
			in->tail = pp;
		in->count--;
		h->next = NULL;
		return;
	}
}

void
inbox_drop_id(struct inbox *in, uint64_t id)
{
	struct held *h;

	for (h = in->head; h != NULL && h->meta.id != id; h = h->next)
		;
	if (h == NULL)
		return;
	inbox_take(in, h);
	inbox_release(in, h);
}

void
inbox_drop_mailbox(struct inbox *in, const char *mailbox, size_t len)
{
	struct held **pp = &in->head, *h;

	while ((h = *pp) != NULL) {
		if (strlen(h->meta.mailbox) == len &&
		    memcmp(h->meta.mailbox, mailbox, len) == 0) {
			*pp = h->next;
			in->count--;
			inbox_release(in, h);
		} else {
			pp = &h->next;
		}
	}
	/* The tail is the last link left. */
	in->tail = &in->head;
	while (*in->tail != NULL)
		in->tail = &(*in->tail)->next;
}
