/*
 * mbx.h - libmbx, the client library of the mbx mailbox broker.
 *
 * A process opens a connection to mbxd with mbx_open() and then creates,
 * binds, sends to and receives from named mailboxes.  Every call returns 0
 * (or a length) on success and -1 with errno set on failure; a call that
 * fails did nothing: a failed send enqueued nothing, a failed receive
 * consumed nothing.  The exception is ECONNRESET: the daemon went away
 * during the call, and with it every message it held.  Every call may
 * also fail with ENOMEM.  The library never prints, exits or aborts, and never
 * returns EINTR: a signal interrupts nothing, because the daemon enforces
 * every deadline and always answers.
 *
 * One mbx_t is used by one thread at a time; a process may open many.
 * See mbx(3) and mbx(7).
 */
#ifndef MBX_H
#define MBX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MBX_DEFAULT_SOCKET	"/run/mbx/mbxd.sock"
#define MBX_NAME_MAX		255

/* Capacity of a mailbox with no count limit (bounded by the memory cap). */
#define MBX_UNBOUNDED		(-1L)
/* Defaults of a new mailbox. */
#define MBX_DEFAULT_CAPACITY	1024L
#define MBX_DEFAULT_MAX_MSG	(1024u * 1024)
/*
 * Largest message that travels inline through the socket.  Larger ones go
 * as zero-copy messages (mbx_send() does that by itself) and need a
 * mailbox, and a daemon (limits.max_msg in mbxd.json(5)), that take them.
 */
#define MBX_MAX_MSG_LIMIT	(16u * 1024 * 1024)

/* mbx_bind() modes */
#define MBX_BIND_EXCLUSIVE	0	/* EBUSY if someone else is bound */
#define MBX_BIND_REPLACE	1	/* take the binding now */
#define MBX_BIND_QUEUE		2	/* stand by, FIFO, until it is free */

/* mbx_send() flags */
#define MBX_SYNC		0x1	/* return once the receiver has it */

typedef struct mbx mbx_t;

struct mbx_attr {
	long	capacity;	/* 0 rendezvous, N bounded, MBX_UNBOUNDED */
	size_t	max_msg;	/* largest message accepted, in bytes */
	unsigned mode;		/* permission bits as for a file; 0: 0600 */
	gid_t	gid;		/* group; (gid_t)-1: the creator's */
	/*
	 * Work queues (see MBX_OPT_ACK).  max_attempts: a message delivered
	 * that many times that comes back again goes to the mailbox named
	 * dead_letter (0: unlimited, and then dead_letter may be NULL).
	 * ack_timeout_ms: a message received with MBX_OPT_ACK and not
	 * acknowledged within it goes back (0: never).
	 */
	long	max_attempts;
	long	ack_timeout_ms;
	const char *dead_letter;
	/*
	 * Nonzero: every message is kept on disk by mbxd (its state_dir):
	 * a send returns once its message is synced there, a receive once
	 * its removal is, and a crash of mbxd loses neither (mbx(7)).  Not
	 * with capacity 0; mbx_send() with MBX_SYNC to it fails EINVAL.
	 */
	long	durable;
	long	reserved[1];	/* room for later fields; zeroed by init */
};

struct mbx_meta {
	char	mailbox[MBX_NAME_MAX + 1];	/* where it came from; "@ID"
						 * for a direct message */
	long	sender_id;	/* reply with a send to "@<sender_id>" */
	pid_t	pid;		/* the sender's credentials at connect time */
	uid_t	uid;
	size_t	len;		/* payload length */
	uint64_t id;		/* unique while mbxd runs; kept when the
				 * message is delivered again */
	unsigned attempt;	/* its delivery in this mailbox: 1, 2, ... */
	/*
	 * A dead letter: the mailbox it was moved from and how many times
	 * it was delivered there ("" and 0 for any other message).
	 */
	unsigned origin_attempts;
	char	origin[MBX_NAME_MAX + 1];
	long	reserved[4];	/* room for later fields */
};

