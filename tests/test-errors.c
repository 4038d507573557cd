/*
 * test-errors.c - hostile clients (issue 9): charges and errors,
 * against a real mbxd.
 */
#include <check.h>

#include "harness.h"
#include "suites.h"
#include "users.h"

Suite *
errors_suite(void)
{
	Suite *s = suite_create("errors");

	return s;
}
