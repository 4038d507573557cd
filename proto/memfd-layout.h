/*
 * memfd-layout.h - what a zero-copy payload's memfd looks like, and the
 * seals it carries (PROTOCOL.md, "Zero-copy messages").
 *
 * Layout: a header page of PROTO_SHARED_HEADER bytes (proto.h), then the
 * payload; the memfd is at least PROTO_SHARED_HEADER + size bytes long
 * (proto_memfd_len()), bytes past the payload mean nothing.  The header
 * page holds one u32 at offset 0, the state word of a shared buffer, in
 * host byte order (the buffer never leaves the host); the rest of the
 * page is unused, and a sealed buffer does not use the state word.
 *
 * Seals:
 * - a sealed buffer (PROTO_SEND_FD alone) carries
 *   PROTO_MEMFD_SEALS_SEALED: nothing about it can change again, so a
 *   receiver maps it read-only and trusts it;
 * - a shared buffer (with PROTO_SEND_SHARED) carries at least
 *   PROTO_MEMFD_SEALS_SIZE (its size is fixed, so that no mapping of it
 *   can fault) and none of PROTO_MEMFD_SEALS_WRITE (the sender writes it
 *   again for later messages);
 * - mbxd adds PROTO_MEMFD_SEALS_MBXD to a shared buffer before it reads
 *   its seals, so that no write seal can come once it is queued (a
 *   sender must never seal a buffer it once sent shared), and makes its
 *   own sealed copies with PROTO_MEMFD_SEALS_SEALED.
 */
#ifndef MBX_PROTO_MEMFD_LAYOUT_H
#define MBX_PROTO_MEMFD_LAYOUT_H

#include <fcntl.h>

#include "proto.h"

/* The payload's offset: the header page comes first. */
#define PROTO_MEMFD_PAYLOAD	PROTO_SHARED_HEADER
/* The state word's offset in the header page, and its values. */
#define PROTO_MEMFD_STATE	0
#define PROTO_MEMFD_FREE	0u	/* the sender may write it */
#define PROTO_MEMFD_BUSY	1u	/* a message in it is not yet done */

/* The size can change no more. */
#define PROTO_MEMFD_SEALS_SIZE	(F_SEAL_GROW | F_SEAL_SHRINK)
/* Every seal that stops writes, now or through new mappings. */
#define PROTO_MEMFD_SEALS_WRITE	(F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)
/* A sealed buffer: contents, size and seals fixed for good. */
#define PROTO_MEMFD_SEALS_SEALED \
	(F_SEAL_WRITE | PROTO_MEMFD_SEALS_SIZE | F_SEAL_SEAL)
/* What mbxd adds to a shared buffer: its seals frozen. */
#define PROTO_MEMFD_SEALS_MBXD	F_SEAL_SEAL

#endif