/*
 * Connects to mbxd at socket_path; NULL means $MBX_SOCKET, else
 * MBX_DEFAULT_SOCKET.  Blocks until the daemon has answered the version
 * handshake.  Returns NULL with errno: ENOENT/ECONNREFUSED no daemon,
 * EACCES the socket is not ours to use, EPROTO version mismatch, EDQUOT
 * this uid has too many connections, ENOBUFS the daemon has too many,
 * ENAMETOOLONG path too long, ECONNRESET, ENOMEM.
 */
mbx_t	*mbx_open(const char *socket_path);

/* Closes the connection; bindings and waits end with it.  NULL is fine. */
void	 mbx_close(mbx_t *c);

/*
 * The connection's descriptor, for poll()/epoll in the caller's loop.
 * Between calls the daemon sends only notices (this handle lost a
 * binding, a mailbox it used is gone), which the next call reads, or
 * closes the connection (the next call fails with ECONNRESET).  Messages
 * arrive as answers to receives: a caller driven by poll() receives with
 * timeout 0 until EAGAIN.  Do not read from or write to it.
 */
int	 mbx_fd(const mbx_t *c);

/* This connection's client id: its direct address is "@<id>". */
long	 mbx_id(const mbx_t *c);

/* Fills a with the defaults: capacity MBX_DEFAULT_CAPACITY, max_msg
 * MBX_DEFAULT_MAX_MSG, mode 0 (the daemon's default, 0600), gid -1 (the
 * creator's group). */
void	 mbx_attr_init(struct mbx_attr *a);

/*
 * Creates mailbox name (1-255 bytes of [A-Za-z0-9._:/-]) with attributes a
 * (NULL: defaults), owned by this connection's uid.  Like a file, its mode
 * gives send (write bit) and bind/receive (read bit) rights to the owner,
 * the group and others.  EEXIST, EINVAL (bad name, capacity < -1, max_msg
 * 0 or above the daemon's limit, mode above 0777), EPERM (a group the
 * caller is not in), EDQUOT (the uid owns too many mailboxes).
 */
int	 mbx_create(mbx_t *c, const char *name, const struct mbx_attr *a);

/*
 * Destroys mailbox name and its queue.  Every sender and receiver waiting
 * on it fails with EIDRM.  ENOENT, EINVAL (a direct address).
 */
int	 mbx_destroy(mbx_t *c, const char *name);

/*
 * Binds this connection as the receiver of name: MBX_BIND_EXCLUSIVE fails
 * with EBUSY if another connection is bound; MBX_BIND_REPLACE takes the
 * binding now; MBX_BIND_QUEUE stands by and takes the binding in FIFO
 * order when the receiver unbinds, disconnects or is moved.  Binding again
 * when already the receiver succeeds.  ENOENT, EINVAL, EACCES (no read
 * permission), EDQUOT (the mailbox has too many standbys).
 */
int	 mbx_bind(mbx_t *c, const char *name, int how);

/*
 * Gives up the binding (or the standby place) on name; the first standby
 * takes over.  ENOENT, EPERM (neither bound nor standing by).
 */
int	 mbx_unbind(mbx_t *c, const char *name);

/*
 * Sends len bytes to mailbox name or to a direct address "@ID".
 * timeout_ms as in poll(): -1 waits for room for ever, 0 never waits
 * (EAGAIN), N > 0 waits at most N ms (ETIMEDOUT).  With MBX_SYNC the call
 * returns only once the bound receiver has received the message; if the
 * deadline passes first the message is withdrawn.  A rendezvous mailbox
 * (capacity 0) always behaves as MBX_SYNC.  Errors: ENOENT, EINVAL,
 * EACCES (no write permission), EMSGSIZE (len above the mailbox's
 * max_msg), ENOBUFS (the daemon's memory cap, or this uid's share of it),
 * EDQUOT (this handle has too many calls waiting), EAGAIN, ETIMEDOUT,
 * EIDRM (destroyed while waiting), ECONNRESET.
 */
