/*
 * broker-deliver.h - what the layers above delivery (bindings, the
 * mailbox and peer lifecycle) ask of it: take a message out, free it,
 * and wake whatever a mailbox's new state allows.
 */
#ifndef MBXD_BROKER_DELIVER_H
#define MBXD_BROKER_DELIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "broker.h"

struct mailbox;

/* Frees m (out of every list already) and releases its charge. */
void	 broker_msg_free(struct broker *b, struct msg *m);
/* Frees m wherever it is; its waiting sender gets err (0: nobody). */
void	 broker_withdraw(struct broker *b, struct msg *m, int err);
/*
 * m, in flight (out of its holder's list already) or delayed, goes back
 * into its mailbox's queue, right after after (NULL: at the head), or to
 * the dead-letter mailbox once delivered max_attempts times.  Returns
 * what the next message given back in order goes after.  The caller
 * pumps the mailbox.
 */
struct msg *broker_give_back(struct broker *b, struct msg *m,
	    struct msg *after);
/*
 * m (in flight, out of its holder's list, or queued) waits outside the
 * queue until due (broker ms) and then goes back to the head (NACK).
 * False, m untouched and the reason logged, when there is no memory.
 */
bool	 broker_msg_delay(struct broker *b, struct msg *m, uint64_t due);
/* Moves waiting senders in and hands messages to parked receives. */
void	 broker_pump(struct broker *b, struct mailbox *mb);
/* Ends p's acknowledgements waiting for a commit, unanswered (p goes). */
void	 broker_commit_waits_end(struct broker *b, struct peer *p);

#endif
