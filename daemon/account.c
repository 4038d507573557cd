/*
 * account.c - per-uid accounting (see account.h).
 */
#include <stdlib.h>

#include "account.h"

void
accounts_init(struct accounts *a)
{
	ptrvec_init(&a->list);
}

void
accounts_deinit(struct accounts *a)
{
	for (size_t i = 0; i < a->list.len; i++)
		free(a->list.items[i]);
	ptrvec_deinit(&a->list);
}

struct account *
account_find(const struct accounts *a, uid_t uid)
{
	for (size_t i = 0; i < a->list.len; i++) {
		struct account *acct = a->list.items[i];

		if (acct->uid == uid)
			return acct;
	}
	return NULL;
}

struct account *
account_get(struct accounts *a, uid_t uid)
{
	struct account *acct = account_find(a, uid);

	if (acct == NULL) {
		if ((acct = calloc(1, sizeof(*acct))) == NULL)
			return NULL;
		acct->uid = uid;
		if (ptrvec_push(&a->list, acct) < 0) {
			free(acct);
			return NULL;
		}
	}
	acct->refs++;
	return acct;
}

void
account_hold(struct account *acct)
{
	acct->refs++;
}

void
account_put(struct accounts *a, struct account *acct)
{
	if (acct == NULL || --acct->refs > 0)
		return;
	ptrvec_remove(&a->list, acct);
	free(acct);
}
