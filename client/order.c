/*
 * order.c - cross-handle write order within a process (see order.h).
 *
 * Two atomics for the whole process: the descriptor of the handle whose
 * bytes may not have been read yet (or -1), and a count of the answers
 * read.  They are process state by nature (the point is to order handles
 * against each other), hold no memory, and forget a handle before its
 * descriptor is closed.  A stale number (a handle closed by another
 * thread meanwhile) costs at most one bounded wait on whatever the number
 * now names.  One slot orders one thread's calls; threads posting at the
 * same time on different handles can overwrite each other's slot, which
 * mbx(3) says.
 */
#include <sched.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <linux/sockios.h>
#include <time.h>

#include "order.h"

static _Atomic int unread_fd = -1;
static _Atomic unsigned answers;

unsigned
order_answers(void)
{
	return atomic_load_explicit(&answers, memory_order_acquire);
}

static long long
elapsed_us(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000000LL +
	    (t.tv_nsec - t0->tv_nsec) / 1000;
}

/* Waits until the daemon has read every byte written on fd. */
static void
wait_read(int fd)
{
	struct timespec t0, pause = { 0, 20 * 1000 };
	int left;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; ioctl(fd, SIOCOUTQ, &left) == 0 && left > 0; i++) {
		if (elapsed_us(&t0) > ORDER_WAIT_MAX_MS * 1000LL)
			return;
		/* The daemon usually reads within a few microseconds. */
		if (i < 16)
			sched_yield();
		else
			nanosleep(&pause, NULL);
	}
}

void
order_before_write(int fd)
{
	int other = atomic_load_explicit(&unread_fd, memory_order_acquire);

	if (other < 0 || other == fd)
		return;
	wait_read(other);
	(void)atomic_compare_exchange_strong(&unread_fd, &other, -1);
}

void
order_written(int fd)
{
	atomic_store_explicit(&unread_fd, fd, memory_order_release);
}

void
order_answered(int fd)
{
	int mine = fd;

	atomic_fetch_add_explicit(&answers, 1, memory_order_release);
	(void)atomic_compare_exchange_strong(&unread_fd, &mine, -1);
}

void
order_forget(int fd)
{
	int mine = fd;

	/* What the handle wrote last (its final acknowledgements) still
	 * goes before what the process does next elsewhere. */
	if (atomic_load_explicit(&unread_fd, memory_order_acquire) == fd)
		wait_read(fd);
	(void)atomic_compare_exchange_strong(&unread_fd, &mine, -1);
}
