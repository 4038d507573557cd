/*
 * broker.h - the mailbox broker: the mailbox table, the connected peers,
 * the memory account and every parked call with its deadline.
 *
 * The broker is pure state: no sockets, no event loop, no global
 * variables.  A test builds one with broker_new(), drives it with the
 * calls below (passing its own clock if it likes) and frees it.
 *
 * Conventions: calls return 0 on success, BROKER_PARKED when the call
 * waits and will be answered later through the peer's ops, or a negative
 * errno.  An error return changed nothing.
 */
#ifndef MBXD_BROKER_H
#define MBXD_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "account.h"
#include "deadline.h"
#include "peer.h"
#include "table.h"

#define BROKER_PARKED	1
/* Most messages one receive is answered with. */
#define BROKER_RECV_MAX	256
/* Most zero-copy messages (descriptors) one receive is answered with. */
#define BROKER_RECV_MAX_FDS	16
/*
 * A synchronous send with timeout 0 waits this long at most for the
 * parked receive that took its message to be acknowledged: "now" allows
 * the receiver's round trip, not a receiver that stopped.
 */
#define BROKER_SYNC_NOW_MS	250

/*
 * What a parked call costs the daemon (the wait, its deadline, the answer
 * it will write), charged as payload bytes to its uid's share and to the
 * memory cap: a uid's parked calls, over all its connections, are bounded
 * like the rest of what it makes the daemon hold (ENOBUFS past them).
 */
#define BROKER_WAIT_COST	256

#define BROKER_DEFAULT_MAX_MEMORY	(256ull * 1024 * 1024)
#define BROKER_DEFAULT_MAX_MSG		(1024ull * 1024)
/* Largest max_msg a configuration may allow (zero-copy messages). */
#define BROKER_MAX_MSG_LIMIT		(4ull * 1024 * 1024 * 1024)

/*
 * Limits.  A zero field takes its default (BROKER_DEFAULT_*).  The per-uid
 * quotas do not apply to administrators; the global caps apply to all.
 */
struct broker_limits {
	uint64_t	max_memory;	/* payload bytes held, all mailboxes */
	uint64_t	max_msg;	/* largest message any mailbox takes */
	uint64_t	max_bytes_per_uid; /* default: half of max_memory */
	unsigned	max_connections;
	unsigned	max_connections_per_uid;
	unsigned	max_mailboxes_per_uid;
	unsigned	max_pending_per_connection;
	unsigned	max_standby_per_mailbox;
	unsigned	max_fds_per_uid;	/* zero-copy messages held */
	unsigned	max_msgs_per_uid;	/* messages held, any size */
	gid_t		admin_gids[16];	/* besides uid 0 */
	size_t		nadmin_gids;
};

#define BROKER_DEFAULT_MAX_CONNECTIONS		16384
#define BROKER_DEFAULT_MAX_CONNECTIONS_PER_UID	1024
#define BROKER_DEFAULT_MAX_MAILBOXES_PER_UID	4096
#define BROKER_DEFAULT_MAX_PENDING		256
#define BROKER_DEFAULT_MAX_STANDBY		64
#define BROKER_DEFAULT_MAX_FDS_PER_UID		256
#define BROKER_DEFAULT_MAX_MSGS_PER_UID		262144

/* Owner, group and mode of a new mailbox. */
struct broker_attr {
	long		capacity;	/* -1 unbounded, 0 rendezvous */
	uint64_t	max_msg;	/* 0: default */
	uint32_t	mode;		/* permission bits; 0: 0600 */
	uid_t		uid;		/* with a NULL creator: the owner */
	gid_t		gid;		/* (gid_t)-1: the creator's group */
	/* Work queues: all three 0 / empty by default. */
	uint32_t	max_attempts;	/* needs dead_letter */
	uint32_t	ack_timeout_ms;
	const char	*dead_letter;	/* a mailbox name, dead_letter_len */
	size_t		dead_letter_len;
	bool		durable;	/* its messages kept on disk */
};

#define BROKER_DEFAULT_MODE	0600

