// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Value parsers for config fields, strict on purpose: a typo must be an
 * error, not a different number (addresses, MACs and rates: lib/values.c).
 * config_find_vm() is shared with the CLI (config.h).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "config/internal.h"

/* The value named s in names[n]; case matters, as for every YAML value. */
int cfg_parse_enum(const char *s, const struct cfg_enum *names, unsigned n, uint8_t *out)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		if (!strcmp(s, names[i].name)) {
			*out = names[i].value;
			return 0;
		}
	}
	return -EINVAL;
}

const struct vsn_cfg_vm *config_find_vm(const struct vsn_config *cfg, const char *name)
{
	unsigned i;

	if (!cfg || !name)
		return NULL;
	for (i = 0; i < cfg->n_vms; i++)
		if (cfg->vms[i].name && !strcmp(cfg->vms[i].name, name))
			return &cfg->vms[i];
	return NULL;
}
