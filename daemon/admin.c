/*
 * admin.c - JSON snapshots of the mailbox and client tables.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "admin.h"
#include "mailbox.h"

static int
mailbox_cmp(const void *a, const void *b)
{
	const struct mailbox *x = *(struct mailbox *const *)a;
	const struct mailbox *y = *(struct mailbox *const *)b;

	return strcmp(x->name, y->name);
}

static json_t *
peer_ids(const struct ptrvec *peers)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < peers->len; i++) {
		const struct peer *p = peers->items[i];

		json_array_append_new(arr, json_integer((json_int_t)p->id));
	}
	return arr;
}

static json_t *
mailbox_names(const struct ptrvec *mailboxes)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < mailboxes->len; i++) {
		const struct mailbox *mb = mailboxes->items[i];

		json_array_append_new(arr, json_string(mb->name));
	}
	return arr;
}

static json_t *
mailbox_json(const struct mailbox *mb)
{
	char mode[8];

	snprintf(mode, sizeof(mode), "%04o", (unsigned)mb->mode);
	return json_pack("{s:s, s:I, s:I, s:s, s:I, s:I, s:I, s:I, s:o, s:o, "
	    "s:I, s:I}",
	    "name", mb->name,
	    "owner", (json_int_t)mb->uid,
	    "group", (json_int_t)mb->gid,
	    "mode", mode,
	    "capacity", (json_int_t)mb->capacity,
	    "max_msg", (json_int_t)mb->max_msg,
	    "queued", (json_int_t)(mb->nqueued + mb->ninflight),
	    "bytes", (json_int_t)mb->bytes,
	    "receiver", mb->receiver != NULL ?
		json_integer((json_int_t)mb->receiver->id) : json_null(),
	    "standby", peer_ids(&mb->standby),
	    "sent", (json_int_t)mb->sent,
	    "received", (json_int_t)mb->received);
}

/* Serialises and frees root. */
static char *
admin_dump(json_t *root)
{
	char *text = NULL;

	if (root != NULL)
		text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	return text;
}

char *
admin_list_json(const struct broker *b)
{
	struct mailbox **all = calloc(b->nnamed + 1, sizeof(*all));
	struct mailbox *mb;
	size_t n = 0, pos = 0;
	json_t *root = json_array();

	while (all != NULL && (mb = table_next(&b->mailboxes, &pos)) != NULL)
		if (mb->owner == NULL && n < b->nnamed)
			all[n++] = mb;
	if (all == NULL || root == NULL) {
		free(all);
		json_decref(root);
		return NULL;
	}
	qsort(all, n, sizeof(*all), mailbox_cmp);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(root, mailbox_json(all[i]));
	free(all);
	return admin_dump(root);
}

char *
admin_clients_json(const struct broker *b)
{
	json_t *root = json_array();
	const struct peer *p;

	TAILQ_FOREACH(p, &b->peers, entry) {
		if (root == NULL)
			break;
		json_array_append_new(root, json_pack(
		    "{s:I, s:I, s:I, s:I, s:s, s:o, s:o}",
		    "id", (json_int_t)p->id,
		    "pid", (json_int_t)p->pid,
		    "uid", (json_int_t)p->uid,
		    "gid", (json_int_t)p->gid,
		    "comm", p->comm,
		    "bound", mailbox_names(&p->bound),
		    "standby", mailbox_names(&p->standing)));
	}
	return admin_dump(root);
}