struct broker {
	struct broker_limits limits;
	struct table	 mailboxes;	/* names and "@ID" direct addresses */
	size_t		 nnamed;	/* mailboxes that are not direct */
	TAILQ_HEAD(, peer) peers;
	size_t		 npeers;
	struct deadline_heap deadlines;	/* parked calls */
	struct deadline_heap timers;	/* mailboxes: acknowledgements due */
	struct deadline_heap delays;	/* delayed messages (NACK) */
	struct accounts	 accounts;
	uint64_t	 next_peer_id;
	uint64_t	 next_mailbox_id;
	uint64_t	 next_msg_id;
	uint64_t	 mem_used;
	uint64_t	(*clock)(void);	/* monotonic milliseconds */
	struct ptrvec	 withdrawn;	/* struct grant *: told they end */
	size_t		 send_waits;	/* parked sends, all peers */
	/* Durable mailboxes (broker-durable.h). */
	char		*state_dir;	/* where their logs live */
	int		 state_fd;	/* it, open and locked; -1 until needed */
	unsigned	 sync_ms;	/* 0: each commit syncs ("always") */
	struct ptrvec	 durables;	/* struct mailbox *: every durable one */
	struct ptrvec	 dirty;		/* struct mailbox *: appended this pass */
	TAILQ_HEAD(, wait) commits;	/* WAIT_COMMIT: answered at a commit */
	size_t		 last_commit;	/* staged sends the last commit took */
};

struct broker_send {
	const char	*name;
	size_t		 name_len;
	const void	*data;
	size_t		 len;
	bool		 sync;
	int		 timeout_ms;	/* -1 for ever, 0 never wait */
	int		 fd;		/* a memfd payload of len bytes, or -1;
					 * taken (set to -1) when queued */
	bool		 shared;	/* that memfd is recycled, not sealed */
	bool		 want_credit;	/* the answer can carry a grant */
	/* out: the sender's credit in the mailbox after a success */
	uint64_t	 mailbox_id;
	unsigned	 credit_count;
	uint64_t	 credit_bytes;
	bool		 credit_zerocopy; /* memfd posts may use it */
	bool		 credit_shared;	/* shared memfd posts too */
	uint64_t	 max_msg;	/* the mailbox's, for its posts */
};

struct broker_recv {
	const char	*name;		/* NULL: any bound mailbox and @ID */
	size_t		 name_len;
	uint64_t	 cap;		/* largest payload taken */
	int		 timeout_ms;
	unsigned	 max;		/* messages handed at once, >= 1 */
	uint64_t	 budget;	/* their total payload, past the first */
	bool		 explicit_ack;	/* the ack timeout applies */
};

struct broker *broker_new(const struct broker_limits *limits);
/* Frees every mailbox, message and parked call; peers must be gone. */
void	 broker_free(struct broker *b);
uint64_t broker_now(const struct broker *b);

/*
 * Registers p (embedded in the caller's client, with its credentials
 * filled in) under a new id and gives it its direct address.  0, -ENOMEM,
 * -ENOBUFS (the daemon's connection cap) or -EDQUOT (p's uid's).
 */
int	 broker_peer_add(struct broker *b, struct peer *p,
	    const struct peer_ops *ops, void *ctx);
/*
 * p is gone: its parked sends are withdrawn, its parked receives dropped
 * (neither is answered), its in-flight messages return to the head of
 * their mailboxes, its bindings pass to the standbys.
 */
void	 broker_peer_remove(struct broker *b, struct peer *p);
struct peer *broker_peer_find(struct broker *b, uint64_t id);

/*
 * Mailbox calls take the calling peer for the permission checks; a NULL
 * peer is the daemon itself (the configuration).
 */
int	 broker_create(struct broker *b, struct peer *p, const char *name,
	    size_t len, const struct broker_attr *a);
int	 broker_destroy(struct broker *b, struct peer *p, const char *name,
	    size_t len);
/* Drops every queued message (not those in flight); waiting senders stay. */
int	 broker_purge(struct broker *b, struct peer *p, const char *name,
	    size_t len);
