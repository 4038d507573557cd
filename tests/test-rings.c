/*
 * test-rings.c - the memfds of a channel (daemon/rings.c): what a client
 * holding the two descriptors can and cannot do to memory mbxd maps.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include "rings.h"
#include "suites.h"

START_TEST(sets_are_sized_and_sealed)
{
	struct rings r;
	struct stat st;

	ck_assert_int_eq(rings_new(&r), 0);
	ck_assert_int_eq(fstat(r.client_fd, &st), 0);
	ck_assert_int_eq(st.st_size, CHANNEL_CLIENT_SIZE);
	ck_assert_int_eq(fstat(r.daemon_fd, &st), 0);
	ck_assert_int_eq(st.st_size, CHANNEL_DAEMON_SIZE);
	ck_assert_int_eq(fcntl(r.client_fd, F_GET_SEALS), RINGS_SEALS);
	ck_assert_int_eq(fcntl(r.daemon_fd, F_GET_SEALS), RINGS_SEALS_DAEMON);
	/* No seal can be taken off or added, no size changed. */
	ck_assert_int_eq(fcntl(r.client_fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
	ck_assert_int_eq(errno, EPERM);
	ck_assert_int_eq(ftruncate(r.client_fd, 4096), -1);
	ck_assert_int_eq(ftruncate(r.daemon_fd, 0), -1);
	ck_assert_int_eq(ftruncate(r.daemon_fd, 2 * CHANNEL_DAEMON_SIZE), -1);
	rings_free(&r);
	rings_free(&r);		/* twice is harmless */
}
END_TEST

/*
 * The client writes its set and mbxd sees it; the daemon set can be
 * mapped only read-only from its descriptor, while mbxd's own mapping
 * stays writable.
 */
START_TEST(client_cannot_write_the_daemon_set)
{
	struct rings r;
	uint8_t *c, *d;

	ck_assert_int_eq(rings_new(&r), 0);
	c = mmap(NULL, CHANNEL_CLIENT_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
	    r.client_fd, 0);
	ck_assert_ptr_ne(c, MAP_FAILED);
	channel_store(c, CHANNEL_CLIENT_TX_TAIL, 4242);
	ck_assert_uint_eq(channel_load(r.client, CHANNEL_CLIENT_TX_TAIL),
	    4242);
	ck_assert_ptr_eq(mmap(NULL, CHANNEL_DAEMON_SIZE, PROT_READ |
	    PROT_WRITE, MAP_SHARED, r.daemon_fd, 0), MAP_FAILED);
	ck_assert_int_eq(errno, EPERM);
	ck_assert_int_eq(pwrite(r.daemon_fd, "x", 1, 0), -1);
	d = mmap(NULL, CHANNEL_DAEMON_SIZE, PROT_READ, MAP_SHARED, r.daemon_fd,
	    0);
	ck_assert_ptr_ne(d, MAP_FAILED);
	ck_assert_int_eq(mprotect(d, CHANNEL_PAGE, PROT_READ | PROT_WRITE), -1);
	channel_store(r.daemon, CHANNEL_DAEMON_RX_TAIL, 77);
	ck_assert_uint_eq(channel_load(d, CHANNEL_DAEMON_RX_TAIL), 77);
	munmap(c, CHANNEL_CLIENT_SIZE);
	munmap(d, CHANNEL_DAEMON_SIZE);
	rings_free(&r);
}
END_TEST

Suite *
rings_suite(void)
{
	Suite *s = suite_create("rings");
	TCase *tc = tcase_create("memfds");

	tcase_add_test(tc, sets_are_sized_and_sealed);
	tcase_add_test(tc, client_cannot_write_the_daemon_set);
	suite_add_tcase(s, tc);
	return s;
}
