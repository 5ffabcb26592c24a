// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Finding the pinned maps, and the checks every command makes first. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lib/vsn.h"

int pins_path(const struct vsn_opts *o, const char *name, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", o->pin_dir, name);

	if (n < 0 || (size_t)n >= len) {
		vsn_err("pin path too long: %s/%s", o->pin_dir, name);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* Root, and a BPF filesystem under the pin directory's parent. */
int pins_env_ok(const struct vsn_opts *o, struct vsn_error *err)
{
	char parent[4096];
	struct statfs st;
	char *slash;

	if (geteuid() != 0)
		return vsn_error_set(err, -EPERM,
				     "must run as root (BPF maps and programs need CAP_BPF and "
				     "CAP_NET_ADMIN)");
	snprintf(parent, sizeof(parent), "%s", o->pin_dir);
	slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	if (statfs(parent, &st) || st.f_type != BPF_FS_MAGIC)
		return vsn_error_set(err, -ENOENT,
				     "%s is not on a BPF filesystem; mount one with: mount -t bpf "
				     "bpf %s",
				     o->pin_dir, parent);
	return 0;
}

int pins_check_env(const struct vsn_opts *o)
{
	struct vsn_error err = {.msg = ""};
	int ret = pins_env_ok(o, &err);

	if (ret)
		vsn_err("%s", err.msg);
	return ret;
}

static int open_one(const struct vsn_opts *o, const char *name, int *fd, struct vsn_error *err)
{
	char path[4096];
	int ret = snprintf(path, sizeof(path), "%s/%s", o->pin_dir, name);

	if (ret < 0 || (size_t)ret >= sizeof(path))
		return vsn_error_set(err, -ENAMETOOLONG, "pin path too long: %s/%s", o->pin_dir,
				     name);
	*fd = bpf_obj_get(path);
	if (*fd < 0) {
		ret = -errno;
		if (ret == -ENOENT)
			return vsn_error_set(err, ret, "map %s not found: run 'vsn attach' first",
					     path);
		return vsn_error_set(err, ret, "cannot open map %s: %s", path, strerror(-ret));
	}
	return 0;
}

/* Every pin of the datapath, once: maps (with their place in struct
 * vsn_maps, or NO_FD for maps no command opens) and programs. */
#define NO_FD SIZE_MAX
#define MAP(name, field)                                                                           \
	{                                                                                          \
		name, offsetof(struct vsn_maps, field)                                             \
	}

static const struct {
	const char *name;
	size_t fd_off;
} pinned[] = {
    MAP(VSN_MAP_VM_IF, vm_if),
    MAP(VSN_MAP_VOLUMES, volumes),
    MAP(VSN_MAP_BACKENDS, backends),
    MAP(VSN_MAP_CHASH, chash),
    MAP(VSN_MAP_PATHS, paths),
    MAP(VSN_MAP_ROUTES, routes),
    MAP(VSN_MAP_CONNS, conns),
    MAP(VSN_MAP_IFACES, ifaces),
    MAP(VSN_MAP_PATH_ST, path_stats),
    MAP(VSN_MAP_BE_ST, be_stats),
    MAP(VSN_MAP_VM_ST, vm_stats),
    MAP(VSN_MAP_REASONS, reasons),
    MAP(VSN_MAP_EVENTS, events),
    MAP(VSN_MAP_TEL_CFG, tel_cfg),
    MAP(VSN_MAP_TEL_ST, tel_stats),
    MAP(VSN_MAP_LAT_HIST, lat_hist),
    MAP(VSN_MAP_ROCE_PATH, roce_path),
    MAP(VSN_MAP_ROCE_QP, roce_qp),
    MAP(VSN_MAP_PATH_LV, path_live), /* the controller mmap()s it */
    MAP(VSN_MAP_CMDS, cmds),	     /* mmap()ed too: outstanding commands */
    MAP(VSN_MAP_GEN, gen),
    MAP(VSN_MAP_VM_STATE, vm_state),
    MAP(VSN_MAP_VM_DROP, vm_drops),
    {"vsn_vm_ingress", NO_FD},
    {"vsn_up_ingress", NO_FD},
    {VSN_MAP_REPLY_TC, NO_FD},
    {"vsn_up_xfer", NO_FD},
    {"vsn_up_egress", NO_FD},
    {"vsn_up_xdp", NO_FD},
};

int pins_open_err(const struct vsn_opts *o, struct vsn_maps *m, struct vsn_error *err)
{
	int *fds = (int *)m;
	size_t i;
	int ret;

	for (i = 0; i < sizeof(*m) / sizeof(int); i++)
		fds[i] = -1;
	ret = pins_env_ok(o, err);
	if (ret)
		return ret;
	for (i = 0; i < sizeof(pinned) / sizeof(pinned[0]); i++) {
		if (pinned[i].fd_off == NO_FD)
			continue;
		ret = open_one(o, pinned[i].name, (int *)((char *)m + pinned[i].fd_off), err);
		if (ret) {
			pins_close(m);
			return ret;
		}
	}
	return 0;
}

int pins_open(const struct vsn_opts *o, struct vsn_maps *m)
{
	struct vsn_error err = {.msg = ""};
	int ret = pins_open_err(o, m, &err);

	if (ret)
		vsn_err("%s", err.msg);
	return ret;
}

void pins_remove_all(const struct vsn_opts *o)
{
	char path[4096];

	for (size_t i = 0; i < sizeof(pinned) / sizeof(pinned[0]); i++)
		if (!pins_path(o, pinned[i].name, path, sizeof(path)))
			unlink(path);
	if (rmdir(o->pin_dir) && errno != ENOENT)
		vsn_warn("%s not removed: %s (something else is pinned there)", o->pin_dir,
			 strerror(errno));
}

void pins_close(struct vsn_maps *m)
{
	int *fds = (int *)m;
	size_t i;

	for (i = 0; i < sizeof(*m) / sizeof(int); i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

/* bpffs pins are not per network namespace, ifindexes are: remember where
 * an interface was, so detach never touches a namesake elsewhere. */
__u64 netns_ino(void)
{
	struct stat st;

	return stat("/proc/self/ns/net", &st) ? 0 : st.st_ino;
}

bool iface_is_here(unsigned ifindex, const struct vsn_iface *v)
{
	char name[IF_NAMESIZE];

	return v->netns_ino == netns_ino() && if_indextoname(ifindex, name) &&
	       !strcmp(name, v->name);
}
