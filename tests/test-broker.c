/*
 * test-broker.c - the daemon's core without sockets: the broker driven
 * through its calls with a test clock, peers whose ops record what they
 * were told, plus the hash table and the deadline heap under it.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "broker.h"
#include "deadline.h"
#include "mailbox.h"
#include "suites.h"
#include "table.h"

static uint64_t test_now;

static uint64_t
test_clock(void)
{
	return test_now;
}

/* What a peer was told, newest last. */
struct rec {
	struct peer	peer;
	int		nreplies;
	uint32_t	reply_req;
	int		reply_err;
	int		ndelivered;
	uint32_t	deliver_req;
	uint64_t	msg_id;
	bool		msg_sync;
	char		data[64];
	char		mailbox[256];
	bool		more;
	int		nrevoked;
	unsigned	revoke_what;
};

static void
rec_reply(struct peer *p, uint32_t req, int err)
{
	struct rec *r = p->ctx;

	r->nreplies++;
	r->reply_req = req;
	r->reply_err = err;
}

static void
rec_deliver(struct peer *p, uint32_t req, const struct msg *m, bool more)
{
	struct rec *r = p->ctx;

	r->more = more;
	r->ndelivered++;
	r->deliver_req = req;
	r->msg_id = m->id;
	r->msg_sync = m->sender != NULL;
	memset(r->data, 0, sizeof(r->data));
	/* A zero-copy payload is in its memfd, not inline. */
	if (m->fd < 0)
		memcpy(r->data, m->data, m->len < sizeof(r->data) - 1 ?
		    m->len : sizeof(r->data) - 1);
	snprintf(r->mailbox, sizeof(r->mailbox), "%s", m->mbox->name);
}

static void
rec_revoke(struct peer *p, const struct mailbox *mb, unsigned what)
{
	struct rec *r = p->ctx;

	r->nrevoked++;
	r->revoke_what = what;
}

static const struct peer_ops rec_ops = { rec_reply, rec_deliver, rec_revoke,
    NULL, NULL, NULL, NULL };

static struct broker *
new_broker(uint64_t max_memory)
{
	struct broker_limits l = { .max_memory = max_memory,
	    .max_bytes_per_uid = max_memory };
	struct broker *b = broker_new(&l);

	ck_assert_ptr_nonnull(b);
	test_now = 1000;
	b->clock = test_clock;
	return b;
}

/* A peer of uid 1000 (no admin), in group 100. */
static void
add_peer(struct broker *b, struct rec *r)
{
	memset(r, 0, sizeof(*r));
	peer_init(&r->peer);
	r->peer.uid = 1000;
	r->peer.gid = 100;
	ck_assert_int_eq(broker_peer_add(b, &r->peer, &rec_ops, r), 0);
}

/* Creates a mailbox anyone may use, owned by the test peers' uid. */
static int
do_create(struct broker *b, const char *name, long capacity)
{
	struct broker_attr a = { capacity, 0, 0666, 1000, (gid_t)-1, 0, 0,
	    NULL, 0, false };

	return broker_create(b, NULL, name, strlen(name), &a);
}

static int
do_send(struct broker *b, struct rec *r, uint32_t req, const char *name,
    const char *data, bool sync, int timeout)
{
	struct broker_send s = { .name = name, .name_len = strlen(name),
	    .data = data, .len = strlen(data), .sync = sync,
	    .timeout_ms = timeout, .fd = -1 };

	return broker_send(b, &r->peer, req, &s);
}

static int
do_recv(struct broker *b, struct rec *r, uint32_t req, const char *name,
    int timeout)
{
	struct broker_recv rq = { name, name ? strlen(name) : 0, 64, timeout,
	    1, 0, false };

	return broker_recv(b, &r->peer, req, &rq);
}

static int
do_bind(struct broker *b, struct rec *r, const char *name, int how)
{
	return broker_bind(b, &r->peer, name, strlen(name), how);
}

static struct mailbox *
mbox(struct broker *b, const char *name)
{
	return table_get(&b->mailboxes, name, strlen(name));
}

/* Receives one message and acknowledges it; returns its data. */
static const char *
take(struct broker *b, struct rec *r, const char *name)
{
	ck_assert_int_eq(do_recv(b, r, 99, name, 0), 0);
	ck_assert_int_eq(broker_ack(b, &r->peer, r->msg_id), 0);
	return r->data;
}

/* Removes the peers, checks the accounts and frees the broker. */
static void
finish(struct broker *b, struct rec **peers, size_t n)
{
	struct mailbox *mb;
	uint64_t held = 0;
	size_t pos = 0;

	for (size_t i = 0; i < n; i++)
		broker_peer_remove(b, &peers[i]->peer);
	/* The memory account matches what the mailboxes still hold. */
	while ((mb = table_next(&b->mailboxes, &pos)) != NULL)
		held += mb->bytes;
	ck_assert_uint_eq(b->accounts.bytes, held);
	/* No connection, grant or parked call is left charged to anyone. */
	for (size_t i = 0; i < b->accounts.list.len; i++) {
		const struct account *acct = b->accounts.list.items[i];

		ck_assert_uint_eq(acct->connections, 0);
		ck_assert_uint_eq(acct->zc_slots, 0);
		ck_assert_uint_gt(acct->refs, 0);
	}
	broker_free(b);
}

START_TEST(create_and_destroy)
{
	struct broker *b = new_broker(1 << 20);
	struct broker_attr too_big = { 1, PROTO_MAX_PAYLOAD + 1, 0, 0, 0, 0, 0,
	    NULL, 0, false };
	struct broker_attr one = { 1, 0, 0, 0, 0, 0, 0, NULL, 0, false };
	char big[257];

	ck_assert_int_eq(do_create(b, "jobs", 4), 0);
	ck_assert_int_eq(do_create(b, "jobs", 4), -EEXIST);
	ck_assert_int_eq(do_create(b, "bad name", 4), -EINVAL);
	ck_assert_int_eq(do_create(b, "@1", 4), -EINVAL);
	ck_assert_int_eq(do_create(b, "x", -2), -EINVAL);
	ck_assert_int_eq(broker_create(b, NULL, "x", 1, &too_big), -EINVAL);
	memset(big, 'a', sizeof(big));
	ck_assert_int_eq(broker_create(b, NULL, big, 256, &one), -EINVAL);
	ck_assert_int_eq(broker_create(b, NULL, big, 255, &one), 0);
	ck_assert_int_eq(broker_destroy(b, NULL, "jobs", 4), 0);
	ck_assert_int_eq(broker_destroy(b, NULL, "jobs", 4), -ENOENT);
	ck_assert_uint_eq(b->nnamed, 1);
	finish(b, NULL, 0);
}
END_TEST

START_TEST(bounded_queue_is_fifo_and_refuses_when_full)
{
	struct broker *b = new_broker(1 << 20);
	struct rec s, r;
	struct rec *all[] = { &s, &r };

	add_peer(b, &s);
	add_peer(b, &r);
	ck_assert_int_eq(do_create(b, "q", 2), 0);
	ck_assert_int_eq(do_send(b, &s, 1, "q", "one", false, 0), 0);
	ck_assert_int_eq(do_send(b, &s, 2, "q", "two", false, 0), 0);
	ck_assert_int_eq(do_send(b, &s, 3, "q", "three", false, 0), -EAGAIN);
	/* A timed send parks, then times out having enqueued nothing. */
	ck_assert_int_eq(do_send(b, &s, 4, "q", "four", false, 50),
	    BROKER_PARKED);
	test_now += 49;
	broker_expire(b, test_now);
	ck_assert_int_eq(s.nreplies, 0);
	test_now += 1;
	broker_expire(b, test_now);
	ck_assert_int_eq(s.nreplies, 1);
	ck_assert_int_eq(s.reply_err, -ETIMEDOUT);
	ck_assert_uint_eq(mbox(b, "q")->nqueued, 2);
	ck_assert_uint_eq(mbox(b, "q")->npending, 0);

	ck_assert_int_eq(do_bind(b, &r, "q", PROTO_BIND_EXCLUSIVE), 0);
	ck_assert_str_eq(take(b, &r, "q"), "one");
	ck_assert_str_eq(take(b, &r, "q"), "two");
	ck_assert_int_eq(do_recv(b, &r, 5, "q", 0), -EAGAIN);
	ck_assert_uint_eq(mbox(b, "q")->sent, 2);
	ck_assert_uint_eq(mbox(b, "q")->received, 2);
	finish(b, all, 2);
}
END_TEST

