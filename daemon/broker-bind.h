/*
 * broker-bind.h - what the lifecycle layer (broker.c) asks of the
 * bindings when a peer or a mailbox goes.
 */
#ifndef MBXD_BROKER_BIND_H
#define MBXD_BROKER_BIND_H

#include "broker.h"

struct mailbox;

/*
 * The receiver of mb loses the binding (unbind, replace, rebind, gone):
 * its receives parked there end with err, its messages in flight go back
 * to the queue, and with err set it is told (REVOKE).
 */
void	 broker_drop_receiver(struct broker *b, struct mailbox *mb, int err);
/* With no receiver, the first standby takes the binding. */
void	 broker_promote(struct broker *b, struct mailbox *mb);
/* Removes p from the standbys of mb, failing its receives there. */
void	 broker_drop_standby(struct broker *b, struct mailbox *mb,
	    struct peer *p, int err);

#endif