int	 broker_chmod(struct broker *b, struct peer *p, const char *name,
	    size_t len, uint32_t mode);
/* (uid_t)-1 or (gid_t)-1 keeps that part. */
int	 broker_chown(struct broker *b, struct peer *p, const char *name,
	    size_t len, uid_t uid, gid_t gid);
/* uid 0 or a member of an administrators' group. */
bool	 broker_is_admin(const struct broker *b, const struct peer *p);
/*
 * Creates name, or changes the capacity and max_msg of the existing
 * mailbox, keeping its queue.  Returns 0 when nothing changed,
 * BROKER_CREATED, BROKER_CHANGED, or a negative errno.
 */
#define BROKER_CREATED	1
#define BROKER_CHANGED	2
int	 broker_declare(struct broker *b, const char *name, size_t len,
	    const struct broker_attr *a);
/* New limits; what is held beyond them stays, later sends see them. */
void	 broker_set_limits(struct broker *b, const struct broker_limits *l);
int	 broker_bind(struct broker *b, struct peer *p, const char *name,
	    size_t len, int how);
int	 broker_unbind(struct broker *b, struct peer *p, const char *name,
	    size_t len, bool evict);
int	 broker_rebind(struct broker *b, struct peer *p, const char *name,
	    size_t len, uint64_t target);

int	 broker_send(struct broker *b, struct peer *p, uint32_t req,
	    struct broker_send *s);
/*
 * Before p sends by name into the mailbox called name: when it is full
 * and others' grants hold room there, has their holders told that those
 * grants end (credit_withdraw()); returns how many.  When some were, or
 * when broker_withdrawing() says so after a permission change, the
 * caller drains the holders' rings and then calls broker_withdraw_end(),
 * which gives the room back.  A bounded mailbox so takes exactly its
 * capacity whoever holds credit in it.
 */
unsigned broker_withdraw_room(struct broker *b, struct peer *p,
	    const char *name, size_t len);
bool	 broker_withdrawing(const struct broker *b);
void	 broker_withdraw_end(struct broker *b);
/*
 * Enqueues sends in order, never waiting, until the first that cannot
 * be (its error goes to *err); returns how many were enqueued.  A send
 * that would wait for a receiver (sync or rendezvous) stops the batch
 * with -EAGAIN.
 */
size_t	 broker_sendv(struct broker *b, struct peer *p,
	    struct broker_send *s, size_t n, int *err);
/*
 * A send on credit (see credit.h): never answered.  The payload is data,
 * or with fd >= 0 the checked memfd fd (always taken) holding len bytes.
 * A post with no grant behind it (its mailbox was destroyed meanwhile) is
 * dropped: BROKER_POST_DROPPED, so that a ring post's sender can be told
 * (GRANT_CHECK).  Returns -EMSGSIZE for a post larger than its mailbox
 * takes, which no honest client sends (the caller closes the
 * connection), else 0.
 */
#define BROKER_POST_DROPPED	1
int	 broker_post(struct broker *b, struct peer *p, uint64_t mailbox_id,
	    const void *data, size_t len, int fd, bool shared);
/*
 * 0 when p's deliver op was called with one or more messages, else as
 * above.
 */
int	 broker_recv(struct broker *b, struct peer *p, uint32_t req,
	    const struct broker_recv *r);
/* 0, or -ESTALE when the message is no longer in flight at p. */
int	 broker_ack(struct broker *b, struct peer *p, uint64_t msg_id);
/*
 * The same for an ACK that asks for its answer (req): BROKER_PARKED when
 * the message was a durable mailbox's, answered once its DEL is synced.
 */
int	 broker_ack_reply(struct broker *b, struct peer *p, uint64_t msg_id,
	    uint32_t req);
/*
 * The group commit, at the end of every pass: every durable mailbox
 * appended to is written (and synced, with sync "always"), then its
 * staged sends are queued and answered, or failed with the error.
 */