START_TEST(blocked_sender_enters_when_room_frees)
{
	struct broker *b = new_broker(1 << 20);
	struct rec s, r;
	struct rec *all[] = { &s, &r };

	add_peer(b, &s);
	add_peer(b, &r);
	do_create(b, "q", 1);
	do_bind(b, &r, "q", PROTO_BIND_EXCLUSIVE);
	ck_assert_int_eq(do_send(b, &s, 1, "q", "a", false, 0), 0);
	ck_assert_int_eq(do_send(b, &s, 2, "q", "b", false, -1), BROKER_PARKED);
	/* Delivered but unacknowledged still holds its slot. */
	ck_assert_int_eq(do_recv(b, &r, 3, "q", 0), 0);
	ck_assert_int_eq(s.nreplies, 0);
	ck_assert_int_eq(broker_ack(b, &r.peer, r.msg_id), 0);
	ck_assert_int_eq(s.nreplies, 1);
	ck_assert_int_eq(s.reply_req, 2);
	ck_assert_int_eq(s.reply_err, 0);
	ck_assert_str_eq(take(b, &r, "q"), "b");
	finish(b, all, 2);
}
END_TEST

START_TEST(too_small_buffer_leaves_message)
{
	struct broker *b = new_broker(1 << 20);
	struct rec s, r;
	struct rec *all[] = { &s, &r };
	struct broker_recv small = { "q", 1, 2, 0, 1, 0, false };

	add_peer(b, &s);
	add_peer(b, &r);
	do_create(b, "q", 4);
	do_bind(b, &r, "q", PROTO_BIND_EXCLUSIVE);
	do_send(b, &s, 1, "q", "hello", false, 0);
	ck_assert_int_eq(broker_recv(b, &r.peer, 2, &small), -EMSGSIZE);
	ck_assert_uint_eq(mbox(b, "q")->nqueued, 1);
	ck_assert_str_eq(take(b, &r, "q"), "hello");
	finish(b, all, 2);
}
END_TEST

START_TEST(rendezvous_completes_at_acknowledgement)
{
	struct broker *b = new_broker(1 << 20);
	struct rec s, r;
	struct rec *all[] = { &s, &r };

	add_peer(b, &s);
	add_peer(b, &r);
	do_create(b, "rv", 0);
	do_bind(b, &r, "rv", PROTO_BIND_EXCLUSIVE);
	ck_assert_int_eq(do_send(b, &s, 1, "rv", "x", false, 0), -EAGAIN);
	ck_assert_int_eq(do_send(b, &s, 2, "rv", "x", false, -1),
	    BROKER_PARKED);
	ck_assert_int_eq(do_recv(b, &r, 3, "rv", -1), 0);
	ck_assert(r.msg_sync);
	ck_assert_int_eq(s.nreplies, 0);
	ck_assert_int_eq(broker_ack(b, &r.peer, r.msg_id), 0);
	ck_assert_int_eq(s.nreplies, 1);
	ck_assert_int_eq(s.reply_err, 0);
	/* With a receiver already waiting, even timeout 0 hands it over. */
	ck_assert_int_eq(do_recv(b, &r, 4, "rv", -1), BROKER_PARKED);
	ck_assert_int_eq(do_send(b, &s, 5, "rv", "y", false, 0), BROKER_PARKED);
	ck_assert_int_eq(r.ndelivered, 2);
	ck_assert_str_eq(r.data, "y");
	finish(b, all, 2);
}
END_TEST

START_TEST(sync_send_withdrawn_at_deadline)
{
	struct broker *b = new_broker(1 << 20);
	struct rec s, r;
	struct rec *all[] = { &s, &r };

	add_peer(b, &s);
	add_peer(b, &r);
	do_create(b, "q", 8);
	do_bind(b, &r, "q", PROTO_BIND_EXCLUSIVE);
	ck_assert_int_eq(do_send(b, &s, 1, "q", "sync", true, 100),
	    BROKER_PARKED);
	ck_assert_int_eq(do_recv(b, &r, 2, "q", 0), 0);
	test_now += 100;
	broker_expire(b, test_now);
	ck_assert_int_eq(s.reply_err, -ETIMEDOUT);
	/* The receiver's late acknowledgement is refused: it must not count. */
	ck_assert_int_eq(broker_ack(b, &r.peer, r.msg_id), -ESTALE);
	ck_assert_uint_eq(mbox(b, "q")->sent, 0);
	ck_assert_int_eq(do_recv(b, &r, 3, "q", 0), -EAGAIN);
	finish(b, all, 2);
}
END_TEST

START_TEST(sync_send_queued_then_withdrawn)
{
	struct broker *b = new_broker(1 << 20);
	struct rec s, r;
	struct rec *all[] = { &s, &r };

	add_peer(b, &s);
	add_peer(b, &r);
	do_create(b, "q", 8);
	ck_assert_int_eq(do_send(b, &s, 1, "q", "sync", true, 0), -EAGAIN);
	ck_assert_int_eq(do_send(b, &s, 2, "q", "sync", true, 10),
	    BROKER_PARKED);
	ck_assert_uint_eq(mbox(b, "q")->nqueued, 1);
	test_now += 10;
	broker_expire(b, test_now);
	ck_assert_int_eq(s.reply_err, -ETIMEDOUT);
	ck_assert_uint_eq(mbox(b, "q")->nqueued, 0);
	ck_assert_uint_eq(b->accounts.bytes, 0);
	finish(b, all, 2);
}
END_TEST

START_TEST(memory_cap)
{
	struct broker *b = new_broker(8);
	struct rec s;
	struct rec *all[] = { &s };

	add_peer(b, &s);
	do_create(b, "u", -1);
	ck_assert_int_eq(do_send(b, &s, 1, "u", "12345", false, 0), 0);
	ck_assert_int_eq(do_send(b, &s, 2, "u", "6789", false, 0), -ENOBUFS);
	ck_assert_int_eq(do_send(b, &s, 3, "u", "678", false, 0), 0);
	ck_assert_uint_eq(mbox(b, "u")->nqueued, 2);
	finish(b, all, 1);
}
END_TEST

START_TEST(binding_modes)
{
	struct broker *b = new_broker(1 << 20);
	struct rec a, c, d;
	struct rec *all[] = { &a, &c, &d };

	add_peer(b, &a);
	add_peer(b, &c);
	add_peer(b, &d);
	do_create(b, "m", 8);
	ck_assert_int_eq(do_bind(b, &a, "m", PROTO_BIND_EXCLUSIVE), 0);
	ck_assert_int_eq(do_bind(b, &a, "m", PROTO_BIND_EXCLUSIVE), 0);
	ck_assert_int_eq(do_bind(b, &c, "m", PROTO_BIND_EXCLUSIVE), -EBUSY);
	ck_assert_int_eq(do_recv(b, &c, 1, "m", 0), -EPERM);
	ck_assert_int_eq(do_bind(b, &c, "m", PROTO_BIND_QUEUE), 0);
	ck_assert_int_eq(do_bind(b, &d, "m", PROTO_BIND_QUEUE), 0);
	/* A standby's non-blocking receive is refused; a blocking one waits. */
	ck_assert_int_eq(do_recv(b, &c, 2, "m", 0), -EPERM);
	ck_assert_int_eq(do_recv(b, &c, 3, "m", -1), BROKER_PARKED);
	/* a's parked receive fails EPERM when d replaces it. */
	ck_assert_int_eq(do_recv(b, &a, 4, "m", -1), BROKER_PARKED);
	ck_assert_int_eq(do_bind(b, &d, "m", PROTO_BIND_REPLACE), 0);
	ck_assert_int_eq(a.reply_err, -EPERM);
	ck_assert_ptr_eq(mbox(b, "m")->receiver, &d.peer);
	/* d unbinds: c, first in line, takes over and gets the message. */
	ck_assert_int_eq(broker_unbind(b, &d.peer, "m", 1, false), 0);
	ck_assert_ptr_eq(mbox(b, "m")->receiver, &c.peer);
	ck_assert_int_eq(do_send(b, &a, 5, "m", "hi", false, 0), 0);
	ck_assert_int_eq(c.ndelivered, 1);
	ck_assert_int_eq(c.deliver_req, 3);
	ck_assert_int_eq(broker_unbind(b, &a.peer, "m", 1, false), -EPERM);
	ck_assert_int_eq(broker_unbind(b, &a.peer, "m", 1, true), 0);
	ck_assert_ptr_null(mbox(b, "m")->receiver);
	ck_assert_int_eq(broker_unbind(b, &a.peer, "m", 1, true), -EPERM);
	finish(b, all, 3);
}
END_TEST

