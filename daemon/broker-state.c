/*
 * broker-state.c - the broker's side of a planned restart (PROTOCOL.md,
 * "The restart, as built"): the mailboxes and their queues into the
 * restart state and back out of it.
 *
 * The top of the broker's stack: it creates mailboxes as the
 * configuration does (broker_declare()) and puts messages back as a
 * durable mailbox's log does (broker_msg_restore()).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker-deliver.h"
#include "broker-durable.h"
#include "broker-lookup.h"
#include "broker.h"
#include "log.h"
#include "mailbox.h"
#include "record.h"
#include "state.h"

static int
broker_state_save_msg(struct state_out *so, const struct msg *m)
{
	struct record_msg rec = { .seq = m->id, .sender_id = m->sender_id,
	    .pid = m->pid, .uid = m->uid, .attempts = m->attempts,
	    .origin_attempts = m->origin_attempts };
	struct msg *copy = NULL;
	bool ok;
	int err;

	if (m->origin != NULL)
		rec.origin = (struct proto_str){ m->origin, strlen(m->origin) };
	/* A zero-copy payload is copied (its buffer stays the sender's). */
	if (m->fd >= 0) {
		if ((copy = msg_new_copy_memfd(0, m->fd, m->len, false,
		    &err)) == NULL)
			return err;
		rec.payload = (struct proto_str){ (const char *)copy->data,
		    copy->len };
	} else
		rec.payload = (struct proto_str){ (const char *)m->data,
		    m->len };
	ok = record_msg_put(&so->w, &rec);
	if (copy != NULL)
		msg_free(copy);
	if (!ok)
		return -ENOMEM;
	return state_out_flush(so, false);
}

static int
broker_state_save_mailbox(struct state_out *so, const struct mailbox *mb,
    uint64_t *nmsgs)
{
	struct record_mailbox rm = { .name = { mb->name, mb->name_len },
	    .sent = mb->sent, .received = mb->received,
	    .redelivered = mb->redelivered, .dead = mb->dead };
	const struct msg *m;
	int err;

	broker_durable_attr(mb, &rm.attr);
	if (!record_mailbox_put(&so->w, &rm))
		return -ENOMEM;
	/*
	 * With the peers gone nothing is in flight, parked or staged: what
	 * the mailbox holds is its queue, in order, and the messages given
	 * back with a delay, each with when it is due.
	 */
	TAILQ_FOREACH(m, &mb->queue, entry) {
		if ((err = broker_state_save_msg(so, m)) < 0)
			goto fail;
		(*nmsgs)++;
	}
	TAILQ_FOREACH(m, &mb->delayed, entry) {
		if ((err = broker_state_save_msg(so, m)) < 0)
			goto fail;
		if (!record_delay_put(&so->w, m->delay.when))
			return -ENOMEM;
		(*nmsgs)++;
	}
	if (mb->npending + mb->nstaged + mb->ninflight > 0)
		log_warn("mailbox %s: %zu messages not queued are not kept",
		    mb->name, mb->npending + mb->nstaged + mb->ninflight);
	return 0;
fail:
	log_err("mailbox %s: message %llu: cannot be kept: %s", mb->name,
	    (unsigned long long)m->id, strerror(-err));
	return err;
}

int
broker_state_save(struct broker *b, struct state_out *so,
    uint64_t *nmailboxes, uint64_t *nmsgs)
{
	const struct record_state st = { RECORD_STATE_MAJOR,
	    RECORD_STATE_MINOR, b->next_peer_id, b->next_mailbox_id,
	    b->next_msg_id };
	struct mailbox *mb;
	size_t pos = 0;
	int err;

	*nmailboxes = 0;
	*nmsgs = 0;
	if (!record_state_put(&so->w, &st))
		return -ENOMEM;
	while ((mb = table_next(&b->mailboxes, &pos)) != NULL) {
		/* A direct address goes with its owner; a durable one's
		 * messages are in its log, read back by the next daemon. */
		if (mb->owner != NULL || mb->durable)
			continue;
		if ((err = broker_state_save_mailbox(so, mb, nmsgs)) < 0)
			return err;
		(*nmailboxes)++;
	}
	/* The rest is written when the state is sealed. */
	return record_count_put(&so->w, *nmailboxes, *nmsgs) ? 0 : -ENOMEM;
}

/*
 * Everything checked before anything is loaded: the version first, each
 * record whole and decoded, the messages after a mailbox, and the count
 * last, matching, at the very end (so a state cut short is told from a
 * whole one).
 */
static bool
broker_state_check(const uint8_t *buf, uint64_t size, const char **why)
{
	uint64_t off = 0, nmb = 0, nmsg = 0, cmb, cmsg, due;
	struct record_state st;
	struct record_mailbox rm;
	struct record_msg rec;
	const uint8_t *body;
	enum record_read rr;
	uint8_t type;
	size_t len;

	if (record_next(buf, size, &off, &type, &body, &len) != RECORD_OK ||
	    type != RECORD_STATE || !record_state_get(body, len, &st)) {
		*why = "it does not start with a state record";
		return false;
	}
	if (st.major != RECORD_STATE_MAJOR) {
		*why = "another major version of the state";
		return false;
	}
	while ((rr = record_next(buf, size, &off, &type, &body, &len)) ==
	    RECORD_OK) {
		switch (type) {
		case RECORD_MAILBOX:
			/* Attributes no mailbox can have are no mbxd's. */
			if (!record_mailbox_get(body, len, &rm) ||
			    (rm.attr.max_attempts > 0 &&
			    rm.attr.dead_letter.len == 0) ||
			    (rm.attr.dead_letter.len == rm.name.len &&
			    memcmp(rm.attr.dead_letter.ptr, rm.name.ptr,
			    rm.name.len) == 0)) {
				*why = "a mailbox record does not decode";
				return false;
			}
			nmb++;
			break;
		case RECORD_PUT:
			if (nmb == 0 || !record_msg_get(body, len, &rec)) {
				*why = "a message record does not decode";
				return false;
			}
			nmsg++;
			break;
		case RECORD_DELAY:
			if (nmsg == 0 || !record_delay_get(body, len, &due)) {
				*why = "a delay record does not decode";
				return false;
			}
			break;
		case RECORD_COUNT:
			if (!record_count_get(body, len, &cmb, &cmsg) ||
			    off != size || cmb != nmb || cmsg != nmsg) {
				*why = "its count does not match its records";
				return false;
			}
			return true;
		case RECORD_STATE:
			*why = "a second state record";
			return false;
		default:
			/* A newer minor version's: not ours to read. */
			break;
		}
	}
	*why = rr == RECORD_TORN ? "a record is torn or corrupt" :
	    "it was cut short: no count at its end";
	return false;
}

