/*
 * memfd.c - the checks of a zero-copy payload (see memfd.h), against the
 * layout and seal rules of proto/memfd-layout.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "memfd-layout.h"
#include "memfd.h"

int
memfd_check(int fd, uint64_t size, bool shared)
{
	const int sealed = PROTO_MEMFD_SEALS_SEALED;
	const int fixed = PROTO_MEMFD_SEALS_SIZE | PROTO_MEMFD_SEALS_MBXD;
	int seals, mode = fcntl(fd, F_GETFL);
	struct statfs sfs;
	struct stat st;
	size_t need;

	/* A size near UINT64_MAX would wrap the header page's addition. */
	if (!proto_memfd_len(size, &need))
		return -EINVAL;
	if (mode < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size < (uint64_t)need)
		return -EINVAL;
	/*
	 * Plain shared memory only: a hugetlbfs memfd maps only in whole
	 * huge pages and cannot be copied (copy_file_range()).
	 */
	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != TMPFS_MAGIC)
		return -EINVAL;
	/*
	 * The access mode is the open file's, which every receiver's
	 * descriptor shares and nobody can change: a memfd reopened
	 * write-only (/proc/self/fd/N) cannot be mapped at all, and a shared
	 * buffer is mapped read-write for its state word.
	 */
	mode &= O_ACCMODE;
	if (mode != O_RDWR && (shared || mode != O_RDONLY))
		return -EINVAL;
	if (!shared) {
		/* F_SEAL_SEAL: nothing can change about it from now on. */
		if ((seals = fcntl(fd, F_GET_SEALS)) < 0 ||
		    (seals & sealed) != sealed)
			return -EINVAL;
		return 0;
	}
	/*
	 * A shared buffer stays writable, but its seals are frozen first and
	 * read after: a write seal added before that (even while we look)
	 * shows, and none can come later.  EPERM: already frozen.
	 */
	if (fcntl(fd, F_ADD_SEALS, PROTO_MEMFD_SEALS_MBXD) < 0 &&
	    errno != EPERM)
		return -EINVAL;
	if ((seals = fcntl(fd, F_GET_SEALS)) < 0 ||
	    (seals & fixed) != fixed || (seals & PROTO_MEMFD_SEALS_WRITE) != 0)
		return -EINVAL;
	return 0;
}
