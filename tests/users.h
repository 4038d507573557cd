/*
 * users.h - what the end-to-end suites share beyond the harness: the
 * identities a test run as root connects as, skips that are counted (and
 * that fail under CI), latency bounds and counts scaled for valgrind, and
 * a daemon whose socket the other identities can reach.
 *
 * Identities.  The daemon takes a connection's uid, gid and groups from
 * the kernel (SO_PEERCRED, SO_PEERGROUPS) at connect time, and the kernel
 * takes them from the effective credentials.  So when the test runs as
 * root, open_as() switches the effective uid, gid and groups, connects and
 * switches back: the test process then holds connections of several users
 * and checks them with ordinary assertions.  Helpers that must *be*
 * another user drop their real ids for good (drop_to()).
 *
 * Skips.  A part of a test that cannot run here (not root, a tool missing)
 * calls skip(): the line goes to stderr and to $MBX_TEST_TMPDIR/skipped,
 * which the runner counts in its summary; with CI=true (CI runs as root
 * with every test package installed) a skip fails the test instead.
 */
#ifndef MBX_TESTS_USERS_H
#define MBX_TESTS_USERS_H

#include <stdbool.h>
#include <sys/types.h>

#include "harness.h"
#include "mbx.h"

/* Numeric groups that need no /etc/group entry. */
#define G_MBOX		65530	/* the mailboxes' group */
#define G_ADMIN		65529	/* named in admin_groups */

/* The file under $MBX_TEST_TMPDIR that collects the skips of a run. */
#define USERS_SKIP_FILE	"skipped"

struct ident {
	const char	*what;
	uid_t		 uid;
	gid_t		 gid;
	gid_t		 group;		/* supplementary, or -1 */
};

/*
 * OWNER creates the mailboxes; GROUPMATE shares their group; OTHER shares
 * nothing; ADMIN_MEMBER is in the configured admin group.
 */
extern const struct ident OWNER, GROUPMATE, OTHER, ADMIN_MEMBER, ROOT;

bool	 is_root(void);
/* True under $MBX_TEST_WRAPPER (valgrind). */
bool	 wrapped(void);
/* A latency bound: generous, and more so under valgrind. */
int	 bound_ms(int ms);
/* A count of iterations, smaller under valgrind. */
int	 scaled(int n);
/* The part `test` of a test cannot run: see above.  Asserts under CI. */
void	 skip(const char *test, const char *why);

/* Effective identity switches of the test process (root only). Assert. */
void	 become(const struct ident *id);
void	 become_root(void);
/* mbx_open() as id (as ourselves when not root); NULL with errno. */
mbx_t	*try_open_as(const struct harness *h, const struct ident *id);
/* The same; asserts success. */
mbx_t	*open_as(const struct harness *h, const struct ident *id);
/* A raw connection (no handshake) as id. */
int	 raw_connect_as(const struct harness *h, const struct ident *id);
/* In a helper: become id for good (nothing when not root). */
bool	 drop_to(const struct ident *id);

/* Root only: the harness's directory and its parent become traversable. */
void	 share_dirs(const struct harness *h);
/*
 * A daemon with an optional configuration (JSON text).  When root, the
 * directories on the way to the socket become traversable (not listable,
 * not writable) by the other users.  Asserts.
 */
void	 daemon_start(struct harness *h, const char *config);
/*
 * For the tests that bound mbxd's memory (RSS): an ASan build keeps freed
 * blocks in quarantine, which would count as growth.  Call before
 * daemon_start(): the daemon inherits the environment.
 */
void	 no_quarantine(void);

#endif /* MBX_TESTS_USERS_H */