START_TEST(rebind_keeps_order_and_returns_inflight)
{
	struct broker *b = new_broker(1 << 20);
	struct rec s, a, c;
	struct rec *all[] = { &s, &a, &c };

	add_peer(b, &s);
	add_peer(b, &a);
	add_peer(b, &c);
	do_create(b, "m", 8);
	do_bind(b, &a, "m", PROTO_BIND_EXCLUSIVE);
	do_send(b, &s, 1, "m", "1", false, 0);
	do_send(b, &s, 2, "m", "2", false, 0);
	do_send(b, &s, 3, "m", "3", false, 0);
	/* a takes "1" but never acknowledges it. */
	ck_assert_int_eq(do_recv(b, &a, 4, "m", 0), 0);
	ck_assert_int_eq(broker_rebind(b, NULL, "m", 1, c.peer.id), -ESRCH);
	do_bind(b, &c, "m", PROTO_BIND_QUEUE);
	ck_assert_int_eq(broker_rebind(b, NULL, "m", 1, c.peer.id), 0);
	ck_assert_int_eq(broker_ack(b, &a.peer, a.msg_id), -ESTALE);
	ck_assert_str_eq(take(b, &c, "m"), "1");
	ck_assert_str_eq(take(b, &c, "m"), "2");
	ck_assert_str_eq(take(b, &c, "m"), "3");
	ck_assert_int_eq(do_recv(b, &a, 5, "m", 0), -EPERM);
	finish(b, all, 3);
}
END_TEST

START_TEST(receiver_gone_passes_binding_and_messages)
{
	struct broker *b = new_broker(1 << 20);
	struct rec s, a, c;
	struct rec *all[] = { &s, &c };

	add_peer(b, &s);
	add_peer(b, &a);
	add_peer(b, &c);
	do_create(b, "m", 8);
	do_bind(b, &a, "m", PROTO_BIND_EXCLUSIVE);
	do_bind(b, &c, "m", PROTO_BIND_QUEUE);
	ck_assert_int_eq(do_recv(b, &c, 1, "m", 1000), BROKER_PARKED);
	do_send(b, &s, 2, "m", "x", false, 0);
	ck_assert_int_eq(do_recv(b, &a, 3, "m", 0), 0);
	broker_peer_remove(b, &a.peer);
	ck_assert_ptr_eq(mbox(b, "m")->receiver, &c.peer);
	ck_assert_int_eq(c.ndelivered, 1);
	ck_assert_str_eq(c.data, "x");
	finish(b, all, 2);
}
END_TEST

START_TEST(receive_any_takes_oldest)
{
	struct broker *b = new_broker(1 << 20);
	struct rec s, r;
	struct rec *all[] = { &s, &r };
	char direct[32];

	add_peer(b, &s);
	add_peer(b, &r);
	snprintf(direct, sizeof(direct), "@%llu",
	    (unsigned long long)r.peer.id);
	do_create(b, "a", 8);
	do_create(b, "b", 8);
	do_bind(b, &r, "a", PROTO_BIND_EXCLUSIVE);
	do_bind(b, &r, "b", PROTO_BIND_EXCLUSIVE);
	do_send(b, &s, 1, "b", "first", false, 0);
	do_send(b, &s, 2, direct, "second", false, 0);
	do_send(b, &s, 3, "a", "third", false, 0);
	ck_assert_str_eq(take(b, &r, NULL), "first");
	ck_assert_str_eq(r.mailbox, "b");
	ck_assert_str_eq(take(b, &r, NULL), "second");
	ck_assert_str_eq(r.mailbox, direct);
	ck_assert_str_eq(take(b, &r, NULL), "third");
	/* Only the owner receives from a direct address. */
	ck_assert_int_eq(do_recv(b, &s, 4, direct, 0), -EPERM);
	/* A parked receive-any wakes on a direct message. */
	ck_assert_int_eq(do_recv(b, &r, 5, NULL, -1), BROKER_PARKED);
	do_send(b, &s, 6, direct, "late", false, 0);
	ck_assert_str_eq(r.data, "late");
	finish(b, all, 2);
}
END_TEST

START_TEST(destroy_wakes_waiters)
{
	struct broker *b = new_broker(1 << 20);
	struct rec s, r, t;
	struct rec *all[] = { &s, &r, &t };

	add_peer(b, &s);
	add_peer(b, &r);
	add_peer(b, &t);
	do_create(b, "m", 1);
	do_create(b, "n", 1);
	do_bind(b, &r, "n", PROTO_BIND_EXCLUSIVE);
	do_send(b, &s, 1, "m", "a", false, 0);
	ck_assert_int_eq(do_send(b, &s, 2, "m", "b", false, -1), BROKER_PARKED);
	ck_assert_int_eq(do_recv(b, &r, 3, "n", -1), BROKER_PARKED);
	ck_assert_int_eq(broker_destroy(b, NULL, "m", 1), 0);
	ck_assert_int_eq(s.reply_err, -EIDRM);
	ck_assert_int_eq(broker_destroy(b, NULL, "n", 1), 0);
	ck_assert_int_eq(r.reply_err, -EIDRM);
	ck_assert_uint_eq(r.peer.bound.len, 0);
	finish(b, all, 3);
}
END_TEST

START_TEST(sender_gone_withdraws_its_waiting_message)
{
	struct broker *b = new_broker(1 << 20);
	struct rec s, r;
	struct rec *all[] = { &r };

	add_peer(b, &s);
	add_peer(b, &r);
	do_create(b, "rv", 0);
	do_bind(b, &r, "rv", PROTO_BIND_EXCLUSIVE);
	ck_assert_int_eq(do_send(b, &s, 1, "rv", "x", false, -1),
	    BROKER_PARKED);
	broker_peer_remove(b, &s.peer);
	ck_assert_int_eq(do_recv(b, &r, 2, "rv", 0), -EAGAIN);
	finish(b, all, 1);
}
END_TEST

START_TEST(shutdown_answers_everyone)
{
	struct broker *b = new_broker(1 << 20);
	struct rec s, r;
	struct rec *all[] = { &s, &r };

	add_peer(b, &s);
	add_peer(b, &r);
	do_create(b, "rv", 0);
	ck_assert_int_eq(do_send(b, &s, 1, "rv", "x", false, -1),
	    BROKER_PARKED);
	ck_assert_int_eq(do_recv(b, &r, 2, NULL, -1), BROKER_PARKED);
	broker_shutdown(b);
	ck_assert_int_eq(s.reply_err, -ESHUTDOWN);
	ck_assert_int_eq(r.reply_err, -ESHUTDOWN);
	finish(b, all, 2);
}
END_TEST

/* A peer with the given uid and groups. */
static void
add_user(struct broker *b, struct rec *r, uid_t uid, gid_t gid)
{
	memset(r, 0, sizeof(*r));
	peer_init(&r->peer);
	r->peer.uid = uid;
	r->peer.gid = gid;
	ck_assert_int_eq(broker_peer_add(b, &r->peer, &rec_ops, r), 0);
}

static int
user_create(struct broker *b, struct rec *r, const char *name, uint32_t mode,
    gid_t gid)
{
	struct broker_attr a = { 8, 0, mode, 0, gid, 0, 0, NULL, 0, false };

	return broker_create(b, &r->peer, name, strlen(name), &a);
}