int	 mbx_send(mbx_t *c, const char *name, const void *data, size_t len,
	    int flags, int timeout_ms);

/*
 * Receives the oldest message of name into buf (at most cap bytes) and
 * returns its length.  name NULL receives from every mailbox this handle
 * is bound to and from its direct address, oldest first.  meta (may be
 * NULL) tells where the message came from.  timeout_ms as for mbx_send().
 * Errors: EPERM (not the bound receiver; a standby's blocking or timed
 * receive waits until it is bound), EMSGSIZE (cap too small: the message
 * stays queued), ENOENT, EINVAL, EAGAIN, ETIMEDOUT, EIDRM, EDQUOT (this
 * handle has too many calls waiting), ECONNRESET.
 */
ssize_t	 mbx_recv(mbx_t *c, const char *name, void *buf, size_t cap,
	    struct mbx_meta *meta, int timeout_ms);

/*
 * Owner calls: the mailbox's owner or an administrator (uid 0, or a group
 * the daemon's configuration names) may make them; others get EACCES.
 * mbx_destroy(), mbx_rebind(), mbx_evict() need the same.
 */

/* Sets the permission bits (0 to 0777) of name.  ENOENT, EINVAL, EACCES. */
int	 mbx_chmod(mbx_t *c, const char *name, unsigned mode);
/*
 * Gives name to uid and/or group gid; (uid_t)-1 or (gid_t)-1 keeps that
 * part.  Only an administrator may change the owner; the owner may set a
 * group it belongs to.  ENOENT, EINVAL, EACCES.
 */
int	 mbx_chown(mbx_t *c, const char *name, uid_t uid, gid_t gid);
/*
 * Drops every message queued in name.  Messages in flight to the receiver
 * and senders still waiting for room are not touched.  ENOENT, EACCES.
 */
int	 mbx_purge(mbx_t *c, const char *name);

/*
 * Batches: many messages per call and per round trip.
 */

struct mbx_smsg {		/* one message of mbx_sendv() */
	const char	*name;	/* mailbox or "@ID" */
	const void	*data;
	size_t		 len;
};

struct mbx_rmsg {		/* one slot of mbx_recvv() */
	void		*buf;	/* in: where the payload goes */
	size_t		 cap;	/* in: room there */
	size_t		 len;	/* out: the payload's length */
	struct mbx_meta	 meta;	/* out: as for mbx_recv() */
};

/*
 * Sends v[0..n) in order, each as mbx_send() without MBX_SYNC would, and
 * returns how many were enqueued: a prefix of v, each message exactly
 * once, the rest not at all.  It stops at the first message that cannot
 * be enqueued without waiting; it waits (as timeout_ms says) only when
 * not even the first could go, and then for that one alone.  A rendezvous
 * mailbox takes one message per call, and so does a message longer than
 * the handle's MBX_OPT_ZEROCOPY (sent as mbx_send() would).  Errors
 * (nothing was enqueued): as mbx_send(), for v[0].
 */
ssize_t	 mbx_sendv(mbx_t *c, const struct mbx_smsg *v, size_t n,
	    int timeout_ms);

/*
 * Receives up to n messages of name (NULL: any, as mbx_recv()) into v, in
 * order, and returns how many (at least 1).  Only the first may wait, as
 * timeout_ms says; the others are those already there.  It stops before a
 * message larger than its slot (EMSGSIZE if that is the first).  Errors
 * as mbx_recv().
 */
ssize_t	 mbx_recvv(mbx_t *c, const char *name, struct mbx_rmsg *v, size_t n,
	    int timeout_ms);

