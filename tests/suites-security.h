/*
 * suites-security.h - the security and reliability suite (issue 4):
 * permissions with real uids, quotas, floods, hostile frames and faults,
 * each against a real mbxd.
 */
#ifndef MBX_TESTS_SUITES_SECURITY_H
#define MBX_TESTS_SUITES_SECURITY_H

#include <check.h>

Suite	*security_suite(void);	/* tests/test-security.c */

#endif /* MBX_TESTS_SUITES_SECURITY_H */
