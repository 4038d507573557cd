/*
 * ptrvec.h - a small ordered set of pointers (a peer's mailboxes, a
 * mailbox's standbys).  These sets are short, so linear search is right.
 */
#ifndef MBXD_PTRVEC_H
#define MBXD_PTRVEC_H

#include <stdbool.h>
#include <stddef.h>

struct ptrvec {
	void	**items;
	size_t	  len;
	size_t	  cap;
};

void	ptrvec_init(struct ptrvec *v);
void	ptrvec_deinit(struct ptrvec *v);
/* Appends p; 0 or -ENOMEM. */
int	ptrvec_push(struct ptrvec *v, void *p);
/* Removes p keeping the order of the rest; false when absent. */
bool	ptrvec_remove(struct ptrvec *v, const void *p);
bool	ptrvec_contains(const struct ptrvec *v, const void *p);

#endif