/*
 * Zero-copy messages: the payload lives in shared memory (a memfd whose
 * descriptor travels over the socket), so neither the daemon nor the
 * socket copies it.
 *
 * mbx_msg_alloc() returns a message buffer of len bytes for the caller
 * to fill in place through mbx_msg_data().  Like malloc(), it is not
 * cleared: a new buffer holds zeros, a recycled one (MBX_SHARED) what an
 * earlier shared message of this handle left there (its receivers, of
 * the same user, may have written it too).  Fill all len bytes.  mbx_sendmsg()
 * sends it as mbx_send() would and, on success, takes it: the caller must
 * not touch it again.  On failure the message stays the caller's (send
 * it again or free it).  By default the buffer is sealed before it goes
 * (write, grow, shrink and seal are forbidden for good, checked by the
 * daemon): the receiver may trust it never changes.  With MBX_SHARED the
 * buffer is not sealed but recycled: once the receiver has freed it, the
 * library reuses it for a later mbx_msg_alloc() of this handle, with no
 * new shared memory and no new page faults.  The daemon accepts MBX_SHARED
 * only into a mailbox that no other user can receive from (owned by the
 * sender's uid with no group or other read bit, or the direct address of
 * a connection of the same uid): the receiver must copy what it wants to
 * keep, since the sender may write the buffer again once it is released.
 * Each zero-copy message holds a descriptor in the daemon: a uid may have
 * limits.max_fds_per_uid of them queued (EMFILE past that).
 *
 * mbx_recvmsg() receives as mbx_recv() would, without a buffer size: *m
 * gets a message whose data the caller reads in place (mapped read-only)
 * until mbx_msg_free().  Any message, small or large, sealed or shared,
 * may be received with either mbx_recv() or mbx_recvmsg(), and any size
 * may be sent with mbx_send(): above MBX_OPT_ZEROCOPY bytes mbx_send()
 * itself uses a sealed buffer.  Should a shared message still reach a
 * receiver of another uid (the mailbox's mode changed after the send),
 * the daemon hands that receiver a sealed copy instead.
 *
 * mbx_msg_free() releases a message (allocated or received); NULL is
 * fine.  A received message must be freed before its handle is closed.
 */
typedef struct mbx_msg mbx_msg_t;

#define MBX_SHARED		0x2	/* mbx_sendmsg(): recycle, do not seal */

mbx_msg_t *mbx_msg_alloc(mbx_t *c, size_t len);
void	*mbx_msg_data(mbx_msg_t *m);
size_t	 mbx_msg_len(const mbx_msg_t *m);
int	 mbx_sendmsg(mbx_t *c, const char *name, mbx_msg_t *m, int flags,
	    int timeout_ms);
int	 mbx_recvmsg(mbx_t *c, const char *name, mbx_msg_t **m,
	    struct mbx_meta *meta, int timeout_ms);
void	 mbx_msg_free(mbx_msg_t *m);

/*
 * Per-handle options.
 *
 * MBX_OPT_PREFETCH (default 64, 1 to 256): how many messages a receive
 * asks the daemon for at once.  The first answers the call; the others
 * wait in the library, still owned by the daemon (in flight, returned to
 * the head of their mailbox if this handle loses its binding or closes),
 * and answer the next receives without a round trip.  Each receive still
 * writes its acknowledgement before it returns.  Messages held this way
 * do not make mbx_fd() readable: a caller driven by poll() receives with
 * timeout 0 until EAGAIN.
 *
 * MBX_OPT_CREDIT (default 1; 0: every send waits for its answer): 1
 * lets mbx_send() and mbx_sendv() post a message without waiting for the
 * daemon's answer when the daemon has granted this handle room in that
 * mailbox (credit).  Such a send cannot fail at the daemon, so an error
 * still means nothing happened; the call returns before the daemon has
 * read the message.  Through the channel (shared memory rings, which
 * every handle that can map them uses) order is causal between
 * processes, and a post dropped because its mailbox was destroyed or its
 * grant withdrawn (a chmod, a full bounded mailbox) is sent again by name
 * before the call returns.  On the socket (no channel) order between
 * processes follows the daemon's reads, the library keeps one thread's
 * order across handles (it waits at most 500 ms for the daemon to read
 * what another handle posted last), and a message posted to a mailbox
 * destroyed meanwhile is lost with it.  A zero-copy send earns credit
 * for zero-copy messages too.
 *
 * MBX_OPT_ZEROCOPY (default MBX_MAX_MSG_LIMIT, 0 to MBX_MAX_MSG_LIMIT):
 * mbx_send() and mbx_sendv() send a payload longer than this many bytes
 * zero-copy, in a sealed buffer, as mbx_sendmsg() without MBX_SHARED
 * would.  A sealed buffer is new shared memory each time, so below a few
 * MiB copying through the socket is faster (see README, Performance);
 * lower it to keep large payloads out of the daemon's memory.
 *
 * Returns 0, or -1 with EINVAL (unknown option or value).  The
 * environment variables MBX_PREFETCH=N, MBX_CREDIT=0 and MBX_ZEROCOPY=N
 * set the defaults of new handles.
 */
