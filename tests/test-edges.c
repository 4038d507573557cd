/*
 * test-edges.c - hostile clients (issue 9): the socket, names and payloads, odd but valid traffic,
 * against a real mbxd.
 */
#include <check.h>

#include "harness.h"
#include "suites.h"
#include "users.h"

Suite *
edges_suite(void)
{
	Suite *s = suite_create("edges");

	return s;
}
