/*
 * suites.h - the Check suites that tests/main.c runs, one per test file.
 */
#ifndef MBX_TESTS_SUITES_H
#define MBX_TESTS_SUITES_H

#include <check.h>

Suite	*proto_suite(void);	/* tests/test-proto.c: the wire codec */
Suite	*framer_suite(void);	/* tests/test-framer.c: the frame splitter */
Suite	*channel_suite(void);	/* tests/test-channel.c: version 6 rings */
Suite	*pass_suite(void);	/* tests/test-pass.c: mbxd's passes */
Suite	*rings_suite(void);	/* tests/test-rings.c: a channel's memfds */
Suite	*posts_suite(void);	/* tests/test-posts.c: ring posts, live */
Suite	*broker_suite(void);	/* tests/test-broker.c: the daemon's core */
Suite	*e2e_suite(void);	/* tests/test-e2e.c: libmbx against mbxd */
Suite	*ctl_suite(void);	/* tests/test-ctl.c: mbxctl against mbxd */
Suite	*batch_suite(void);	/* tests/test-batch.c: batches, prefetch,
				 * credit, zero-copy */
/* Issue 9, hostile clients: one file per family of bounds. */
Suite	*work_suite(void);	/* tests/test-work.c: work per frame */
Suite	*memory_suite(void);	/* tests/test-memory.c: memory and fds */
Suite	*memfd_suite(void);	/* tests/test-memfd.c: memfds, shared */
Suite	*errors_suite(void);	/* tests/test-errors.c: charges, errors */
Suite	*edges_suite(void);	/* tests/test-edges.c: sockets, names,
				 * odd but valid traffic */
Suite	*order_suite(void);	/* tests/test-order.c: causal order, delivery */
Suite	*ack_suite(void);	/* tests/test-ack.c: work queues (issue 12) */
Suite	*consume_suite(void);	/* tests/test-consume.c: receives by store */
Suite	*journal_suite(void);	/* tests/test-journal.c: durable logs */
Suite	*durable_suite(void);	/* tests/test-durable.c: durable, live */
Suite	*restart_suite(void);	/* tests/test-restart.c: restart, live */

#endif /* MBX_TESTS_SUITES_H */
