/*
 * admin.h - the operator's view of a broker as JSON (mbxctl list and
 * clients).  Keys are a stable contract: see mbxctl(1).
 */
#ifndef MBX_ADMIN_H
#define MBX_ADMIN_H

#include "broker.h"

/* JSON text the caller frees with free(), or NULL when out of memory. */
char	*admin_list_json(const struct broker *b);
char	*admin_clients_json(const struct broker *b);

#endif
