/*
 * framer.c - the frame splitter and the binding of descriptors to frames
 * (see framer.h).
 */
#include <string.h>
#include <unistd.h>

#include "framer.h"

void
framer_init(struct framer *f, uint32_t max_body, size_t max_fds)
{
	memset(f, 0, sizeof(*f));
	f->max_body = max_body;
	if (max_fds < PROTO_MAX_FDS)
		max_fds = PROTO_MAX_FDS;
	f->max_fds = max_fds > FRAMER_MAX_FDS ? FRAMER_MAX_FDS : max_fds;
}

void
framer_close_fds(struct framer *f)
{
	for (size_t i = 0; i < f->nfds; i++)
		(void)close(f->fds[i]);
	f->nfds = 0;
}

void
framer_deinit(struct framer *f)
{
	framer_close_fds(f);
}

enum framer_result
framer_push_fd(struct framer *f, int fd)
{
	if (f->nfds == f->max_fds) {
		(void)close(fd);
		return FRAMER_MALFORMED;
	}
	f->fds[f->nfds++] = fd;
	return FRAMER_FRAME;
}

enum framer_result
framer_take_fds(struct framer *f, struct msghdr *mh)
{
	enum framer_result r = FRAMER_FRAME;
	struct cmsghdr *cm;

	/*
	 * Every descriptor is taken, even past a full queue (and closed
	 * then): one left in the control data would leak.
	 */
	for (cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
		size_t n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (framer_push_fd(f, fd) != FRAMER_FRAME)
				r = FRAMER_MALFORMED;
		}
	}
	/* MSG_CTRUNC: the kernel dropped descriptors it could not fit. */
	if (mh->msg_flags & MSG_CTRUNC)
		r = FRAMER_MALFORMED;
	return r;
}

size_t
framer_nfds(const struct framer *f)
{
	return f->nfds;
}

enum framer_result
framer_peek(const struct framer *f, const uint8_t *buf, size_t len,
    struct framer_frame *fr)
{
	memset(&fr->h, 0, sizeof(fr->h));
	fr->size = 0;
	fr->body = NULL;
	/*
	 * The length is checked against max_body here, before the caller
	 * grows any buffer for the body.
	 */
	switch (proto_header_decode(buf, len, f->max_body, &fr->h)) {
	case PROTO_DECODE_OK:
		break;
	case PROTO_DECODE_MORE:
		return FRAMER_MORE;
	default:
		return FRAMER_MALFORMED;
	}
	fr->size = PROTO_HEADER_SIZE + (size_t)fr->h.len;
	if (len < fr->size)
		return FRAMER_MORE;
	fr->body = buf + PROTO_HEADER_SIZE;
	return FRAMER_FRAME;
}

enum framer_result
framer_bind(struct framer *f, struct framer_frame *fr)
{
	size_t n = fr->h.nfds;

	/*
	 * The descriptors were sent with the frame's first byte: the frames
	 * before it took theirs, so its own are the first queued now.
	 */
	if (n > f->nfds || n > PROTO_MAX_FDS)
		return FRAMER_MALFORMED;
	memcpy(fr->fds, f->fds, n * sizeof(int));
	f->nfds -= n;
	memmove(f->fds, f->fds + n, f->nfds * sizeof(int));
	return FRAMER_FRAME;
}

enum framer_result
framer_next(struct framer *f, const uint8_t *buf, size_t len,
    struct framer_frame *fr)
{
	enum framer_result r = framer_peek(f, buf, len, fr);

	if (r != FRAMER_FRAME)
		return r;
	return framer_bind(f, fr);
}

bool
framer_stray_fds(const struct framer *f, size_t len)
{
	return len == 0 && f->nfds > 0;
}
