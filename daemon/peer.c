/*
 * peer.c - per-client broker state (see peer.h).
 */
#include <stdlib.h>
#include <string.h>

#include "peer.h"

void
peer_init(struct peer *p)
{
	memset(p, 0, sizeof(*p));
	ptrvec_init(&p->bound);
	ptrvec_init(&p->standing);
	ptrvec_init(&p->grants);
	TAILQ_INIT(&p->sends);
	TAILQ_INIT(&p->recvs);
	TAILQ_INIT(&p->inflight);
	TAILQ_INIT(&p->stored);
	p->consumed = 1;
}

void
peer_deinit(struct peer *p)
{
	free(p->groups);
	p->groups = NULL;
	free(p->index);
	p->index = NULL;
	ptrvec_deinit(&p->bound);
	ptrvec_deinit(&p->standing);
	ptrvec_deinit(&p->grants);
}

/*
 * The index's smallest size, 1 << 4 chains.  It doubles past one message
 * per chain and halves below one per eight, so that a resize leaves it a
 * quarter to a half full: no resizing back and forth.
 */
#define PEER_INDEX_MIN_BITS	4

/* Fibonacci hashing: the top bits of id times 2^64 / phi. */
static size_t
peer_index_slot(const struct peer *p, uint64_t id)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ULL) >> (64 - p->index_bits));
}

/*
 * Rebuilds the index with 1 << bits chains from the list; false (the old
 * index kept) when out of memory.
 */
static bool
peer_index_resize(struct peer *p, unsigned bits)
{
	struct msg **index = calloc((size_t)1 << bits, sizeof(*index));
	struct msg *m;

	if (index == NULL)
		return false;
	free(p->index);
	p->index = index;
	p->index_bits = bits;
	TAILQ_FOREACH(m, &p->inflight, entry) {
		size_t i = peer_index_slot(p, m->id);

		m->hnext = index[i];
		index[i] = m;
	}
	return true;
}

void
peer_inflight_add(struct peer *p, struct msg *m)
{
	size_t i;

	m->holder = p;
	TAILQ_INSERT_TAIL(&p->inflight, m, entry);
	p->ninflight++;
	/* A rebuilt index holds m already. */
	if ((p->index == NULL || p->ninflight > ((size_t)1 << p->index_bits)) &&
	    (peer_index_resize(p, p->index == NULL ? PEER_INDEX_MIN_BITS :
	    p->index_bits + 1) || p->index == NULL))
		return;
	i = peer_index_slot(p, m->id);
	m->hnext = p->index[i];
	p->index[i] = m;
}

void
peer_inflight_remove(struct peer *p, struct msg *m)
{
	TAILQ_REMOVE(&p->inflight, m, entry);
	p->ninflight--;
	m->holder = NULL;
	if (m->stored) {
		TAILQ_REMOVE(&p->stored, m, store_entry);
		m->stored = false;
	}
	if (p->index != NULL) {
		struct msg **pp = &p->index[peer_index_slot(p, m->id)];

		while (*pp != m)
			pp = &(*pp)->hnext;
		*pp = m->hnext;
		m->hnext = NULL;
		if (p->index_bits > PEER_INDEX_MIN_BITS &&
		    p->ninflight < ((size_t)1 << p->index_bits) / 8)
			peer_index_resize(p, p->index_bits - 1);
	}
}

void
peer_handed(struct peer *p, struct msg *m)
{
	m->seq = ++p->delivered;
	/* A durable mailbox's waits for its DEL: an ACK with its answer. */
	if (p->consumes_by_store && !m->explicit_ack && m->sender == NULL &&
	    m->log_seq == 0) {
		m->stored = true;
		TAILQ_INSERT_TAIL(&p->stored, m, store_entry);
	}
}

void
peer_output(struct peer *p, int64_t bytes, int fds)
{
	p->out_bytes = (uint64_t)((int64_t)p->out_bytes + bytes);
	p->out_fds = (unsigned)((int)p->out_fds + fds);
}

bool
peer_in_group(const struct peer *p, gid_t gid)
{
	if (p->gid == gid)
		return true;
	for (size_t i = 0; i < p->ngroups; i++)
		if (p->groups[i] == gid)
			return true;
	return false;
}

struct msg *
peer_inflight_find(const struct peer *p, uint64_t msg_id)
{
	struct msg *m;

	if (p->index != NULL) {
		for (m = p->index[peer_index_slot(p, msg_id)]; m != NULL;
		    m = m->hnext)
			if (m->id == msg_id)
				return m;
		return NULL;
	}
	TAILQ_FOREACH(m, &p->inflight, entry)
		if (m->id == msg_id)
			return m;
	return NULL;
}