START_TEST(permissions_like_files)
{
	struct broker *b = new_broker(1 << 20);
	struct rec owner, mate, other, root;
	struct rec *all[] = { &owner, &mate, &other, &root };
	char direct[32];

	add_user(b, &owner, 1000, 100);
	add_user(b, &mate, 1001, 100);
	add_user(b, &other, 1002, 200);
	add_user(b, &root, 0, 0);
	/* Default mode 0600: only the owner sends and binds. */
	ck_assert_int_eq(user_create(b, &owner, "priv", 0, (gid_t)-1), 0);
	ck_assert_uint_eq(mbox(b, "priv")->mode, 0600);
	ck_assert_uint_eq(mbox(b, "priv")->uid, 1000);
	ck_assert_uint_eq(mbox(b, "priv")->gid, 100);
	ck_assert_int_eq(do_send(b, &mate, 1, "priv", "x", false, 0), -EACCES);
	ck_assert_int_eq(do_bind(b, &mate, "priv", PROTO_BIND_QUEUE), -EACCES);
	ck_assert_uint_eq(mbox(b, "priv")->nqueued, 0);
	ck_assert_int_eq(do_send(b, &owner, 2, "priv", "x", false, 0), 0);
	/* Group write, others read: the group sends, others only bind. */
	ck_assert_int_eq(broker_chmod(b, &owner.peer, "priv", 4, 0624), 0);
	ck_assert_int_eq(do_send(b, &mate, 3, "priv", "y", false, 0), 0);
	ck_assert_int_eq(do_bind(b, &mate, "priv", PROTO_BIND_EXCLUSIVE),
	    -EACCES);
	ck_assert_int_eq(do_send(b, &other, 4, "priv", "z", false, 0), -EACCES);
	ck_assert_int_eq(do_bind(b, &other, "priv", PROTO_BIND_EXCLUSIVE), 0);
	/* Owner-only operations. */
	ck_assert_int_eq(broker_chmod(b, &mate.peer, "priv", 4, 0666), -EACCES);
	ck_assert_int_eq(broker_destroy(b, &mate.peer, "priv", 4), -EACCES);
	ck_assert_int_eq(broker_purge(b, &mate.peer, "priv", 4), -EACCES);
	ck_assert_int_eq(broker_unbind(b, &mate.peer, "priv", 4, true),
	    -EACCES);
	ck_assert_int_eq(broker_rebind(b, &mate.peer, "priv", 4, 1), -EACCES);
	ck_assert_int_eq(broker_chown(b, &owner.peer, "priv", 4, 1001,
	    (gid_t)-1), -EACCES);
	ck_assert_int_eq(broker_chown(b, &owner.peer, "priv", 4, (uid_t)-1,
	    200), -EACCES);
	ck_assert_uint_eq(mbox(b, "priv")->mode, 0624);
	ck_assert_ptr_eq(mbox(b, "priv")->receiver, &other.peer);
	/* A group the creator is not in needs an admin. */
	ck_assert_int_eq(user_create(b, &owner, "g", 0660, 200), -EPERM);
	ck_assert_int_eq(user_create(b, &root, "g", 0660, 200), 0);
	/* The admin may do anything, and give mailboxes away. */
	ck_assert_int_eq(broker_chown(b, &root.peer, "priv", 4, 1001, 200), 0);
	ck_assert_uint_eq(mbox(b, "priv")->uid, 1001);
	ck_assert_int_eq(broker_purge(b, &mate.peer, "priv", 4), 0);
	ck_assert_uint_eq(mbox(b, "priv")->nqueued, 0);
	ck_assert_int_eq(broker_destroy(b, &root.peer, "priv", 4), 0);
	/* Anyone sends to a direct address; only its owner receives. */
	snprintf(direct, sizeof(direct), "@%llu",
	    (unsigned long long)owner.peer.id);
	ck_assert_int_eq(do_send(b, &other, 5, direct, "hi", false, 0), 0);
	ck_assert_int_eq(do_recv(b, &root, 6, direct, 0), -EPERM);
	ck_assert_str_eq(take(b, &owner, direct), "hi");
	finish(b, all, 4);
}
END_TEST

START_TEST(admin_groups)
{
	struct broker_limits l = { .max_memory = 1 << 20, .nadmin_gids = 1,
	    .admin_gids = { 50 } };
	struct broker *b = new_broker(1 << 20);
	struct rec owner, ops;
	struct rec *all[] = { &owner, &ops };
	gid_t groups[] = { 7, 50 };

	broker_set_limits(b, &l);
	add_user(b, &owner, 1000, 100);
	memset(&ops, 0, sizeof(ops));
	peer_init(&ops.peer);
	ops.peer.uid = 1005;
	ops.peer.gid = 100;
	ops.peer.groups = malloc(sizeof(groups));
	memcpy(ops.peer.groups, groups, sizeof(groups));
	ops.peer.ngroups = 2;
	ck_assert_int_eq(broker_peer_add(b, &ops.peer, &rec_ops, &ops), 0);
	ck_assert(broker_is_admin(b, &ops.peer));
	ck_assert(!broker_is_admin(b, &owner.peer));
	ck_assert_int_eq(user_create(b, &owner, "m", 0600, (gid_t)-1), 0);
	/* An admin group manages mailboxes but reads only what it may. */
	ck_assert_int_eq(do_bind(b, &ops, "m", PROTO_BIND_EXCLUSIVE), -EACCES);
	ck_assert_int_eq(do_send(b, &ops, 1, "m", "x", false, 0), -EACCES);
	ck_assert_int_eq(broker_chmod(b, &ops.peer, "m", 1, 0640), 0);
	ck_assert_int_eq(broker_destroy(b, &ops.peer, "m", 1), 0);
	finish(b, all, 2);
}
END_TEST

START_TEST(credit_is_revoked_with_the_write_bit)
{
	struct broker *b = new_broker(1 << 20);
	struct rec sender, root;
	struct rec *all[] = { &sender, &root };
	struct broker_send s = { .name = "m", .name_len = 1, .data = "x",
	    .len = 1, .fd = -1, .want_credit = true };

	add_user(b, &sender, 1000, 100);
	add_user(b, &root, 0, 0);
	ck_assert_int_eq(user_create(b, &root, "m", 0666, (gid_t)-1), 0);
	ck_assert_int_eq(broker_send(b, &sender.peer, 1, &s), 0);
	ck_assert_uint_gt(s.credit_count, 0);
	ck_assert_uint_gt(mbox(b, "m")->reserved, 0);
	/* Still allowed: nothing said. */
	ck_assert_int_eq(broker_chmod(b, &root.peer, "m", 1, 0662), 0);
	ck_assert_int_eq(sender.nrevoked, 0);
	ck_assert_int_eq(broker_chmod(b, &root.peer, "m", 1, 0660), 0);
	ck_assert_int_eq(sender.nrevoked, 1);
	ck_assert_uint_eq(sender.revoke_what, PROTO_REVOKE_CREDIT);
	/* A post already on its way is still taken: its room was reserved. */
	broker_post(b, &sender.peer, s.mailbox_id, "y", 1, -1, false);
	ck_assert_uint_eq(mbox(b, "m")->nqueued, 2);
	/* A send that no longer asks for credit gives the rest back. */
	ck_assert_int_eq(broker_chmod(b, &root.peer, "m", 1, 0662), 0);
	s.want_credit = false;
	ck_assert_int_eq(broker_send(b, &sender.peer, 2, &s), 0);
	ck_assert_uint_eq(mbox(b, "m")->reserved, 0);
	finish(b, all, 2);
}
END_TEST

/* A memfd laid out as libmbx does: header page, then len bytes. */
static int
test_memfd(size_t len, bool sealed)
{
	int fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)(PROTO_SHARED_HEADER + len)), 0);
	ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK |
	    (sealed ? F_SEAL_WRITE | F_SEAL_SEAL : 0)), 0);
	return fd;
}

START_TEST(zero_copy_quota_and_private_copies)
{
	struct broker_limits l = { .max_memory = 1 << 20, .max_fds_per_uid = 1 };
	struct broker *b = new_broker(1 << 20);
	struct rec owner, other;
	struct rec *all[] = { &owner, &other };
	struct broker_send s = { .name = "z", .name_len = 1, .len = 10,
	    .shared = true };
	int fd;

	broker_set_limits(b, &l);
	add_user(b, &owner, 1000, 100);
	add_user(b, &other, 1001, 200);
	ck_assert_int_eq(user_create(b, &owner, "z", 0600, (gid_t)-1), 0);
	/* A shared buffer into a mailbox others could read: refused. */
	ck_assert_int_eq(broker_chmod(b, &owner.peer, "z", 1, 0644), 0);
	s.fd = fd = test_memfd(10, false);
	ck_assert_int_eq(broker_send(b, &owner.peer, 1, &s), -EPERM);
	ck_assert_int_eq(s.fd, fd);
	ck_assert_int_eq(broker_chmod(b, &owner.peer, "z", 1, 0600), 0);
	ck_assert_int_eq(broker_send(b, &owner.peer, 2, &s), 0);
	ck_assert_int_eq(s.fd, -1);
	/* One descriptor per uid here: the next is EMFILE, nothing queued. */
	s.fd = fd = test_memfd(10, false);
	ck_assert_int_eq(broker_send(b, &owner.peer, 3, &s), -EMFILE);
	close(fd);
	ck_assert_uint_eq(mbox(b, "z")->nqueued, 1);
	/* The mode changed after the send: another uid gets a sealed copy. */
	ck_assert_int_eq(broker_chmod(b, &owner.peer, "z", 1, 0644), 0);
	ck_assert_int_eq(do_bind(b, &other, "z", PROTO_BIND_EXCLUSIVE), 0);
	ck_assert_int_eq(do_recv(b, &other, 4, "z", 0), 0);
	{
		struct msg *m = TAILQ_FIRST(&other.peer.inflight);

		ck_assert(!m->shared);
		ck_assert_int_eq(fcntl(m->fd, F_GET_SEALS) & F_SEAL_WRITE,
		    F_SEAL_WRITE);
	}
	ck_assert_int_eq(broker_ack(b, &other.peer, other.msg_id), 0);
	/* The descriptor went with the message: the quota is free again. */
	s.fd = test_memfd(10, false);
	ck_assert_int_eq(broker_chmod(b, &owner.peer, "z", 1, 0600), 0);
	ck_assert_int_eq(broker_send(b, &owner.peer, 5, &s), 0);
	finish(b, all, 2);
}
END_TEST

