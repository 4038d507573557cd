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
}

void
peer_deinit(struct peer *p)
{
	free(p->groups);
	p->groups = NULL;
	ptrvec_deinit(&p->bound);
	ptrvec_deinit(&p->standing);
	ptrvec_deinit(&p->grants);
}

void
peer_inflight_add(struct peer *p, struct msg *m)
{
	m->holder = p;
	TAILQ_INSERT_TAIL(&p->inflight, m, entry);
}

void
peer_inflight_remove(struct peer *p, struct msg *m)
{
	TAILQ_REMOVE(&p->inflight, m, entry);
	m->holder = NULL;
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

	/* Acknowledgements come in delivery order: the head is the usual hit. */
	TAILQ_FOREACH(m, &p->inflight, entry)
		if (m->id == msg_id)
			return m;
	return NULL;
}
