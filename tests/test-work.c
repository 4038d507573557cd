/*
 * test-work.c - hostile clients (issue 9): work per frame and per departure is bounded,
 * against a real mbxd.
 */
#include <check.h>

#include "harness.h"
#include "suites.h"
#include "users.h"

Suite *
work_suite(void)
{
	Suite *s = suite_create("work");

	return s;
}