/*
 * A memfd send with credit earns a grant for memfd posts while the uid
 * holds under half its descriptors; an inline grant does not cover them.
 */
START_TEST(zero_copy_credit)
{
	struct broker_limits l = { .max_memory = 64 << 20,
	    .max_fds_per_uid = 8 };
	struct broker *b = new_broker(64 << 20);
	struct rec owner;
	struct rec *all[] = { &owner };
	struct broker_send s = { .name = "z", .name_len = 1, .len = 10,
	    .want_credit = true };
	struct broker_send t = { .name = "z", .name_len = 1, .data = "x",
	    .len = 1, .fd = -1, .want_credit = true };

	broker_set_limits(b, &l);
	add_user(b, &owner, 1000, 100);
	ck_assert_int_eq(user_create(b, &owner, "z", 0600, (gid_t)-1), 0);
	/* Inline: a grant, not for memfds; a memfd post is dropped. */
	ck_assert_int_eq(broker_send(b, &owner.peer, 1, &t), 0);
	ck_assert_uint_gt(t.credit_count, 0);
	ck_assert(!t.credit_zerocopy);
	ck_assert_int_eq(broker_post(b, &owner.peer, t.mailbox_id, NULL, 10,
	    test_memfd(10, true), false), BROKER_POST_DROPPED);
	ck_assert_uint_eq(mbox(b, "z")->nqueued, 1);
	/* A memfd send: at most 8 slots, and memfds covered. */
	s.fd = test_memfd(10, true);
	ck_assert_int_eq(broker_send(b, &owner.peer, 2, &s), 0);
	ck_assert(s.credit_zerocopy);
	ck_assert_uint_le(s.credit_count, 8);	/* CREDIT_ZC_WINDOW */
	ck_assert_int_eq(broker_post(b, &owner.peer, s.mailbox_id, NULL, 10,
	    test_memfd(10, true), false), 0);
	ck_assert_uint_eq(mbox(b, "z")->nqueued, 3);
	ck_assert_uint_eq(owner.peer.acct->fds, 2);
	/* More bytes than the grant holds: dropped, descriptor closed. */
	ck_assert_int_eq(broker_post(b, &owner.peer, s.mailbox_id, NULL,
	    (size_t)(2 << 20), test_memfd(2 << 20, true), false),
	    BROKER_POST_DROPPED);
	ck_assert_uint_eq(mbox(b, "z")->nqueued, 3);
	ck_assert_uint_eq(owner.peer.acct->fds, 2);
	/* Half the descriptors held: the next memfd send earns none. */
	for (int i = 0; i < 2; i++) {
		s.fd = test_memfd(10, true);
		ck_assert_int_eq(broker_send(b, &owner.peer, 3, &s), 0);
	}
	ck_assert(!s.credit_zerocopy);
	/*
	 * A budget of inline bytes does not count memfd payloads: with room
	 * for the 1-byte inline head alone, one receive takes the four memfd
	 * messages behind it too.
	 */
	ck_assert_int_eq(do_bind(b, &owner, "z", PROTO_BIND_EXCLUSIVE), 0);
	{
		struct broker_recv rq = { "z", 1, 1 << 20, 0, 64, 1,
		    false };

		ck_assert_uint_eq(mbox(b, "z")->nqueued, 5);
		ck_assert_int_eq(broker_recv(b, &owner.peer, 9, &rq), 0);
		ck_assert_int_eq(owner.ndelivered, 1 + 4);
	}
	finish(b, all, 1);
}
END_TEST

START_TEST(quotas_are_per_uid)
{
	struct broker_limits l = { .max_memory = 100, .max_bytes_per_uid = 10,
	    .max_mailboxes_per_uid = 2, .max_connections_per_uid = 2,
	    .max_pending_per_connection = 2, .max_standby_per_mailbox = 1,
	    .max_connections = 5 };
	struct broker *b = new_broker(100);
	struct rec a1, a2, a3, o1, o2, o3;
	struct rec *all[] = { &a1, &a2, &o1, &o2 };

	broker_set_limits(b, &l);
	add_user(b, &a1, 1000, 100);
	add_user(b, &a2, 1000, 100);
	/* The third connection of uid 1000 is refused; other uids are not. */
	memset(&a3, 0, sizeof(a3));
	peer_init(&a3.peer);
	a3.peer.uid = 1000;
	ck_assert_int_eq(broker_peer_add(b, &a3.peer, &rec_ops, &a3), -EDQUOT);
	peer_deinit(&a3.peer);
	add_user(b, &o1, 1001, 100);
	add_user(b, &o2, 0, 0);
	/* The global cap counts everyone, even root. */
	add_user(b, &o3, 0, 0);
	memset(&a3, 0, sizeof(a3));
	peer_init(&a3.peer);
	ck_assert_int_eq(broker_peer_add(b, &a3.peer, &rec_ops, &a3), -ENOBUFS);
	peer_deinit(&a3.peer);
	broker_peer_remove(b, &o3.peer);

	ck_assert_int_eq(user_create(b, &a1, "m1", 0666, (gid_t)-1), 0);
	ck_assert_int_eq(user_create(b, &a2, "m2", 0666, (gid_t)-1), 0);
	ck_assert_int_eq(user_create(b, &a1, "m3", 0666, (gid_t)-1), -EDQUOT);
	ck_assert_int_eq(user_create(b, &o1, "m3", 0666, (gid_t)-1), 0);
	/* Destroying one gives the quota back. */
	ck_assert_int_eq(broker_destroy(b, &a1.peer, "m2", 2), 0);
	ck_assert_int_eq(user_create(b, &a1, "m2", 0666, (gid_t)-1), 0);

	/* 10 bytes for uid 1000 across its connections; uid 1001 unharmed. */
	ck_assert_int_eq(do_send(b, &a1, 1, "m1", "123456", false, 0), 0);
	ck_assert_int_eq(do_send(b, &a2, 2, "m1", "12345", false, 0), -ENOBUFS);
	ck_assert_int_eq(do_send(b, &o1, 3, "m1", "1234567890", false, 0), 0);
	ck_assert_uint_eq(mbox(b, "m1")->nqueued, 2);
	do_bind(b, &o1, "m1", PROTO_BIND_EXCLUSIVE);
	take(b, &o1, "m1");
	ck_assert_int_eq(do_send(b, &a2, 4, "m1", "12345", false, 0), 0);

	/* Parked calls per connection (each costs its uid's share too). */
	l.max_memory = 4096;
	l.max_bytes_per_uid = 11 + 2 * BROKER_WAIT_COST;
	broker_set_limits(b, &l);
	ck_assert_int_eq(do_recv(b, &o1, 5, "m3", -1), -EPERM);
	do_bind(b, &a1, "m2", PROTO_BIND_EXCLUSIVE);
	ck_assert_int_eq(do_recv(b, &a1, 6, "m2", -1), BROKER_PARKED);
	ck_assert_int_eq(do_recv(b, &a1, 7, "m2", -1), BROKER_PARKED);
	ck_assert_int_eq(do_recv(b, &a1, 8, "m2", -1), -EDQUOT);
	/* Standbys per mailbox. */
	ck_assert_int_eq(do_bind(b, &a2, "m2", PROTO_BIND_QUEUE), 0);
	ck_assert_int_eq(do_bind(b, &o1, "m2", PROTO_BIND_QUEUE), -EDQUOT);
	/* Messages per uid, whatever their size: empty ones count too. */
	l.max_msgs_per_uid = 3;
	broker_set_limits(b, &l);
	ck_assert_int_eq(do_send(b, &o1, 9, "m3", "", false, 0), 0);
	ck_assert_int_eq(do_send(b, &o1, 10, "m3", "", false, 0), 0);
	ck_assert_int_eq(do_send(b, &o1, 11, "m3", "", false, 0), -ENOBUFS);
	finish(b, all, 4);
}
END_TEST

