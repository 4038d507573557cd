/*
 * test-memory.c - hostile clients (issue 9): memory and descriptors a user can make mbxd hold are bounded,
 * against a real mbxd.
 */
#include <check.h>

#include "harness.h"
#include "suites.h"
#include "users.h"

Suite *
memory_suite(void)
{
	Suite *s = suite_create("memory");

	return s;
}