#define MBX_OPT_PREFETCH	1
#define MBX_OPT_CREDIT		2
#define MBX_OPT_ZEROCOPY	3
/*
 * MBX_OPT_ACK (default 0; 1 to MBX_ACK_LIMIT): explicit acknowledgement.
 * With n >= 1 a receive no longer consumes: the message stays the
 * daemon's until mbx_ack() (done for good) or mbx_nack() (back to its
 * mailbox), and goes back to the head of its mailbox by itself, with its
 * attempt count raised, when this handle closes, its process dies, its
 * binding moves, or the mailbox's ack_timeout_ms passes.  At most n
 * messages are received and not yet acknowledged on the handle: a
 * receive past that fails with EBUSY without waiting.  Nothing is held
 * ahead of calls (MBX_OPT_PREFETCH does not apply): a receive asks the
 * daemon for what it hands over, so a message given back is at the head
 * for the next receive.  Changing n below the count held, or to 0 while
 * any is held: EBUSY.
 */
#define MBX_OPT_ACK		4
#define MBX_ACK_LIMIT		65536

int	 mbx_setopt(mbx_t *c, int opt, long value);

/*
 * Explicit acknowledgement (MBX_OPT_ACK).  m is the meta a receive of
 * this handle filled in.
 *
 * mbx_ack(): the message is done: once it returns 0 the message never
 * comes back, even if the process dies at once.  mbx_nack(): it goes back
 * to the head of its mailbox now (delay_ms 0) or after delay_ms (at most
 * one day), to be delivered again with attempt + 1, or to the mailbox's
 * dead-letter mailbox once it was delivered max_attempts times.
 *
 * Neither waits for the daemon as a rule: the acknowledgement is written
 * and the call returns.  Only when the daemon took messages back from
 * this handle since its last look (a timeout, a rebind, an evict), when
 * the handle has no channel (see MBX_OPT_CREDIT), or for a message whose
 * sender waits for it (MBX_SYNC) does the call wait for the daemon's
 * answer.  Errors: EINVAL (no MBX_OPT_ACK on this handle, m NULL, a bad
 * delay), ESTALE (this handle no longer holds that message: taken back,
 * withdrawn by its synchronous sender, acknowledged already), ECONNRESET.
 */
int	 mbx_ack(mbx_t *c, const struct mbx_meta *m);
int	 mbx_nack(mbx_t *c, const struct mbx_meta *m, int delay_ms);

/*
 * Operator calls, used by mbxctl(1).
 */

/*
 * Moves the binding of name to client id, which must be standing by on it
 * (ESRCH otherwise).  Queued messages stay, in order, for the new receiver.
 */
int	 mbx_rebind(mbx_t *c, const char *name, long id);

/*
 * Removes the current receiver of name, whoever it is; the first standby
 * takes over.  ENOENT, EPERM (nobody is bound).
 */
int	 mbx_evict(mbx_t *c, const char *name);

/*
 * The daemon's mailbox table (mbx_list) or client table (mbx_clients) as a
 * JSON array in a NUL-terminated string that the caller frees with free().
 * See mbxctl(1) for the keys.
 */
int	 mbx_list(mbx_t *c, char **json);
int	 mbx_clients(mbx_t *c, char **json);

#ifdef __cplusplus
}
#endif

#endif /* MBX_H */