/*
 * One charge object: a quota is checked and charged in one call, and a
 * release gives back exactly what the charge holds, once.
 */
START_TEST(charge_is_exact_and_released_once)
{
	struct accounts a;
	const struct account_quota q = { .max_memory = 100, .max_bytes = 60,
	    .max_msgs = 2, .max_fds = 1, .max_connections = 1,
	    .max_mailboxes = 1 };
	const struct charge_amount msg = { .bytes = 40, .msgs = 1, .fds = 1 };
	const struct charge_amount half = { .bytes = 20 };
	struct charge c1 = { 0 }, c2 = { 0 }, c3 = { 0 };
	struct account *acct;

	accounts_init(&a);
	accounts_set_quota(&a, &q);
	ck_assert_ptr_nonnull(acct = account_of(&a, 1000));
	ck_assert_int_eq(account_charge(&a, &c1, acct, &msg, 0), 0);
	ck_assert_uint_eq(acct->refs, 1);
	/* The uid's share (60), then its descriptors: an error changes nothing. */
	ck_assert_int_eq(account_charge(&a, &c2, acct, &msg, 0), -ENOBUFS);
	ck_assert_int_eq(account_charge(&a, &c2, acct, &half, 0), 0);
	ck_assert_int_eq(account_charge(&a, &c3, acct,
	    &(struct charge_amount){ .fds = 1, .msgs = 1 }, 0), -EMFILE);
	ck_assert_int_eq(account_charge(&a, &c3, acct, &msg, ACCOUNT_EXEMPT), 0);
	/* The memory cap applies to the exempt too. */
	ck_assert_int_eq(account_charge(&a, &c3, acct, &msg, ACCOUNT_EXEMPT),
	    -ENOBUFS);
	ck_assert_uint_eq(a.bytes, 100);
	ck_assert_uint_eq(acct->fds, 2);
	/* Part of a charge, never more than it holds; then all of it, once. */
	account_release(&a, &c2, &(struct charge_amount){ .bytes = 50 });
	ck_assert_ptr_null(c2.acct);
	account_release(&a, &c2, NULL);
	account_release(&a, &c3, NULL);
	account_release(&a, &c3, NULL);
	ck_assert_uint_eq(a.bytes, 40);
	ck_assert_uint_eq(acct->bytes, 40);
	ck_assert_uint_eq(acct->msgs, 1);
	ck_assert_uint_eq(acct->fds, 1);
	ck_assert_uint_eq(acct->refs, 1);
	/* Moved whole to another uid; the first account goes. */
	ck_assert_int_eq(account_move(&a, &c1, 1001), 0);
	ck_assert_ptr_null(account_find(&a, 1000));
	ck_assert_uint_eq(c1.acct->uid, 1001);
	ck_assert_uint_eq(c1.acct->bytes, 40);
	ck_assert_uint_eq(a.bytes, 40);
	account_release(&a, &c1, NULL);
	ck_assert_uint_eq(a.bytes, 0);
	ck_assert_uint_eq(a.list.len, 0);
	/* Counted quotas: EDQUOT, and an account nothing holds goes. */
	acct = account_of(&a, 7);
	ck_assert_int_eq(account_charge(&a, &c1, acct,
	    &(struct charge_amount){ .connections = 2 }, 0), -EDQUOT);
	ck_assert_uint_eq(a.list.len, 0);
	accounts_deinit(&a);
}
END_TEST

START_TEST(table_many_keys)
{
	struct table t;
	static char keys[5000][16];
	size_t pos = 0, n = 0;

	table_init(&t, (const uint8_t[TABLE_KEY_LEN]){ 1, 2, 3 });
	for (int i = 0; i < 5000; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		ck_assert_int_eq(table_put(&t, keys[i], strlen(keys[i]),
		    keys[i]), 0);
	}
	for (int i = 0; i < 5000; i += 2)
		ck_assert_ptr_eq(table_del(&t, keys[i], strlen(keys[i])),
		    keys[i]);
	for (int i = 0; i < 5000; i++)
		ck_assert_ptr_eq(table_get(&t, keys[i], strlen(keys[i])),
		    i % 2 ? keys[i] : NULL);
	while (table_next(&t, &pos) != NULL)
		n++;
	ck_assert_uint_eq(n, 2500);
	ck_assert_ptr_null(table_del(&t, "nope", 4));
	table_deinit(&t);
}
END_TEST

/*
 * The slot found last is tried first: a name found again, then deleted,
 * moved by a deletion's backward shift, or its slot reused by another
 * name, is always answered as the table holds it.  Keys with the same
 * home slot are built by probing, so the shifts really happen.
 */
START_TEST(table_recent_slot)
{
	struct table t;
	static char keys[64][16];
	char probe[16];
	const uint8_t secret[TABLE_KEY_LEN] = { 9, 8, 7 };
	size_t n = 0;

	table_init(&t, secret);
	/* Sixteen slots until the ninth key: collect keys of home 3. */
	for (int i = 0; n < 4 && i < 100000; i++) {
		snprintf(keys[n], sizeof(keys[n]), "c%d", i);
		if ((table_siphash(secret, keys[n], strlen(keys[n])) & 15) == 3)
			n++;
	}
	ck_assert_uint_eq(n, 4);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(table_put(&t, keys[i], strlen(keys[i]),
		    keys[i]), 0);
	for (int round = 0; round < 3; round++)
		ck_assert_ptr_eq(table_get(&t, keys[2], strlen(keys[2])),
		    keys[2]);
	/* Deleting key 0 shifts 1, 2 and 3 back a slot each. */
	ck_assert_ptr_eq(table_del(&t, keys[0], strlen(keys[0])), keys[0]);
	ck_assert_ptr_null(table_get(&t, keys[0], strlen(keys[0])));
	ck_assert_ptr_eq(table_get(&t, keys[3], strlen(keys[3])), keys[3]);
	ck_assert_ptr_eq(table_get(&t, keys[2], strlen(keys[2])), keys[2]);
	ck_assert_ptr_eq(table_del(&t, keys[2], strlen(keys[2])), keys[2]);
	ck_assert_ptr_null(table_get(&t, keys[2], strlen(keys[2])));
	/* A copy of the key in other memory finds it too. */
	memcpy(probe, keys[3], sizeof(probe));
	ck_assert_ptr_eq(table_get(&t, probe, strlen(probe)), keys[3]);
	/* A prefix of a found key is another key. */
	ck_assert_ptr_null(table_get(&t, probe, strlen(probe) - 1));
	/* Growth moves every slot; what was found is still found. */
	for (int i = 0; i < 40; i++) {
		snprintf(keys[20 + i], sizeof(keys[0]), "g%d", i);
		ck_assert_int_eq(table_put(&t, keys[20 + i],
		    strlen(keys[20 + i]), keys[20 + i]), 0);
	}
	ck_assert_ptr_eq(table_get(&t, keys[3], strlen(keys[3])), keys[3]);
	ck_assert_ptr_eq(table_get(&t, keys[1], strlen(keys[1])), keys[1]);
	ck_assert_ptr_null(table_get(&t, keys[0], strlen(keys[0])));
	table_deinit(&t);
	ck_assert_ptr_null(table_get(&t, keys[1], strlen(keys[1])));
}
END_TEST

/*
 * The in-flight index: acknowledgements in any order find their message
 * as the index grows and shrinks, and messages of two mailboxes go back
 * to their own queues, in order, when the receiver loses one of them.
 */
