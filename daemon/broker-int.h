/*
 * broker-int.h - what the broker's own files (broker.c, broker-bind.c,
 * broker-deliver.c) share with each other and nobody else.
 */
#ifndef MBXD_BROKER_INT_H
#define MBXD_BROKER_INT_H

#include <stdbool.h>
#include <sys/types.h>

#include "broker.h"

struct mailbox;

/* broker.c: lookups and permissions. */
struct mailbox *broker_lookup(const struct broker *b, const char *name,
	    size_t len);
/* A named (not direct) mailbox: -EINVAL, -ENOENT or 0. */
int	 broker_lookup_named(const struct broker *b, const char *name,
	    size_t len, struct mailbox **out);
/* A named mailbox p owns or administers: also -EACCES. */
int	 broker_lookup_owned(const struct broker *b, const struct peer *p,
	    const char *name, size_t len, struct mailbox **out);
/* May p send (S_IWOTH) to, or bind and receive (S_IROTH) from, mb? */
bool	 broker_may(const struct broker *b, const struct peer *p,
	    const struct mailbox *mb, mode_t bit);
bool	 broker_owns(const struct broker *b, const struct peer *p,
	    const struct mailbox *mb);
void	 broker_msg_free(struct broker *b, struct msg *m);

/* broker-deliver.c: parked calls and messages. */
/*
 * The shared-buffer rule: p may put a recycled (writable) buffer into mb
 * only if no other uid is meant to receive from it (see broker_send()).
 */
bool	 broker_shared_ok(const struct peer *p, const struct mailbox *mb);
/* Unparks w, answering its caller with err when answer is set. */
void	 wait_end(struct broker *b, struct wait *w, int err, bool answer);
/* Frees m wherever it is; its waiting sender gets err (0: nobody). */
void	 broker_withdraw(struct broker *b, struct msg *m, int err);
/* Moves waiting senders in and hands messages to parked receives. */
void	 broker_pump(struct broker *b, struct mailbox *mb);
/* The peer that receives from mb: its owner for a direct address. */
struct peer *mailbox_receiver(const struct mailbox *mb);
/* A parked call's deadline passed. */
void	 broker_timeout(struct broker *b, struct wait *w);

/* broker-bind.c: bindings. */
void	 broker_fail_recvs(struct broker *b, struct peer *p,
	    struct mailbox *mb, int err);
void	 broker_drop_receiver(struct broker *b, struct mailbox *mb, int err);
void	 broker_promote(struct broker *b, struct mailbox *mb);
void	 broker_drop_standby(struct broker *b, struct mailbox *mb,
	    struct peer *p, int err);

#endif