void	 broker_commit(struct broker *b);
/* Sends staged for the next commit, over all durable mailboxes. */
size_t	 broker_staged(const struct broker *b);
/*
 * Whether a commit should go now rather than wait a moment: something is
 * appended, and no send is staged (acknowledgements wait for nobody) or
 * at least as many as the last commit took.  Senders answered by one commit send again together; without the
 * wait, one early send splits them into two commits that alternate.
 */
bool	 broker_commit_due(const struct broker *b);
/* fdatasync() of every durable mailbox written since its last sync. */
void	 broker_sync(struct broker *b);
/*
 * Where durable mailboxes keep their logs and how often they sync (0:
 * at every commit); the directory is opened only when first needed.
 * 0 or -ENOMEM.
 */
int	 broker_set_state(struct broker *b, const char *dir, unsigned sync_ms);
/*
 * Loads the durable mailboxes found in the state directory, with their
 * messages in order; one whose log is refused is made and fails its
 * calls with EIO.  0, or -errno when the directory cannot be read.
 */
int	 broker_load_durable(struct broker *b);
/*
 * p's consumption word says upto (the client's word): every message of
 * p's stored list numbered below it is acknowledged, in order.  Clamped
 * into [what it said before, one past p's last MSG].
 */
void	 broker_consumed(struct broker *b, struct peer *p, uint64_t upto);
/* True when p holds messages its consumption word may acknowledge. */
bool	 broker_has_stored(const struct peer *p);
/*
 * True while a send is parked anywhere (for room, a rendezvous, its
 * acknowledgement): a receive's store must then wake the daemon.
 */
bool	 broker_sends_wait(const struct broker *b);
/*
 * Gives a message in flight at p back to its mailbox: to the head now
 * (delay_ms 0) or after delay_ms, or to the dead-letter mailbox once it
 * was delivered max_attempts times.  0, or -ESTALE as broker_ack().
 */
int	 broker_nack(struct broker *b, struct peer *p, uint64_t msg_id,
	    uint32_t delay_ms);

/* Ends every parked call whose deadline is at or before now. */
void	 broker_expire(struct broker *b, uint64_t now);
/* The earliest deadline, or DEADLINE_NONE. */
uint64_t broker_next_deadline(const struct broker *b);
/*
 * Charges (delta > 0) or releases the memory of request bytes p has
 * announced and not yet sent, as if queued: 0, or -ENOBUFS over a cap.
 */
int	 broker_charge_input(struct broker *b, struct peer *p, int64_t delta);
/*
 * Charges the memory of p's channel (bytes) to its uid, once: 0, or
 * -ENOBUFS over a cap.  Released with the peer.
 */
int	 broker_charge_channel(struct broker *b, struct peer *p,
	    uint64_t bytes);
/*
 * True when one of p's grants has a slot and room for a post of len
 * payload bytes: its memory is charged already (see credit.h).
 */
bool	 broker_post_covered(const struct peer *p, uint64_t len);
/* Ends every parked call with -ESHUTDOWN. */
void	 broker_shutdown(struct broker *b);

/*
 * A planned restart (broker-state.c; PROTOCOL.md, "The restart, as
 * built"), once the peers are gone: the broker's counters and every named
 * mailbox that is not durable (their logs are on disk), with its queue
 * in order and its delayed messages with when they are due, as records
 * into so (state.h).  *nmailboxes and *nmsgs say
 * how many.  0 or -errno.
 */
struct state_out;
int	 broker_state_save(struct broker *b, struct state_out *so,
	    uint64_t *nmailboxes, uint64_t *nmsgs);
/*
 * The other half, into a broker with no peer yet: the whole state is
 * checked first, and -EINVAL with *why (nothing loaded) when any of it
 * is not a state of this major version, whole and undamaged.  A mailbox
 * that exists already (a durable one, loaded from its log) keeps what
 * it has and the state's copy is skipped with a log line, as is one
 * that cannot be made again (its error logged).  0 or -ENOMEM.
 */
int	 broker_state_load(struct broker *b, const uint8_t *buf,
	    uint64_t size, const char **why, uint64_t *nmailboxes,
	    uint64_t *nmsgs);

#endif