START_TEST(inflight_index)
{
	struct broker *b = new_broker(1 << 20);
	struct rec r, *all[] = { &r };
	struct broker_recv rq = { "a", 1, 64, 0, 1, 0, false };
	uint64_t ids[600];
	char d[16];
	struct msg *m;

	add_peer(b, &r);
	ck_assert_int_eq(do_create(b, "a", -1), 0);
	ck_assert_int_eq(do_create(b, "b", -1), 0);
	ck_assert_int_eq(do_bind(b, &r, "a", PROTO_BIND_EXCLUSIVE), 0);
	ck_assert_int_eq(do_bind(b, &r, "b", PROTO_BIND_EXCLUSIVE), 0);
	for (int i = 0; i < 600; i++) {
		snprintf(d, sizeof(d), "%d", i);
		ck_assert_int_eq(do_send(b, &r, 1, i % 2 ? "b" : "a", d, false,
		    0), 0);
	}
	for (int i = 0; i < 600; i++) {
		rq.name = i % 2 ? "b" : "a";
		ck_assert_int_eq(broker_recv(b, &r.peer, 2, &rq), 0);
		ids[i] = r.msg_id;
	}
	ck_assert_uint_eq(r.peer.ninflight, 600);
	ck_assert_uint_ge((size_t)1 << r.peer.index_bits, 512);
	/* Newest first: each a walk of the whole list, were it a list. */
	for (int i = 599; i >= 200; i--)
		if (i % 3 != 0)
			ck_assert_int_eq(broker_ack(b, &r.peer, ids[i]), 0);
	ck_assert_int_eq(broker_ack(b, &r.peer, ids[599]), -ESTALE);
	ck_assert_int_eq(broker_ack(b, &r.peer, 1u << 30), -ESTALE);
	/* Losing "a" returns only a's, oldest at the head. */
	ck_assert_int_eq(broker_unbind(b, &r.peer, "a", 1, false), 0);
	ck_assert_int_eq(broker_ack(b, &r.peer, ids[0]), -ESTALE);
	ck_assert_int_eq(broker_ack(b, &r.peer, ids[1]), 0);
	ck_assert_uint_eq(mbox(b, "a")->ninflight, 0);
	/* Left in flight: all below 200, the multiples of 3 above. */
	ck_assert_uint_eq(mbox(b, "a")->nqueued, 100 + 66);
	m = TAILQ_FIRST(&mbox(b, "a")->queue);
	ck_assert(m->len == 1 && memcmp(m->data, "0", 1) == 0);
	m = TAILQ_LAST(&mbox(b, "a")->queue, msg_list);
	ck_assert(m->len == 3 && memcmp(m->data, "594", 3) == 0);
	ck_assert_uint_eq(mbox(b, "b")->ninflight, 99 + 67);
	for (int i = 3; i < 600; i += 2)
		if (i < 200 || i % 3 == 0)
			ck_assert_int_eq(broker_ack(b, &r.peer, ids[i]), 0);
	ck_assert_uint_eq(r.peer.ninflight, 0);
	/* The index shrank back as the messages drained. */
	ck_assert_uint_eq(r.peer.index_bits, 4);
	finish(b, all, 1);
}
END_TEST

/*
 * SipHash-2-4 against the reference vectors of its authors (key 00..0f,
 * message 00..len-1), as little-endian bytes: every tail length and the
 * block boundary.
 */
START_TEST(table_siphash_vectors)
{
	static const uint8_t want[16][8] = {
		{ 0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72 },
		{ 0xfd, 0x67, 0xdc, 0x93, 0xc5, 0x39, 0xf8, 0x74 },
		{ 0x5a, 0x4f, 0xa9, 0xd9, 0x09, 0x80, 0x6c, 0x0d },
		{ 0x2d, 0x7e, 0xfb, 0xd7, 0x96, 0x66, 0x67, 0x85 },
		{ 0xb7, 0x87, 0x71, 0x27, 0xe0, 0x94, 0x27, 0xcf },
		{ 0x8d, 0xa6, 0x99, 0xcd, 0x64, 0x55, 0x76, 0x18 },
		{ 0xce, 0xe3, 0xfe, 0x58, 0x6e, 0x46, 0xc9, 0xcb },
		{ 0x37, 0xd1, 0x01, 0x8b, 0xf5, 0x00, 0x02, 0xab },
		{ 0x62, 0x24, 0x93, 0x9a, 0x79, 0xf5, 0xf5, 0x93 },
		{ 0xb0, 0xe4, 0xa9, 0x0b, 0xdf, 0x82, 0x00, 0x9e },
		{ 0xf3, 0xb9, 0xdd, 0x94, 0xc5, 0xbb, 0x5d, 0x7a },
		{ 0xa7, 0xad, 0x6b, 0x22, 0x46, 0x2f, 0xb3, 0xf4 },
		{ 0xfb, 0xe5, 0x0e, 0x86, 0xbc, 0x8f, 0x1e, 0x75 },
		{ 0x90, 0x3d, 0x84, 0xc0, 0x27, 0x56, 0xea, 0x14 },
		{ 0xee, 0xf2, 0x7a, 0x8e, 0x90, 0xca, 0x23, 0xf7 },
		{ 0xe5, 0x45, 0xbe, 0x49, 0x61, 0xca, 0x29, 0xa1 },
	};
	uint8_t key[TABLE_KEY_LEN], msg[16];

	for (int i = 0; i < 16; i++)
		key[i] = msg[i] = (uint8_t)i;
	for (size_t len = 0; len < 16; len++) {
		uint64_t h = table_siphash(key, msg, len), w = 0;

		for (int i = 7; i >= 0; i--)
			w = w << 8 | want[len][i];
		ck_assert_msg(h == w, "length %zu: %016llx, want %016llx", len,
		    (unsigned long long)h, (unsigned long long)w);
	}
}
END_TEST

/* The key is the table's own: two tables hash the same name apart. */
START_TEST(table_key_is_per_table)
{
	struct table a, b;
	static const uint8_t ka[TABLE_KEY_LEN] = { 1 }, kb[TABLE_KEY_LEN] = { 2 };

	table_init(&a, ka);
	table_init(&b, kb);
	ck_assert_int_eq(table_put(&a, "name", 4, &a), 0);
	ck_assert_int_eq(table_put(&b, "name", 4, &b), 0);
	ck_assert_ptr_eq(table_get(&a, "name", 4), &a);
	ck_assert_ptr_eq(table_get(&b, "name", 4), &b);
	ck_assert(a.slots[a.mask & table_siphash(ka, "name", 4)].key != NULL);
	ck_assert(table_siphash(ka, "name", 4) != table_siphash(kb, "name", 4));
	table_deinit(&a);
	table_deinit(&b);
}
END_TEST

START_TEST(deadline_heap_orders)
{
	struct deadline_heap h;
	struct deadline d[200];
	uint64_t last = 0;
	size_t left = 0;

	deadline_heap_init(&h);
	srand(7);
	for (int i = 0; i < 200; i++) {
		deadline_node_init(&d[i]);
		ck_assert_int_eq(deadline_heap_add(&h, &d[i],
		    (uint64_t)(rand() % 1000)), 0);
	}
	for (int i = 0; i < 200; i += 3)
		deadline_heap_remove(&h, &d[i]);
	while (deadline_heap_first(&h) != NULL) {
		struct deadline *first = deadline_heap_first(&h);

		ck_assert_uint_ge(first->when, last);
		last = first->when;
		deadline_heap_remove(&h, first);
		left++;
	}
	ck_assert_uint_eq(left, 200 - 67);
	deadline_heap_deinit(&h);
}
END_TEST

/* A receive that acknowledges explicitly (PROTO_RECV_ACK), one message. */
static int
do_recv_ack(struct broker *b, struct rec *r, uint32_t req, const char *name)
{
	struct broker_recv rq = { name, strlen(name), 64, 0, 1, 0, true };

	return broker_recv(b, &r->peer, req, &rq);
}

/*
 * NACKs with delays in decreasing order (the order a hostile client would
 * pick to make a sorted list cost a walk each): each comes back at its
 * own due, earliest first, with its attempt count raised.
 */
START_TEST(nack_delays_come_back_by_due)
{
	struct broker *b = new_broker(1 << 20);
	struct rec r;
	uint64_t ids[3];
	struct mailbox *mb;

	add_peer(b, &r);
	ck_assert_int_eq(do_create(b, "q", -1), 0);
	ck_assert_int_eq(broker_bind(b, &r.peer, "q", 1, PROTO_BIND_EXCLUSIVE),
	    0);
	ck_assert_int_eq(do_send(b, &r, 1, "q", "a", false, 0), 0);
	ck_assert_int_eq(do_send(b, &r, 2, "q", "b", false, 0), 0);
	ck_assert_int_eq(do_send(b, &r, 3, "q", "c", false, 0), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(do_recv_ack(b, &r, 10 + i, "q"), 0);
		ids[i] = r.msg_id;
	}
	mb = table_get(&b->mailboxes, "q", 1);
	ck_assert_uint_eq(mb->ninflight, 3);
	ck_assert_int_eq(broker_nack(b, &r.peer, ids[0], 300), 0);
	ck_assert_int_eq(broker_nack(b, &r.peer, ids[1], 200), 0);
	ck_assert_int_eq(broker_nack(b, &r.peer, ids[2], 100), 0);
	ck_assert_int_eq(broker_nack(b, &r.peer, ids[2], 100), -ESTALE);
	ck_assert_uint_eq(mb->ndelayed, 3);
	ck_assert_uint_eq(broker_next_deadline(b), 1100);
	test_now = 1150;
	broker_expire(b, test_now);
	ck_assert_uint_eq(mb->ndelayed, 2);
	ck_assert_int_eq(do_recv_ack(b, &r, 20, "q"), 0);
	ck_assert_str_eq(r.data, "c");
	ck_assert_uint_eq(mb->queue.tqh_first == NULL, 1);
	test_now = 1400;
	broker_expire(b, test_now);
	ck_assert_uint_eq(mb->ndelayed, 0);
	/* Both due at once: at the head in the order of their dues. */
	ck_assert_int_eq(do_recv_ack(b, &r, 21, "q"), 0);
	ck_assert_str_eq(r.data, "b");
	ck_assert_int_eq(do_recv_ack(b, &r, 22, "q"), 0);
	ck_assert_str_eq(r.data, "a");
	ck_assert_uint_eq(TAILQ_LAST(&mb->inflight, msg_list)->attempts, 2);
	ck_assert_uint_eq(mb->redelivered, 3);
	broker_peer_remove(b, &r.peer);
	broker_free(b);
}
END_TEST

