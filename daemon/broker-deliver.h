/*
 * broker-deliver.h - what the layers above delivery (bindings, the
 * mailbox and peer lifecycle) ask of it: take a message out, free it,
 * and wake whatever a mailbox's new state allows.
 */
#ifndef MBXD_BROKER_DELIVER_H
#define MBXD_BROKER_DELIVER_H

#include "broker.h"

struct mailbox;

/* Frees m (out of every list already) and releases its charge. */
void	 broker_msg_free(struct broker *b, struct msg *m);
/* Frees m wherever it is; its waiting sender gets err (0: nobody). */
void	 broker_withdraw(struct broker *b, struct msg *m, int err);
/* Moves waiting senders in and hands messages to parked receives. */
void	 broker_pump(struct broker *b, struct mailbox *mb);

#endif
