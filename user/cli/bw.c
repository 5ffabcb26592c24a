// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vsn bw: set up, change or remove the per-VM HTB bandwidth tree on an
 * uplink by hand (the daemon does the same from its config).
 */
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include "lib/bw.h"
#include "cli/cli.h"

static void bw_usage(FILE *f)
{
	fprintf(f,
		"usage: vsn bw setup IFACE CAPACITY [VM:MIN:MAX ...]\n"
		"       vsn bw teardown IFACE\n"
		"       vsn [-j] bw classid VM\n\n"
		"Per-VM bandwidth on an uplink: an HTB root qdisc 1: with class 1:1 at\n"
		"CAPACITY, one class 1:(0x100+VM) per VM guaranteed MIN and capped at MAX,\n"
		"and 1:ffff for all other traffic.  The datapath marks a VM's packets with\n"
		"its class (skb->priority; 'classid' prints it).\n\n"
		"setup again changes the classes in place without interrupting traffic and\n"
		"removes VM classes not listed.  teardown removes vsn's HTB 1: root qdisc\n"
		"only; any other root qdisc and the clsact qdisc of vsn's programs stay.\n\n"
		"Rates in bit/s with an optional k, m, g, t (x1000) and 'bit': 20M, 1.5gbit.\n"
		"MIN empty or 0: %llu bit/s; MAX empty or 0: CAPACITY.\n"
		"Example: vsn bw setup up0 10G 1:1G:4G 2:500M:\n",
		BW_MIN_BPS);
}

static int parse_vm(const char *arg, struct bw_class *c)
{
	char buf[128], *min, *max, *end;
	unsigned long id;

	if (snprintf(buf, sizeof(buf), "%s", arg) >= (int)sizeof(buf))
		return -EINVAL;
	min = strchr(buf, ':');
	if (!min)
		return -EINVAL;
	*min++ = '\0';
	max = strchr(min, ':');
	if (!max)
		return -EINVAL;
	*max++ = '\0';
	errno = 0;
	id = strtoul(buf, &end, 10);
	if (errno || end == buf || *end || id > BW_VM_ID_MAX)
		return -EINVAL;
	c->vm_id = (uint32_t)id;
	c->min_bps = 0;
	c->max_bps = 0;
	if (*min && bw_parse_rate(min, &c->min_bps))
		return -EINVAL;
	if (*max && bw_parse_rate(max, &c->max_bps))
		return -EINVAL;
	return 0;
}

static int ifindex_of(const char *name)
{
	unsigned idx = if_nametoindex(name);

	if (!idx)
		vsn_err("bw: no interface '%s' in this network namespace", name);
	return (int)idx;
}

static int bw_setup_cmd(int argc, char **argv)
{
	struct bw_class *cls = NULL;
	uint64_t cap;
	char err[512];
	int idx, ret = 2, n = argc - 3;

	if (argc < 3) {
		bw_usage(stderr);
		return 2;
	}
	idx = ifindex_of(argv[1]);
	if (!idx)
		return 1;
	if (bw_parse_rate(argv[2], &cap)) {
		vsn_err("bw: capacity '%s' is not a rate (e.g. 10G, 800mbit)", argv[2]);
		return 2;
	}
	cls = calloc(n ? (size_t)n : 1, sizeof(*cls));
	if (!cls) {
		vsn_err("bw: out of memory");
		return 1;
	}
	for (int i = 0; i < n; i++) {
		if (parse_vm(argv[3 + i], &cls[i])) {
			vsn_err("bw: '%s' is not VM:MIN:MAX (VM 0..%u, rates like 20M)",
				argv[3 + i], BW_VM_ID_MAX);
			goto out;
		}
	}
	if (bw_setup((unsigned)idx, cap, cls, (unsigned)n, err, sizeof(err))) {
		vsn_err("bw: %s: %s", argv[1], err);
		ret = 1;
		goto out;
	}
	ret = 0;
out:
	free(cls);
	return ret;
}

static int bw_teardown_cmd(const struct vsn_opts *o, int argc, char **argv)
{
	char err[512];
	int idx, ret;

	if (argc != 2) {
		bw_usage(stderr);
		return 2;
	}
	idx = ifindex_of(argv[1]);
	if (!idx)
		return 1;
	ret = bw_teardown((unsigned)idx, err, sizeof(err));
	if (ret < 0) {
		vsn_err("bw: %s: %s", argv[1], err);
		return 1;
	}
	if (ret > 0)
		vsn_info(o, "bw: %s has no HTB 1: root qdisc of vsn's; left as it is", argv[1]);
	return 0;
}

static int bw_classid_cmd(const struct vsn_opts *o, int argc, char **argv)
{
	unsigned long id;
	uint32_t c;
	char *end;

	errno = 0;
	id = argc == 2 ? strtoul(argv[1], &end, 10) : 0;
	if (argc != 2 || errno || end == argv[1] || *end || id > BW_VM_ID_MAX) {
		vsn_err("bw: classid needs one VM id, 0..%u", BW_VM_ID_MAX);
		return 2;
	}
	c = bw_classid((uint32_t)id);
	if (o->json)
		printf("{\"vm\":%lu,\"classid\":\"%x:%x\",\"priority\":%u}\n", id, c >> 16,
		       c & 0xffff, c);
	else
		printf("%x:%x %u\n", c >> 16, c & 0xffff, c);
	return 0;
}

int cmd_bw(const struct vsn_opts *o, int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		bw_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			bw_usage(stdout);
			return 0;
		}
	}
	if (!strcmp(argv[1], "setup"))
		return bw_setup_cmd(argc - 1, argv + 1);
	if (!strcmp(argv[1], "teardown"))
		return bw_teardown_cmd(o, argc - 1, argv + 1);
	if (!strcmp(argv[1], "classid"))
		return bw_classid_cmd(o, argc - 1, argv + 1);
	vsn_err("bw: unknown action '%s' (setup, teardown, classid; see 'vsn bw --help')", argv[1]);
	return 2;
}