static int ntakeback;

static void
rec_takeback(struct peer *p, const struct mailbox *mb, uint64_t msg_id)
{
	(void)p;
	(void)mb;
	(void)msg_id;
	ntakeback++;
}

static const struct peer_ops rec_ack_ops = { rec_reply, rec_deliver,
    rec_revoke, rec_takeback, NULL, NULL, NULL };

/*
 * The acknowledgement timeout, on the test clock: the holder is told,
 * the message goes back at the head, a late ack is stale; a receive
 * without PROTO_RECV_ACK is never timed.
 */
START_TEST(ack_timeout_takes_back)
{
	struct broker *b = new_broker(1 << 20);
	struct broker_attr a = { -1, 0, 0666, 1000, (gid_t)-1, 0, 250, NULL,
	    0, false };
	struct rec r;
	struct mailbox *mb;
	uint64_t id;

	memset(&r, 0, sizeof(r));
	peer_init(&r.peer);
	r.peer.uid = 1000;
	r.peer.gid = 100;
	ck_assert_int_eq(broker_peer_add(b, &r.peer, &rec_ack_ops, &r), 0);
	ntakeback = 0;
	ck_assert_int_eq(broker_create(b, NULL, "q", 1, &a), 0);
	ck_assert_int_eq(broker_bind(b, &r.peer, "q", 1, PROTO_BIND_EXCLUSIVE),
	    0);
	ck_assert_int_eq(do_send(b, &r, 1, "q", "a", false, 0), 0);
	ck_assert_int_eq(do_send(b, &r, 2, "q", "b", false, 0), 0);
	ck_assert_int_eq(do_recv_ack(b, &r, 3, "q"), 0);
	id = r.msg_id;
	ck_assert_int_eq(do_recv(b, &r, 4, "q", 0), 0);
	mb = table_get(&b->mailboxes, "q", 1);
	ck_assert_uint_eq(broker_next_deadline(b), 1250);
	test_now = 1249;
	broker_expire(b, test_now);
	ck_assert_uint_eq(mb->ninflight, 2);
	test_now = 1250;
	broker_expire(b, test_now);
	ck_assert_int_eq(ntakeback, 1);
	ck_assert_uint_eq(mb->ninflight, 1);
	ck_assert_uint_eq(mb->nqueued, 1);
	ck_assert_int_eq(broker_ack(b, &r.peer, id), -ESTALE);
	ck_assert_uint_eq(broker_next_deadline(b), DEADLINE_NONE);
	test_now = 5000;
	broker_expire(b, test_now);
	ck_assert_uint_eq(mb->ninflight, 1);
	ck_assert_int_eq(do_recv_ack(b, &r, 5, "q"), 0);
	ck_assert_str_eq(r.data, "a");
	ck_assert_uint_eq(TAILQ_LAST(&mb->inflight, msg_list)->attempts, 2);
	broker_peer_remove(b, &r.peer);
	broker_free(b);
}
END_TEST

/*
 * max_attempts: given back once too often, a message moves to the dead
 * letters with its origin; with the dead letters missing it stays.
 */
START_TEST(dead_letter_moves_whole)
{
	struct broker *b = new_broker(1 << 20);
	struct broker_attr a = { -1, 0, 0666, 1000, (gid_t)-1, 1, 0, "dl", 2, false };
	struct rec r;
	struct mailbox *mb, *dl;

	add_peer(b, &r);
	ck_assert_int_eq(broker_create(b, NULL, "q", 1, &a), 0);
	ck_assert_int_eq(broker_bind(b, &r.peer, "q", 1, PROTO_BIND_EXCLUSIVE),
	    0);
	ck_assert_int_eq(do_send(b, &r, 1, "q", "a", false, 0), 0);
	ck_assert_int_eq(do_recv_ack(b, &r, 2, "q"), 0);
	ck_assert_int_eq(broker_nack(b, &r.peer, r.msg_id, 0), 0);
	mb = table_get(&b->mailboxes, "q", 1);
	ck_assert_uint_eq(mb->nqueued, 1);
	ck_assert_uint_eq(mb->dead, 0);
	ck_assert_int_eq(do_create(b, "dl", -1), 0);
	ck_assert_int_eq(do_recv_ack(b, &r, 3, "q"), 0);
	ck_assert_int_eq(broker_nack(b, &r.peer, r.msg_id, 0), 0);
	dl = table_get(&b->mailboxes, "dl", 2);
	ck_assert_uint_eq(mb->nqueued + mb->ninflight, 0);
	ck_assert_uint_eq(mb->bytes, 0);
	ck_assert_uint_eq(mb->dead, 1);
	ck_assert_uint_eq(dl->nqueued, 1);
	ck_assert_uint_eq(dl->bytes, 1);
	ck_assert_str_eq(TAILQ_FIRST(&dl->queue)->origin, "q");
	ck_assert_uint_eq(TAILQ_FIRST(&dl->queue)->origin_attempts, 2);
	ck_assert_uint_eq(TAILQ_FIRST(&dl->queue)->attempts, 0);
	/* A bad dead_letter or a limit without one is refused. */
	a.dead_letter = NULL;
	a.dead_letter_len = 0;
	ck_assert_int_eq(broker_create(b, NULL, "z", 1, &a), -EINVAL);
	a.dead_letter = "z";
	a.dead_letter_len = 1;
	ck_assert_int_eq(broker_create(b, NULL, "z", 1, &a), -EINVAL);
	broker_peer_remove(b, &r.peer);
	broker_free(b);
}
END_TEST

Suite *
broker_suite(void)
{
	Suite *s = suite_create("broker");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, create_and_destroy);
	tcase_add_test(tc, bounded_queue_is_fifo_and_refuses_when_full);
	tcase_add_test(tc, blocked_sender_enters_when_room_frees);
	tcase_add_test(tc, too_small_buffer_leaves_message);
	tcase_add_test(tc, rendezvous_completes_at_acknowledgement);
	tcase_add_test(tc, sync_send_withdrawn_at_deadline);
	tcase_add_test(tc, sync_send_queued_then_withdrawn);
	tcase_add_test(tc, memory_cap);
	tcase_add_test(tc, binding_modes);
	tcase_add_test(tc, rebind_keeps_order_and_returns_inflight);
	tcase_add_test(tc, receiver_gone_passes_binding_and_messages);
	tcase_add_test(tc, receive_any_takes_oldest);
	tcase_add_test(tc, destroy_wakes_waiters);
	tcase_add_test(tc, sender_gone_withdraws_its_waiting_message);
	tcase_add_test(tc, shutdown_answers_everyone);
	tcase_add_test(tc, permissions_like_files);
	tcase_add_test(tc, admin_groups);
	tcase_add_test(tc, credit_is_revoked_with_the_write_bit);
	tcase_add_test(tc, zero_copy_quota_and_private_copies);
	tcase_add_test(tc, zero_copy_credit);
	tcase_add_test(tc, quotas_are_per_uid);
	suite_add_tcase(s, tc);
	tc = tcase_create("structures");
	tcase_add_test(tc, charge_is_exact_and_released_once);
	tcase_add_test(tc, table_many_keys);
	tcase_add_test(tc, table_recent_slot);
	tcase_add_test(tc, table_siphash_vectors);
	tcase_add_test(tc, inflight_index);
	tcase_add_test(tc, table_key_is_per_table);
	tcase_add_test(tc, deadline_heap_orders);
	tcase_add_test(tc, nack_delays_come_back_by_due);
	tcase_add_test(tc, ack_timeout_takes_back);
	tcase_add_test(tc, dead_letter_moves_whole);
	suite_add_tcase(s, tc);
	return s;
}
