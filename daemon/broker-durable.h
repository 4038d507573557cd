/*
 * broker-durable.h - durable mailboxes as the broker keeps them
 * (PROTOCOL.md, "Durable mailboxes"): the state directory, and what each
 * change of a durable mailbox appends to its journal.
 *
 * A layer of the broker above the lookups and below delivery: these
 * functions append and mark the mailbox dirty; the commit at the end of
 * each pass (broker_commit(), broker-deliver.c) writes, syncs and
 * answers.  An append that fails for memory is logged: the change holds
 * in memory, and a crash before the next good commit may undo it.
 */
#ifndef MBXD_BROKER_DURABLE_H
#define MBXD_BROKER_DURABLE_H

#include <stdbool.h>

#include "broker.h"
#include "record.h"

struct journal;
struct mailbox;
struct msg;

/* Opens (creating it if need be) and locks the state directory; -errno. */
int	 broker_state_open(struct broker *b);
/* mb was appended to: its journal is written at the next commit. */
void	 broker_dirty(struct broker *b, struct mailbox *mb);
/* The attributes mb's ATTR records. */
void	 broker_durable_attr(const struct mailbox *mb, struct record_attr *a);
/* m's PUT into mb's journal (m->log_seq set); false when out of memory. */
bool	 broker_log_put(struct broker *b, struct mailbox *mb, struct msg *m);
/* m, of a durable mailbox, leaves it for good (a DEL), or is handed out. */
void	 broker_log_del(struct broker *b, struct msg *m);
void	 broker_log_hand(struct broker *b, struct msg *m);
/*
 * Before mb's messages go out to a receiver: what was appended of them
 * (HAND) is written and synced now, so that a crash after the receiver
 * has one brings it back as a redelivery.  Errors are logged (and a
 * failed sync fails the mailbox); the delivery goes on.
 */
void	 broker_log_flush(struct broker *b, struct mailbox *mb);
/*
 * err from writing or syncing mb's log (or from a log it lacks), said
 * once: a failed sync, or no log, takes mb out of service for good.
 */
void	 broker_log_error(struct mailbox *mb, int err);
/* mb keeps its messages in j from now on; 0 or -ENOMEM (nothing done). */
int	 broker_durable_add(struct broker *b, struct mailbox *mb,
	    struct journal *j);
/*
 * A message kept outside the daemon (in a log, or in the restart state)
 * back at the tail of mb's queue as message id, charged to its sender's
 * uid beyond any quota (it was accepted under the quotas of its time).
 * 0 or -ENOMEM (nothing done).
 */
int	 broker_msg_restore(struct broker *b, struct mailbox *mb,
	    const struct record_msg *rec, uint64_t id, struct msg **out);
/* mb's attributes or owner changed. */
void	 broker_log_attr(struct broker *b, struct mailbox *mb);

#endif
