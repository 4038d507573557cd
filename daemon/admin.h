/*
 * admin.h - the operator's view of a broker as JSON (mbxctl list and
 * clients).  Keys are a stable contract: see mbxctl(1).
 *
 * A view is written in pages of about ADMIN_PAGE_BYTES, so that what one
 * request makes the daemon hold is bounded however many mailboxes and
 * clients there are: the pages of one view, concatenated, are one JSON
 * array.  A page ends after a whole element (a mailbox, a client's
 * fields, one name in a client's lists) and says where the next one
 * starts (the cursor), so the daemon keeps nothing between pages.  Each
 * page is a snapshot of its own moment: an element changed between two
 * pages shows in the later one (see PROTOCOL.md, "LIST and CLIENTS").
 */
#ifndef MBXD_ADMIN_H
#define MBXD_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include "broker.h"

#define ADMIN_PAGE_BYTES	(64u * 1024)
/* Longest cursor: a mailbox name, or "ID/STAGE/INDEX" for clients. */
#define ADMIN_CURSOR_MAX	255

struct admin_page {
	char	*text;		/* JSON text (malloc'd), not NUL-terminated */
	size_t	 len;
	size_t	 cap;
	bool	 failed;	/* out of memory */
	bool	 more;		/* another page follows, from cursor */
	char	 cursor[ADMIN_CURSOR_MAX + 1];
	size_t	 cursor_len;
};

/*
 * The page of the mailbox (LIST) or client (CLIENTS) view that starts at
 * cursor (len 0: the first page) into pg, which the caller frees with
 * admin_page_free().  0, -EINVAL for a cursor the daemon did not write,
 * or -ENOMEM.
 */
int	 admin_list_page(const struct broker *b, const char *cursor,
	    size_t len, struct admin_page *pg);
int	 admin_clients_page(const struct broker *b, const char *cursor,
	    size_t len, struct admin_page *pg);
void	 admin_page_free(struct admin_page *pg);

#endif