/*
 * One mailbox record made into a mailbox again; NULL: skip its messages.
 * Mailboxes of this load have ids from first_id on (a name twice in one
 * state is skipped the second time).
 */
static struct mailbox *
broker_state_load_mailbox(struct broker *b, const struct record_mailbox *rm,
    uint64_t first_id)
{
	struct broker_attr a = { .capacity = (long)rm->attr.capacity,
	    .max_msg = rm->attr.max_msg, .mode = rm->attr.mode,
	    .uid = (uid_t)rm->attr.uid, .gid = (gid_t)rm->attr.gid,
	    .max_attempts = rm->attr.max_attempts,
	    .ack_timeout_ms = rm->attr.ack_timeout_ms,
	    .dead_letter = rm->attr.dead_letter.ptr,
	    .dead_letter_len = rm->attr.dead_letter.len };
	struct mailbox *mb;
	char name[PROTO_NAME_MAX + 1];
	int err;

	memcpy(name, rm->name.ptr, rm->name.len);
	name[rm->name.len] = '\0';
	/*
	 * A lower limit since (a reload, or the next daemon's file): the
	 * mailbox takes it, and what it holds stays, as at a reload.
	 */
	if (a.max_msg > b->limits.max_msg) {
		log_warn("mailbox %s: max_msg %llu is over the daemon's limit: "
		    "%llu from now", name, (unsigned long long)a.max_msg,
		    (unsigned long long)b->limits.max_msg);
		a.max_msg = b->limits.max_msg;
	}
	/*
	 * Declared by the configuration before the state is read: its
	 * attributes are the configuration's, as at a reload, and its
	 * messages are the state's.  A durable one has its own.
	 */
	if ((mb = broker_lookup(b, name, rm->name.len)) != NULL) {
		if (mb->durable || mb->owner != NULL || mb->nqueued > 0 ||
		    mb->ndelayed > 0 || mb->id >= first_id) {
			log_warn("mailbox %s: already there: its copy in the "
			    "restart state is left out", name);
			return NULL;
		}
	} else if ((err = broker_declare(b, name, rm->name.len, &a)) < 0 ||
	    (mb = broker_lookup(b, name, rm->name.len)) == NULL) {
		log_err("mailbox %s: cannot be made again after the restart: "
		    "%s: its messages are lost", name, strerror(-err));
		return NULL;
	} else
		/* A mode of 0 is a mode (broker_declare() reads 0 as none). */
		mb->mode = rm->attr.mode;
	mb->sent = rm->sent;
	mb->received = rm->received;
	mb->redelivered = rm->redelivered;
	mb->dead = rm->dead;
	return mb;
}

int
broker_state_load(struct broker *b, const uint8_t *buf, uint64_t size,
    const char **why, uint64_t *nmailboxes, uint64_t *nmsgs)
{
	struct record_state st;
	struct mailbox *mb = NULL;
	struct msg *last = NULL;
	const uint8_t *body;
	uint64_t off = 0, due, first_id;
	uint8_t type;
	size_t len;

	*nmailboxes = 0;
	*nmsgs = 0;
	if (!broker_state_check(buf, size, why))
		return -EINVAL;
	(void)record_next(buf, size, &off, &type, &body, &len);
	(void)record_state_get(body, len, &st);
	/* Ids are never reused: an "@ID" of before names nobody new. */
	if (st.next_peer_id > b->next_peer_id)
		b->next_peer_id = st.next_peer_id;
	if (st.next_mailbox_id > b->next_mailbox_id)
		b->next_mailbox_id = st.next_mailbox_id;
	if (st.next_msg_id > b->next_msg_id)
		b->next_msg_id = st.next_msg_id;
	first_id = b->next_mailbox_id;
	while (record_next(buf, size, &off, &type, &body, &len) == RECORD_OK) {
		struct record_mailbox rm;
		struct record_msg rec;
		struct msg *m;

		if (type == RECORD_MAILBOX) {
			(void)record_mailbox_get(body, len, &rm);
			if ((mb = broker_state_load_mailbox(b, &rm,
			    first_id)) != NULL)
				(*nmailboxes)++;
			last = NULL;
		} else if (type == RECORD_PUT && mb != NULL) {
			(void)record_msg_get(body, len, &rec);
			/*
			 * A fresh id: the durable logs loaded before numbered
			 * theirs from 1, and ids are unique while mbxd runs.
			 */
			if (broker_msg_restore(b, mb, &rec, b->next_msg_id,
			    &m) < 0)
				return -ENOMEM;
			b->next_msg_id++;
			last = m;
			(*nmsgs)++;
		} else if (type == RECORD_DELAY && last != NULL) {
			(void)record_delay_get(body, len, &due);
			broker_msg_delay(b, last, due);
			last = NULL;
		}
	}
	return 0;
}
