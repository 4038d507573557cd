/*
 * broker-durable.c - durable mailboxes' journals (see broker-durable.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker-durable.h"
#include "journal.h"
#include "log.h"
#include "mailbox.h"

int
broker_state_open(struct broker *b)
{
	int fd, err;

	if (b->state_fd >= 0)
		return 0;
	if (b->state_dir == NULL)
		return -ENOENT;
	if (mkdir(b->state_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if ((fd = open(b->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	/* One daemon per state directory: two would write the same logs. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(fd);
		log_err("state directory %s: %s", b->state_dir, err == -EBUSY ?
		    "in use by another mbxd" : strerror(-err));
		return err;
	}
	b->state_fd = fd;
	return 0;
}

void
broker_dirty(struct broker *b, struct mailbox *mb)
{
	if (mb->dirty)
		return;
	if (ptrvec_push(&b->dirty, mb) < 0) {
		/* Written at the next commit that has the memory. */
		log_err("mailbox %s: out of memory for its commit", mb->name);
		return;
	}
	mb->dirty = true;
}

void
broker_durable_attr(const struct mailbox *mb, struct record_attr *a)
{
	*a = (struct record_attr){
		.capacity = mb->capacity,
		.max_msg = mb->max_msg,
		.mode = (uint32_t)mb->mode,
		.uid = (uint32_t)mb->uid,
		.gid = (uint32_t)mb->gid,
		.max_attempts = mb->max_attempts,
		.ack_timeout_ms = mb->ack_timeout_ms,
		.dead_letter = { mb->dead_letter != NULL ? mb->dead_letter : "",
		    mb->dead_letter_len },
	};
}

bool
broker_log_put(struct broker *b, struct mailbox *mb, struct msg *m)
{
	struct journal_msg jm = { .rec = {
		.sender_id = m->sender_id,
		.pid = m->pid,
		.uid = m->uid,
		.attempts = m->attempts,
		.origin = { m->origin != NULL ? m->origin : "",
		    m->origin != NULL ? strlen(m->origin) : 0 },
		.origin_attempts = m->origin_attempts,
		.payload = { (const char *)m->data, m->len },
	} };

	if (mb->journal == NULL || !journal_put(mb->journal, &jm))
		return false;
	m->log_seq = jm.rec.seq;
	m->log_seg = jm.seg;
	broker_dirty(b, mb);
	return true;
}

void
broker_log_del(struct broker *b, struct msg *m)
{
	struct mailbox *mb = m->mbox;

	if (m->log_seq == 0 || mb == NULL || mb->journal == NULL)
		return;
	if (!journal_del(mb->journal, m->log_seq, m->log_seg))
		log_err("mailbox %s: out of memory: message %llu may come "
		    "back after a crash", mb->name,
		    (unsigned long long)m->id);
	m->log_seq = 0;
	broker_dirty(b, mb);
}

void
broker_log_hand(struct broker *b, struct msg *m)
{
	struct mailbox *mb = m->mbox;

	if (m->log_seq == 0 || mb == NULL || mb->journal == NULL)
		return;
	/* Lost for memory: after a crash it counts one delivery less. */
	(void)journal_hand(mb->journal, m->log_seq, m->attempts);
	broker_dirty(b, mb);
}

void
broker_log_attr(struct broker *b, struct mailbox *mb)
{
	struct record_attr a;

	if (mb->journal == NULL)
		return;
	broker_durable_attr(mb, &a);
	if (!journal_attr(mb->journal, &a))
		log_err("mailbox %s: out of memory: its new attributes are "
		    "not logged", mb->name);
	broker_dirty(b, mb);
}

void
broker_log_flush(struct broker *b, struct mailbox *mb)
{
	struct journal *j = mb->journal;
	int err;

	if (j == NULL || j->meta.len == 0)
		return;
	if ((err = journal_write_meta(j)) == 0 && b->sync_ms == 0)
		err = journal_sync(j);
	if (err != 0)
		broker_log_error(mb, err);
}

void
broker_log_error(struct mailbox *mb, int err)
{
	if (mb->failed)
		return;
	/* A failed sync (or no log at all): never carry on as if safe. */
	if (mb->journal == NULL || mb->journal->failed) {
		mb->failed = true;
		log_err("mailbox %s: its log failed (%s): the mailbox is out of "
		    "service until mbxd restarts", mb->name, strerror(-err));
	} else
		log_err("mailbox %s: cannot write its log: %s", mb->name,
		    strerror(-err));
}

void
broker_sync(struct broker *b)
{
	for (size_t i = 0; i < b->durables.len; i++) {
		struct mailbox *mb = b->durables.items[i];
		int err;

		if (mb->journal != NULL && !mb->failed &&
		    (err = journal_sync(mb->journal)) < 0)
			broker_log_error(mb, err);
	}
}

int
broker_durable_add(struct broker *b, struct mailbox *mb, struct journal *j)
{
	if (ptrvec_push(&b->durables, mb) < 0)
		return -ENOMEM;
	mb->durable = true;
	mb->journal = j;
	return 0;
}

int
broker_msg_restore(struct broker *b, struct mailbox *mb,
    const struct record_msg *rec, uint64_t id, struct msg **out)
{
	const struct charge_amount cost = { .bytes = rec->payload.len,
	    .msgs = 1 };
	struct account *acct;
	struct msg *m;

	if ((m = msg_new(id, rec->payload.ptr, rec->payload.len)) == NULL)
		return -ENOMEM;
	if (rec->origin.len > 0 && (m->origin = strndup(rec->origin.ptr,
	    rec->origin.len)) == NULL) {
		msg_free(m);
		return -ENOMEM;
	}
	/* Kept before any quota of this run: charged, never refused. */
	if ((acct = account_of(&b->accounts, rec->uid)) == NULL ||
	    account_charge(&b->accounts, &m->charge, acct, &cost,
	    ACCOUNT_EXEMPT) < 0) {
		free(m->origin);
		msg_free(m);
		return -ENOMEM;
	}
	m->sender_id = rec->sender_id;
	m->pid = rec->pid;
	m->uid = rec->uid;
	m->attempts = rec->attempts;
	m->origin_attempts = rec->origin_attempts;
	mailbox_add_queued(mb, m);
	*out = m;
	return 0;
}
