/*
 * main.c - the mbx test runner: every suite in one Check runner, each test
 * in its own forked process.  Exits non-zero when any test fails.
 *
 * The end-to-end suites need $MBXD and $MBXCTL (absolute paths of the
 * built binaries; `make test` sets them) and honour $MBX_TEST_WRAPPER, a
 * command prefix such as valgrind to run mbxd under.  Their daemons live in
 * directories under one per-run directory ($MBX_TEST_TMPDIR, set here),
 * removed at the end even when a failed test could not clean up after
 * itself.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "suites-security.h"
#include "suites.h"
#include "users.h"

/* Prints the parts of tests that were skipped (users.h); how many. */
static int
report_skips(const char *base)
{
	char path[HARNESS_PATH_MAX], line[512];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "%s/" USERS_SKIP_FILE, base);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (n++ == 0)
			fprintf(stderr, "skipped parts of tests:\n");
		fprintf(stderr, "  %s", line);
	}
	fclose(f);
	return n;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

int
main(void)
{
	const char *tmp = getenv("TMPDIR");
	char base[64];
	SRunner *sr;
	int failed, skipped;

	/* Short: socket paths inside must stay below sun_path's 108 bytes. */
	if (tmp == NULL || *tmp == '\0' || strlen(tmp) > 20)
		tmp = "/tmp";
	snprintf(base, sizeof(base), "%s/mbx-tests.XXXXXX", tmp);
	if (mkdtemp(base) == NULL || setenv("MBX_TEST_TMPDIR", base, 1) != 0) {
		perror(base);
		return EXIT_FAILURE;
	}

	sr = srunner_create(proto_suite());
	srunner_add_suite(sr, framer_suite());
	srunner_add_suite(sr, channel_suite());
	srunner_add_suite(sr, pass_suite());
	srunner_add_suite(sr, rings_suite());
	srunner_add_suite(sr, broker_suite());
	srunner_add_suite(sr, journal_suite());
	srunner_add_suite(sr, durable_suite());
	srunner_add_suite(sr, restart_suite());
	srunner_add_suite(sr, e2e_suite());
	srunner_add_suite(sr, ctl_suite());
	srunner_add_suite(sr, batch_suite());
	srunner_add_suite(sr, security_suite());
	srunner_add_suite(sr, work_suite());
	srunner_add_suite(sr, memory_suite());
	srunner_add_suite(sr, memfd_suite());
	srunner_add_suite(sr, errors_suite());
	srunner_add_suite(sr, edges_suite());
	srunner_add_suite(sr, order_suite());
	srunner_add_suite(sr, ack_suite());
	srunner_add_suite(sr, consume_suite());
	srunner_add_suite(sr, posts_suite());
	/*
	 * Fork mode always: a test that crashes or hangs must not take the
	 * others with it, and the harness relies on the per-test process
	 * (group) to clean up the daemons and helpers a failed test leaves.
	 */
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	/* Before Check's summary would scroll away: printed, then repeated. */
	if ((skipped = report_skips(base)) > 0)
		fprintf(stderr, "%d part(s) of tests skipped (see above)\n",
		    skipped);
	nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
