/*
 * memfd.h - what the daemon accepts as a zero-copy payload.
 *
 * A memfd the daemon queues is handed, unchanged, to every receiver it is
 * delivered to, until one acknowledges it.  So the check at send time is
 * the only one: whatever the sender does to its memfd afterwards, every
 * receiver must be able to map it (read-only when sealed, read-write when
 * shared) and the daemon must be able to copy it (a shared buffer bound
 * for another uid).  A memfd that could fail a receiver would be given
 * out, fail, come back to the head of its queue and fail the next one.
 */
#ifndef MBXD_MEMFD_H
#define MBXD_MEMFD_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Checks fd as the payload of size bytes (after the header page), sealed
 * or shared.  A shared buffer that passes is sealed against further seals
 * here (F_SEAL_SEAL), so that no write seal added later can stop a
 * receiver's writable mapping.  0 or -EINVAL; fd stays the caller's.
 */
int	memfd_check(int fd, uint64_t size, bool shared);

#endif
