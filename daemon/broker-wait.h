/*
 * broker-wait.h - parked calls and their deadlines (redis's blocked.c and
 * timeout.c): a send waiting for room or a receiver, a receive waiting
 * for a message, each with its place in one deadline heap and its cost
 * charged to its uid.  One way out for every reason a call ends:
 * broker_wait_end().  This layer answers calls but moves no message; the
 * delivery layer above decides what an expired call means.
 */
#ifndef MBXD_BROKER_WAIT_H
#define MBXD_BROKER_WAIT_H

#include <stdbool.h>
#include <stdint.h>

#include "broker.h"

struct mailbox;

/*
 * Parks a call of p (answering req later), with a deadline timeout_ms
 * from now when positive; NULL with *err set (-EDQUOT past p's parked
 * calls, -ENOBUFS past the memory its uid may hold, -ENOMEM).
 */
struct wait *broker_wait_new(struct broker *b, struct peer *p,
	    enum wait_kind kind, uint32_t req, int timeout_ms, int *err);
/* Unparks w, answering its caller with err when answer is set. */
void	 broker_wait_end(struct broker *b, struct wait *w, int err,
	    bool answer);
/* Ends p's receives parked on mb (not those on "any") with err. */
void	 broker_wait_fail_recvs(struct broker *b, struct peer *p,
	    struct mailbox *mb, int err);
/* The first receive parked by p that a message of mb may answer. */
struct wait *broker_wait_find_recv(const struct peer *p,
	    const struct mailbox *mb);
/* The parked call whose deadline is earliest and at or before now. */
struct wait *broker_wait_expired(const struct broker *b, uint64_t now);

#endif
