// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vsn attach / detach / status: load the programs, attach them to VM
 * interfaces (TC ingress) and uplinks (XDP or TC ingress, TC egress), pin
 * maps and programs, and remember in vsn_ifaces what was done where so that
 * detach removes exactly that and nothing else.
 */
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <xdp/libxdp.h>

#include "cli/api_client.h"
#include "cli/cli.h"
#include "lib/verifier.h"
#include "vsn_tc.skel.h"
#include "vsn_xdp.skel.h"

#define VSN_XDP_PROG_NAME "vsn_up_xdp"
#define MAX_IFS		  64

enum xdp_choice { XDP_AUTO, XDP_NATIVE_ONLY, XDP_SKB_ONLY, XDP_NONE_TC };

struct attach_args {
	const char *vm[MAX_IFS];
	int n_vm;
	const char *up[MAX_IFS];
	int n_up;
	enum xdp_choice xdp;
	bool veth_xdp; /* --veth-replies xdp: the VM ends of veths run NAPI */
};

/*
 * libbpf and libxdp narrate expected events as warnings: probing for a TC
 * filter that is not there yet, and libxdp trying its dispatcher, which this
 * kernel may refuse.  vsn reports what matters itself; keep the rest.
 */
/* -v: the libraries' own words about a program that failed to load, too.
 * Set once by the command, read by the print callbacks (which take no
 * context). */
static bool print_load_failures;

static bool any_in(const char *msg, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strstr(msg, list[i]))
			return true;
	return false;
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* A program that failed to load: vsn says which and why itself
	 * (verif_explain keeps the whole verifier log in a file), or attaches
	 * it another way (xdp_attach_alone). */
	static const char *const load_failure[] = {
	    "-- BEGIN PROG LOAD LOG --",
	    "BPF program load failed",
	    "failed to load",
	};
	static const char *const expected[] = {
	    "Cannot find specified filter chain",
	    "xdp_metadata",
	    "xdp_pass",
	    "xdp-dispatcher",
	    "ulimit -l",
	    "Exclusivity flag on",
	};
	char msg[1024];
	va_list again;
	int n;

	if (level == LIBBPF_DEBUG)
		return 0;
	va_copy(again, ap);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (any_in(msg, expected, sizeof(expected) / sizeof(expected[0])) ||
	    (!print_load_failures &&
	     any_in(msg, load_failure, sizeof(load_failure) / sizeof(load_failure[0])))) {
		va_end(again);
		return 0;
	}
	/* A long message: print it whole. */
	n = n >= (int)sizeof(msg) ? vfprintf(stderr, fmt, again) : fputs(msg, stderr);
	va_end(again);
	return n;
}

static int libxdp_quiet(enum libxdp_print_level level, const char *fmt, va_list ap)
{
	/* libxdp explains its dispatcher fallback at INFO; we report it
	 * ourselves, and a program it could not load as well. */
	if (level != LIBXDP_WARN || (!print_load_failures && strstr(fmt, "Failed to load")))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static int add_ifs(const char **list, int *n, char *arg)
{
	char *save = NULL, *tok;

	for (tok = strtok_r(arg, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (*n >= MAX_IFS) {
			vsn_err("too many interfaces (at most %d)", MAX_IFS);
			return -E2BIG;
		}
		list[(*n)++] = tok;
	}
	return 0;
}

static void attach_usage(FILE *f)
{
	fprintf(f, "usage: vsn attach --vm IF[,IF...] --uplink IF[,IF...] [--xdp-mode MODE]\n"
		   "                  [--veth-replies tc|xdp]\n"
		   "\n"
		   "Load the datapath, pin its maps and programs under the pin directory and\n"
		   "attach: TC ingress on every VM interface; on every uplink XDP (replies\n"
		   "from storage) and TC egress (host-initiator flows).  Running it again\n"
		   "replaces the programs in place; map contents are kept.  Only the\n"
		   "programs this attach needs are loaded (the TC reply program only with\n"
		   "--xdp-mode tc); when the kernel refuses one, vsn names it and keeps the\n"
		   "verifier's log in a file ('vsn -v attach' prints it too).\n"
		   "\n"
		   "  --vm IF          VM-side interface (tap/veth); repeatable\n"
		   "  --uplink IF      uplink towards the storage fabric; repeatable\n"
		   "  --xdp-mode MODE  auto (native, else generic with a warning), native,\n"
		   "                   skb (generic XDP), or tc (TC ingress instead of XDP)\n"
		   "  --veth-replies tc|xdp\n"
		   "                   how replies reach a VM behind a veth when XDP runs on\n"
		   "                   the uplinks: tc (default) hands them to the uplink's TC\n"
		   "                   program, which works whatever the VM's end of the veth\n"
		   "                   does; xdp redirects them from XDP, one hop less, but the\n"
		   "                   kernel drops them unless the VM's end has GRO on or an\n"
		   "                   XDP program ('ethtool -K PEER gro on' in its namespace)\n");
}

static int parse_attach(int argc, char **argv, struct attach_args *a)
{
	static const struct option lo[] = {
	    {"vm", required_argument, NULL, 'v'},
	    {"uplink", required_argument, NULL, 'u'},
	    {"xdp-mode", required_argument, NULL, 'x'},
	    {"veth-replies", required_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	memset(a, 0, sizeof(*a));
	optind = 1;
	while ((c = getopt_long(argc, argv, "v:u:x:h", lo, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (strcmp(optarg, "tc") && strcmp(optarg, "xdp")) {
				vsn_err("--veth-replies: '%s' is not one of tc, xdp", optarg);
				return -EINVAL;
			}
			a->veth_xdp = !strcmp(optarg, "xdp");
			break;
		case 'v':
			if (add_ifs(a->vm, &a->n_vm, optarg))
				return -EINVAL;
			break;
		case 'u':
			if (add_ifs(a->up, &a->n_up, optarg))
				return -EINVAL;
			break;
		case 'x':
			if (!strcmp(optarg, "auto"))
				a->xdp = XDP_AUTO;
			else if (!strcmp(optarg, "native"))
				a->xdp = XDP_NATIVE_ONLY;
			else if (!strcmp(optarg, "skb"))
				a->xdp = XDP_SKB_ONLY;
			else if (!strcmp(optarg, "tc"))
				a->xdp = XDP_NONE_TC;
			else {
				vsn_err("--xdp-mode: '%s' is not one of auto, native, skb, tc",
					optarg);
				return -EINVAL;
			}
			break;
		case 'h':
			attach_usage(stdout);
			return 1;
		default:
			attach_usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		vsn_err("attach: unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	if (!a->n_vm && !a->n_up) {
		vsn_err("attach: name at least one --vm or --uplink interface");
		attach_usage(stderr);
		return -EINVAL;
	}
	return 0;
}

static int resolve_if(const char *name, unsigned *ifindex)
{
	*ifindex = if_nametoindex(name);
	if (!*ifindex) {
		vsn_err("unknown interface '%s' (check 'ip link'; in a namespace, run vsn "
			"there with nsenter --net)",
			name);
		return -ENODEV;
	}
	return 0;
}

/* Attach prog_fd at one TC hook point, creating clsact if absent. */
static int tc_attach(unsigned ifindex, const char *ifname, enum bpf_tc_attach_point where,
		     int prog_fd, __u32 *hooks)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = where);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = VSN_TC_HANDLE, .priority = VSN_TC_PRIO,
		    .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE);
	int err;

	err = bpf_tc_hook_create(&hook);
	if (!err)
		*hooks |= VSN_HOOK_CLSACT_OURS;
	else if (err != -EEXIST) {
		vsn_err("%s: cannot create clsact qdisc: %s", ifname, strerror(-err));
		return err;
	}
	err = bpf_tc_attach(&hook, &opts);
	if (err) {
		vsn_err("%s: cannot attach TC %s program: %s", ifname,
			where == BPF_TC_INGRESS ? "ingress" : "egress", strerror(-err));
		return err;
	}
	*hooks |= where == BPF_TC_INGRESS ? VSN_HOOK_TC_INGRESS : VSN_HOOK_TC_EGRESS;
	return 0;
}

static int tc_detach(unsigned ifindex, enum bpf_tc_attach_point where)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = where);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = VSN_TC_HANDLE, .priority = VSN_TC_PRIO);
	int err = bpf_tc_detach(&hook, &opts);

	return err == -ENOENT ? 0 : err;
}

static bool tc_attached(unsigned ifindex, enum bpf_tc_attach_point where, __u32 *prog_id)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = where);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = VSN_TC_HANDLE, .priority = VSN_TC_PRIO);

	if (bpf_tc_query(&hook, &opts))
		return false;
	*prog_id = opts.prog_id;
	return true;
}

/* A loaded copy of the XDP program, attached without libxdp: for in-place
 * replacement (libxdp would detach first), or to run alone where libxdp's
 * dispatcher cannot host it. */
static int load_xdp_copy(const struct vsn_opts *o, struct vsn_xdp **out)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = o->pin_dir);
	struct vsn_xdp *x;
	int err;

	x = vsn_xdp__open_opts(&oo);
	if (!x) {
		err = -errno;
		vsn_err("cannot open the XDP program: %s", strerror(-err));
		return err;
	}
	err = vsn_xdp__load(x);
	if (err) {
		if (!verif_explain_obj(x->obj, o->verbose))
			vsn_err("cannot load the XDP program: %s", strerror(-err));
		vsn_xdp__destroy(x);
		return err;
	}
	*out = x;
	return 0;
}

/*
 * Where libxdp's dispatcher cannot host vsn: it runs a program as an
 * extension (freplace) of one of its slots, and kernels that check what an
 * extension does (6.13, and 6.12 stable) refuse one that changes packet
 * data (vsn pops VLAN tags) in place of a slot that does not, as Debian
 * 12's libxdp 1.3 builds them.  Then vsn is attached alone, as libxdp
 * itself does on kernels without freplace.
 */
static int xdp_attach_alone(const struct vsn_opts *o, struct vsn_xdp **copy, unsigned ifindex,
			    const char *ifname, enum xdp_attach_mode mode, __u32 *hooks)
{
	__u32 flags = XDP_FLAGS_UPDATE_IF_NOEXIST |
		      (mode == XDP_MODE_SKB ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE);
	int err;

	if (!*copy) {
		err = load_xdp_copy(o, copy);
		if (err)
			return err;
	}
	err = bpf_xdp_attach(ifindex, bpf_program__fd((*copy)->progs.vsn_up_xdp), flags, NULL);
	if (err)
		return err;
	vsn_warn("%s: libxdp's dispatcher cannot host vsn_up_xdp on this kernel (it refuses "
		 "an extension program that changes packet data); vsn runs alone there, "
		 "without other XDP programs",
		 ifname);
	*hooks |= mode == XDP_MODE_SKB ? VSN_HOOK_XDP_SKB : VSN_HOOK_XDP_NATIVE;
	return 0;
}

/* XDP through libxdp so vsn coexists with other XDP programs where the
 * kernel allows libxdp's dispatcher; else libxdp runs vsn alone.  *alone:
 * set when vsn had to be attached without libxdp (xdp_attach_alone). */
static int xdp_attach(const struct vsn_opts *o, struct xdp_program *xp, struct vsn_xdp **copy,
		      unsigned ifindex, const char *ifname, enum xdp_choice choice, bool *alone,
		      __u32 *hooks)
{
	enum xdp_attach_mode mode = XDP_MODE_NATIVE;
	char msg[256];
	int err;

	if (choice == XDP_AUTO || choice == XDP_NATIVE_ONLY) {
		err = xdp_program__attach(xp, ifindex, XDP_MODE_NATIVE, 0);
		if (err == -EINVAL && !xdp_attach_alone(o, copy, ifindex, ifname, mode, hooks))
			goto alone;
		if (!err) {
			*hooks |= VSN_HOOK_XDP_NATIVE;
			return 0;
		}
		if (choice == XDP_NATIVE_ONLY)
			goto fail;
		libxdp_strerror(err, msg, sizeof(msg));
		vsn_warn("%s: native XDP failed (%s); using generic (skb) XDP, which is slower",
			 ifname, msg);
	}
	mode = XDP_MODE_SKB;
	err = xdp_program__attach(xp, ifindex, XDP_MODE_SKB, 0);
	if (err == -EINVAL && !xdp_attach_alone(o, copy, ifindex, ifname, mode, hooks))
		goto alone;
	if (!err) {
		*hooks |= VSN_HOOK_XDP_SKB;
		return 0;
	}
fail:
	/* The kernel refusing the program itself says so, with its reason. */
	if (verif_explain(&vsn_progs[VSN_PROG_XDP], o->verbose))
		return err;
	libxdp_strerror(err, msg, sizeof(msg));
	vsn_err("%s: cannot attach XDP: %s (try --xdp-mode tc)", ifname, msg);
	return err;
alone:
	*alone = true;
	return 0;
}

/* vsn's XDP program on ifindex, if any: its id, and how it is attached. */
static __u32 xdp_find_ours(unsigned ifindex, bool *legacy, enum xdp_attach_mode *mode)
{
	struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifindex);
	struct xdp_program *p;
	__u32 id = 0;

	if (libxdp_get_error(mp))
		return 0;
	*legacy = xdp_multiprog__is_legacy(mp);
	*mode = xdp_multiprog__attach_mode(mp);
	if (*legacy) {
		p = xdp_multiprog__main_prog(mp);
		if (p && !strcmp(xdp_program__name(p), VSN_XDP_PROG_NAME))
			id = xdp_program__id(p);
	} else {
		for (p = xdp_multiprog__next_prog(NULL, mp); p && !id;
		     p = xdp_multiprog__next_prog(p, mp))
			if (!strcmp(xdp_program__name(p), VSN_XDP_PROG_NAME))
				id = xdp_program__id(p);
	}
	xdp_multiprog__close(mp);
	return id;
}

/*
 * Re-attach over our own program running alone: swap it in one netlink call
 * (XDP_FLAGS_REPLACE), so no reply ever meets an uplink without vsn.
 */
static int xdp_replace_alone(unsigned ifindex, const char *ifname, __u32 old_id,
			     enum xdp_attach_mode mode, int new_fd, __u32 *hooks)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, xo);
	__u32 flags = XDP_FLAGS_REPLACE;
	int old_fd, err;

	old_fd = bpf_prog_get_fd_by_id(old_id);
	if (old_fd < 0) {
		vsn_err("%s: cannot open the attached XDP program: %s", ifname, strerror(errno));
		return -errno;
	}
	xo.old_prog_fd = old_fd;
	flags |= mode == XDP_MODE_SKB ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
	err = bpf_xdp_attach(ifindex, new_fd, flags, &xo);
	close(old_fd);
	if (err) {
		vsn_err("%s: cannot replace the XDP program: %s", ifname, strerror(-err));
		return err;
	}
	*hooks |= mode == XDP_MODE_SKB ? VSN_HOOK_XDP_SKB : VSN_HOOK_XDP_NATIVE;
	return 0;
}

/* Re-attach inside libxdp's dispatcher: the new program is in, now the old
 * one (same name, other id) goes. */
static int xdp_detach_id(unsigned ifindex, __u32 id)
{
	struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifindex);
	struct xdp_program *p;
	int err = 0;

	if (libxdp_get_error(mp))
		return 0;
	for (p = xdp_multiprog__next_prog(NULL, mp); p; p = xdp_multiprog__next_prog(p, mp)) {
		if (xdp_program__id(p) != id)
			continue;
		err = xdp_program__detach(p, ifindex, xdp_multiprog__attach_mode(mp), 0);
		break;
	}
	xdp_multiprog__close(mp);
	return err;
}

static int xdp_detach_ours(unsigned ifindex)
{
	struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifindex);
	struct xdp_program *p;
	int err = 0;

	if (libxdp_get_error(mp))
		return 0; /* nothing attached */
	if (xdp_multiprog__is_legacy(mp)) {
		p = xdp_multiprog__main_prog(mp);
		if (p && !strcmp(xdp_program__name(p), VSN_XDP_PROG_NAME))
			err = xdp_multiprog__detach(mp);
		goto out;
	}
	for (p = xdp_multiprog__next_prog(NULL, mp); p; p = xdp_multiprog__next_prog(p, mp)) {
		if (strcmp(xdp_program__name(p), VSN_XDP_PROG_NAME))
			continue;
		err = xdp_program__detach(p, ifindex, xdp_multiprog__attach_mode(mp), 0);
		break;
	}
out:
	xdp_multiprog__close(mp);
	return err;
}

/* Pin a loaded program (one this attach did not load keeps its old pin). */
static int pin_prog(const struct vsn_opts *o, struct bpf_program *prog)
{
	char path[4096];
	int err;

	if (bpf_program__fd(prog) < 0)
		return 0;
	err = pins_path(o, bpf_program__name(prog), path, sizeof(path));
	if (err)
		return err;
	unlink(path);
	err = bpf_program__pin(prog, path);
	if (err)
		vsn_err("cannot pin program at %s: %s", path, strerror(-err));
	return err;
}

static int record_iface(int map_fd, unsigned ifindex, const char *name, __u32 role, __u32 hooks)
{
	struct vsn_iface v = {};

	/* A clsact qdisc we created earlier stays ours across re-attach. */
	if (!bpf_map_lookup_elem(map_fd, &ifindex, &v))
		hooks |= v.hooks & VSN_HOOK_CLSACT_OURS;
	v.role = role;
	v.hooks = hooks;
	v.netns_ino = netns_ino();
	snprintf(v.name, sizeof(v.name), "%s", name);
	if (bpf_map_update_elem(map_fd, &ifindex, &v, BPF_ANY)) {
		vsn_err("cannot record %s in %s: %s", name, VSN_MAP_IFACES, strerror(errno));
		return -errno;
	}
	return 0;
}

/*
 * Remove what vsn_ifaces (fd) records, interface by interface.  quiet: no
 * progress lines (a failed attach undoing itself).  0, or the last error.
 */
static int detach_recorded(const struct vsn_opts *o, int fd, bool quiet)
{
	__u32 key, next, *prev = NULL;
	int err = 0;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		struct vsn_iface v;
		int e = 0;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &v))
			continue;
		if (!iface_is_here(key, &v)) {
			if (!quiet)
				vsn_info(o,
					 "%s: not in this network namespace any more; nothing to "
					 "remove",
					 v.name);
			continue;
		}
		if (v.hooks & VSN_HOOK_CLSACT_OURS) {
			LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = key,
				    .attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS);

			e = bpf_tc_hook_destroy(&hook);
			e = e == -ENOENT ? 0 : e;
		} else {
			e = tc_detach(key, BPF_TC_INGRESS) ?: tc_detach(key, BPF_TC_EGRESS);
		}
		if (v.hooks & (VSN_HOOK_XDP_NATIVE | VSN_HOOK_XDP_SKB))
			e = e ?: xdp_detach_ours(key);
		if (e) {
			vsn_err("%s: detach failed: %s", v.name, strerror(-e));
			err = e;
		} else if (!quiet) {
			vsn_info(o, "%s: detached", v.name);
		}
	}
	return err;
}

static bool is_veth(const char *ifname)
{
	struct ethtool_drvinfo di = {.cmd = ETHTOOL_GDRVINFO};
	struct ifreq ifr = {.ifr_data = (void *)&di};
	bool veth;
	int fd;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	veth = !ioctl(fd, SIOCETHTOOL, &ifr) && !strcmp(di.driver, "veth");
	close(fd);
	return veth;
}

/*
 * A VM behind a veth gets its replies through TC, not XDP_REDIRECT, which
 * the kernel drops unless the VM's end of the veth runs NAPI (GRO on, or an
 * XDP program there): lib/xfer.h.  Unless the operator says the VM's ends
 * do (veth_xdp).  Written for every VM interface, so that a re-attach after
 * the interface changed kind, or the option, sets it right.
 */
static int reply_via_tc(int map_fd, unsigned ifindex, const char *ifname, bool veth_xdp,
			bool *via_tc)
{
	__u32 v;

	*via_tc = !veth_xdp && is_veth(ifname);
	v = *via_tc;
	if (bpf_map_update_elem(map_fd, &ifindex, &v, BPF_ANY)) {
		vsn_err("cannot write %s for %s: %s", VSN_MAP_REPLY_TC, ifname, strerror(errno));
		return -errno;
	}
	return 0;
}

/* First attach: NVMe/TCP parsing on, every event, no cap.  A re-attach
 * keeps whatever was set since. */
static int telemetry_defaults(int cfg_fd)
{
	struct vsn_tel_cfg cfg = {};
	__u32 zero = 0;

	if (bpf_map_lookup_elem(cfg_fd, &zero, &cfg)) {
		vsn_err("cannot read %s: %s", VSN_MAP_TEL_CFG, strerror(errno));
		return -errno;
	}
	if (cfg.enabled || cfg.sample_every || cfg.max_per_sec)
		return 0;
	cfg.enabled = 1;
	cfg.sample_every = 1;
	if (bpf_map_update_elem(cfg_fd, &zero, &cfg, BPF_ANY)) {
		vsn_err("cannot write %s: %s", VSN_MAP_TEL_CFG, strerror(errno));
		return -errno;
	}
	return 0;
}

int cmd_attach(const struct vsn_opts *o, int argc, char **argv)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = o->pin_dir);
	unsigned vm_idx[MAX_IFS], up_idx[MAX_IFS];
	struct xdp_program *xp = NULL;
	struct vsn_xdp *xskel = NULL, *xrep = NULL;
	bool xp_used = false;
	struct vsn_tc *skel = NULL;
	struct attach_args a;
	char ifaces_pin[4096];
	bool fresh;
	int i, err, ifaces_fd = -1, xfer_fd;

	err = parse_attach(argc, argv, &a);
	if (err)
		return err > 0 ? 0 : 2;
	err = pins_check_env(o);
	if (err)
		return 1;
	print_load_failures = o->verbose;
	libbpf_set_print(libbpf_quiet);
	libxdp_set_print(libxdp_quiet);
	for (i = 0; i < a.n_vm; i++) {
		if (resolve_if(a.vm[i], &vm_idx[i]))
			return 1;
		if (vm_idx[i] >= VSN_MAX_IFINDEX) {
			vsn_err("%s has ifindex %u; VM interfaces need ifindex < %d", a.vm[i],
				vm_idx[i], VSN_MAX_IFINDEX);
			return 1;
		}
	}
	for (i = 0; i < a.n_up; i++)
		if (resolve_if(a.up[i], &up_idx[i]))
			return 1;
	/* No datapath yet: a failed attach leaves nothing behind.  (One
	 * failing over a running datapath leaves that running as it was.) */
	if (pins_path(o, VSN_MAP_IFACES, ifaces_pin, sizeof(ifaces_pin)))
		return 1;
	fresh = access(ifaces_pin, F_OK) != 0;
	if (mkdir(o->pin_dir, 0700) && errno != EEXIST) {
		vsn_err("cannot create %s: %s", o->pin_dir, strerror(errno));
		return 1;
	}
	skel = vsn_tc__open_opts(&oo);
	err = libbpf_get_error(skel);
	if (err) {
		skel = NULL;
		vsn_err("cannot open the TC programs: %s", strerror(-err));
		goto cleanup;
	}
	/* Only what this attach uses: a program the kernel might refuse
	 * must not keep the others from loading. */
	bpf_program__set_autoload(skel->progs.vsn_vm_ingress, a.n_vm > 0);
	bpf_program__set_autoload(skel->progs.vsn_up_egress, a.n_up > 0);
	bpf_program__set_autoload(skel->progs.vsn_up_ingress, a.n_up > 0 && a.xdp == XDP_NONE_TC);
	bpf_program__set_autoload(skel->progs.vsn_up_xfer, a.n_up > 0 && a.xdp != XDP_NONE_TC);
	err = vsn_tc__load(skel);
	if (err) {
		if (!verif_explain_obj(skel->obj, o->verbose))
			vsn_err("cannot load the TC programs: %s", strerror(-err));
		goto cleanup;
	}
	ifaces_fd = bpf_map__fd(skel->maps.vsn_ifaces);
	err = telemetry_defaults(bpf_map__fd(skel->maps.vsn_tel_cfg));
	if (err)
		goto cleanup;
	err = pin_prog(o, skel->progs.vsn_vm_ingress) ?: pin_prog(o, skel->progs.vsn_up_ingress)
		?: pin_prog(o, skel->progs.vsn_up_xfer) ?: pin_prog(o, skel->progs.vsn_up_egress);
	if (err)
		goto cleanup;

	for (i = 0; i < a.n_vm; i++) {
		bool via_tc = false;
		__u32 hooks = 0;

		err = tc_attach(vm_idx[i], a.vm[i], BPF_TC_INGRESS,
				bpf_program__fd(skel->progs.vsn_vm_ingress), &hooks);
		if (err) {
			/* A clsact qdisc created for it goes with the undo. */
			if (fresh && hooks)
				record_iface(ifaces_fd, vm_idx[i], a.vm[i], VSN_ROLE_VM, hooks);
			goto cleanup;
		}
		err = record_iface(ifaces_fd, vm_idx[i], a.vm[i], VSN_ROLE_VM, hooks);
		if (err)
			goto cleanup;
		err = reply_via_tc(bpf_map__fd(skel->maps.vsn_reply_tc), vm_idx[i], a.vm[i],
				   a.veth_xdp, &via_tc);
		if (err)
			goto cleanup;
		vsn_info(o, "%s: VM interface, TC ingress%s", a.vm[i],
			 via_tc ? "; a veth: replies reach it through TC (lib/xfer.h)" : "");
	}

	if (a.n_up && a.xdp != XDP_NONE_TC) {
		xskel = vsn_xdp__open_opts(&oo);
		err = libbpf_get_error(xskel);
		if (err) {
			xskel = NULL;
			vsn_err("cannot open the XDP program: %s", strerror(-err));
			goto cleanup;
		}
		xp = xdp_program__from_bpf_obj(xskel->obj, "xdp");
		err = libxdp_get_error(xp);
		if (err) {
			xp = NULL;
			vsn_err("libxdp cannot use the XDP program: %s", strerror(-err));
			goto cleanup;
		}
	}
	xfer_fd = bpf_program__fd(skel->progs.vsn_up_xfer);
	for (i = 0; i < a.n_up; i++) {
		enum xdp_attach_mode old_mode = XDP_MODE_UNSPEC;
		bool legacy = false;
		__u32 hooks = 0, old_id;

		err = tc_attach(up_idx[i], a.up[i], BPF_TC_EGRESS,
				bpf_program__fd(skel->progs.vsn_up_egress), &hooks);
		if (err)
			goto cleanup;
		/* The new reply program goes in before the old one goes out:
		 * a reply never meets an uplink without vsn. */
		old_id = xdp_find_ours(up_idx[i], &legacy, &old_mode);
		if (!xp) {
			err = tc_attach(up_idx[i], a.up[i], BPF_TC_INGRESS,
					bpf_program__fd(skel->progs.vsn_up_ingress), &hooks);
			if (!err && old_id)
				err = xdp_detach_ours(up_idx[i]);
		} else if (old_id && legacy) {
			if (!xrep) {
				err = load_xdp_copy(o, &xrep);
				if (err)
					goto cleanup;
			}
			err = xdp_replace_alone(up_idx[i], a.up[i], old_id, old_mode,
						bpf_program__fd(xrep->progs.vsn_up_xdp), &hooks);
			if (!err)
				err =
				    tc_attach(up_idx[i], a.up[i], BPF_TC_INGRESS, xfer_fd, &hooks);
		} else {
			bool alone = false;

			err = xdp_attach(o, xp, &xrep, up_idx[i], a.up[i], a.xdp, &alone, &hooks);
			xp_used = xp_used || (!err && !alone);
			if (!err && old_id)
				err = xdp_detach_id(up_idx[i], old_id);
			/* In place of vsn_up_ingress (--xdp-mode tc) if that was
			 * there: replies XDP leaves for TC (lib/xfer.h). */
			if (!err)
				err =
				    tc_attach(up_idx[i], a.up[i], BPF_TC_INGRESS, xfer_fd, &hooks);
		}
		if (err) {
			/* What did get attached there goes with the undo. */
			if (fresh && hooks)
				record_iface(ifaces_fd, up_idx[i], a.up[i], VSN_ROLE_UPLINK, hooks);
			goto cleanup;
		}
		err = record_iface(ifaces_fd, up_idx[i], a.up[i], VSN_ROLE_UPLINK, hooks);
		if (err)
			goto cleanup;
		vsn_info(o, "%s: uplink, %s ingress, TC egress", a.up[i],
			 hooks & VSN_HOOK_XDP_NATIVE ? "XDP (native)"
			 : hooks & VSN_HOOK_XDP_SKB  ? "XDP (generic)"
						     : "TC");
	}
	if (xp && a.n_up > 0) {
		struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(up_idx[0]);

		if (!libxdp_get_error(mp)) {
			if (xdp_multiprog__is_legacy(mp))
				vsn_info(o,
					 "XDP: libxdp runs vsn as the only program on its uplinks "
					 "(this kernel refuses the multi-program dispatcher)");
			xdp_multiprog__close(mp);
		}
		err = pin_prog(o, xp_used ? xskel->progs.vsn_up_xdp : xrep->progs.vsn_up_xdp);
		if (err)
			goto cleanup;
	}
	vsn_info(o, "attached; maps pinned under %s", o->pin_dir);
cleanup:
	if (err && fresh) {
		if (ifaces_fd >= 0)
			detach_recorded(o, ifaces_fd, true);
		pins_remove_all(o);
		vsn_info(o, "attach failed: nothing of it is left attached or pinned");
	}
	xdp_program__close(xp);
	vsn_xdp__destroy(xskel);
	vsn_xdp__destroy(xrep);
	vsn_tc__destroy(skel);
	return err ? 1 : 0;
}

/*
 * The daemon keeps its maps open and would go on answering as if nothing
 * happened; it notices the detach on its next tick (and refuses changes
 * until an attach), but the operator should hear it now.
 */
static void warn_daemon_running(void)
{
	struct json_object *req = json_object_new_object(), *resp = NULL;
	struct vsn_error err = {.msg = ""};
	const char *sock = api_socket_path();

	json_object_object_add(req, "cmd", json_object_new_string("status"));
	if (!api_call(sock, req, &resp, &err))
		vsn_warn("a vsn daemon answers on %s: it will report the datapath detached and "
			 "refuse changes until 'vsn attach' runs again (stop the daemon first "
			 "when taking vsn out for good)",
			 sock);
	json_object_put(resp);
	json_object_put(req);
}

int cmd_detach(const struct vsn_opts *o, int argc, char **argv)
{
	char path[4096];
	int fd, err;

	if (cli_help_asked(argc, argv)) {
		printf("usage: vsn detach\n\nRemove vsn's programs from every interface it "
		       "attached to, the clsact\nqdiscs it created, and its pins. Other programs "
		       "stay.  A running daemon\n(vsn daemon) is warned about, not stopped: it "
		       "reports the datapath\ndetached and refuses changes until the next "
		       "'vsn attach'.\n");
		return 0;
	}
	if (argc > 1) {
		vsn_err("detach takes no arguments");
		return 2;
	}
	if (pins_check_env(o))
		return 1;
	libbpf_set_print(libbpf_quiet);
	libxdp_set_print(libxdp_quiet);
	if (pins_path(o, VSN_MAP_IFACES, path, sizeof(path)))
		return 1;
	fd = bpf_obj_get(path);
	if (fd < 0) {
		if (errno != ENOENT) {
			vsn_err("cannot open %s: %s", path, strerror(errno));
			return 1;
		}
		vsn_info(o, "nothing attached (no %s)", path);
		pins_remove_all(o);
		return 0;
	}
	warn_daemon_running();
	err = detach_recorded(o, fd, false);
	close(fd);
	if (err)
		return 1;
	pins_remove_all(o);
	return 0;
}

/*
 * What a running daemon makes of the datapath (it keeps its maps open and
 * notices a detach by itself): its 'datapath' object, with "socket" and
 * "running".  Without -j also printed, as the last lines of the status.
 */
static struct json_object *daemon_view(const struct vsn_opts *o)
{
	struct json_object *req = json_object_new_object(), *resp = NULL, *dp = NULL, *v;
	struct json_object *out = json_object_new_object();
	struct vsn_error err = {.msg = ""};
	const char *sock = api_socket_path();
	bool attached;
	int ret;

	json_object_object_add(req, "cmd", json_object_new_string("status"));
	ret = api_call(sock, req, &resp, &err);
	json_object_put(req);
	json_object_object_add(out, "socket", json_object_new_string(sock));
	json_object_object_add(out, "running", json_object_new_boolean(!ret));
	if (ret) {
		if (!o->json)
			printf("\ndaemon: %s\n",
			       ret == -ENOENT || ret == -ECONNREFUSED ? "not running" : err.msg);
		return out;
	}
	if (json_object_object_get_ex(resp, "datapath", &dp))
		json_object_object_add(out, "datapath", json_object_get(dp));
	attached =
	    !dp || !json_object_object_get_ex(dp, "attached", &v) || json_object_get_boolean(v);
	if (!o->json)
		printf("\ndaemon: running on %s; %s%s%s\n", sock,
		       attached ? "it sees the datapath attached"
				: "it sees the datapath DETACHED and refuses changes: ",
		       attached					  ? ""
		       : json_object_object_get_ex(dp, "why", &v) ? json_object_get_string(v)
								  : "",
		       attached ? "" : " (run 'vsn attach')");
	json_object_put(resp);
	return out;
}

/* status flags a map this full (the daemon warns at the same level). */
#define MAP_FULL_WARN 0.8

static int count_entries(int fd, size_t key_size, bool array_nonzero, size_t val_size)
{
	char key[256] = {0}, next[256], val[512];
	bool first = true;
	int n = 0;

	if (key_size > sizeof(key) || val_size > sizeof(val))
		return -1;
	while (!bpf_map_get_next_key(fd, first ? NULL : key, next)) {
		first = false;
		memcpy(key, next, key_size);
		if (array_nonzero) {
			size_t i;

			if (bpf_map_lookup_elem(fd, key, val))
				continue;
			for (i = 0; i < val_size && !val[i]; i++)
				;
			if (i == val_size)
				continue;
		}
		n++;
	}
	return n;
}

int cmd_status(const struct vsn_opts *o, int argc, char **argv)
{
	static const struct {
		const char *name;
		bool array;
		size_t ks, vs;
	} tabs[] = {
	    {VSN_MAP_VM_IF, true, 4, sizeof(struct vsn_vm_if)},
	    {VSN_MAP_VOLUMES, false, sizeof(struct vsn_volume_key), 0},
	    {VSN_MAP_BACKENDS, false, 4, 0},
	    {VSN_MAP_PATHS, false, 4, 0},
	    {VSN_MAP_ROUTES, false, sizeof(struct vsn_route_key), 0},
	    {VSN_MAP_CONNS, false, sizeof(struct vsn_conn_key), 0},
	};
	struct vsn_error err = {.msg = ""};
	struct vsn_maps m;
	__u32 key, next, *prev = NULL;
	bool first = true;
	size_t i;

	if (cli_help_asked(argc, argv)) {
		printf("usage: vsn [-j] status\n\nWhat is attached where, in which mode, and how "
		       "full each map is.\n");
		return 0;
	}
	if (pins_open_err(o, &m, &err)) {
		/* -j: the answer is JSON whatever it is; the reason goes in it. */
		if (o->json) {
			struct json_object *j = json_object_new_object();

			json_object_object_add(j, "pin_dir", json_object_new_string(o->pin_dir));
			json_object_object_add(j, "attached", json_object_new_boolean(false));
			json_object_object_add(j, "error", json_object_new_string(err.msg));
			json_object_object_add(j, "daemon", daemon_view(o));
			printf("%s\n",
			       json_object_to_json_string_ext(
				   j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
			json_object_put(j);
		} else {
			vsn_err("%s", err.msg);
			json_object_put(daemon_view(o));
		}
		return 1;
	}
	libbpf_set_print(libbpf_quiet);
	if (o->json)
		printf("{\"pin_dir\":\"%s\",\"interfaces\":[", o->pin_dir);
	else
		printf("pin directory: %s\n\ninterfaces:\n", o->pin_dir);
	while (!bpf_map_get_next_key(m.ifaces, prev, &next)) {
		struct vsn_iface v;
		__u32 id_in = 0, id_eg = 0;
		char mode[64] = "";
		bool in, eg, here;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(m.ifaces, &key, &v))
			continue;
		here = iface_is_here(key, &v);
		in = here && tc_attached(key, BPF_TC_INGRESS, &id_in);
		eg = here && tc_attached(key, BPF_TC_EGRESS, &id_eg);
		if (v.hooks & VSN_HOOK_XDP_NATIVE)
			snprintf(mode, sizeof(mode), "xdp-native");
		else if (v.hooks & VSN_HOOK_XDP_SKB)
			snprintf(mode, sizeof(mode), "xdp-generic");
		else if (in)
			snprintf(mode, sizeof(mode), "tc");
		if (o->json)
			printf(
			    "%s{\"ifindex\":%u,\"name\":\"%s\",\"role\":\"%s\",\"ingress\":\"%s\","
			    "\"tc_ingress_prog\":%u,\"tc_egress_prog\":%u,\"present\":%s}",
			    first ? "" : ",", key, v.name, v.role == VSN_ROLE_VM ? "vm" : "uplink",
			    mode, id_in, id_eg, here ? "true" : "false");
		else
			printf("  %-16s ifindex %-5u %-7s ingress %-12s%s%s\n", v.name, key,
			       v.role == VSN_ROLE_VM ? "vm" : "uplink", mode,
			       eg ? " egress tc" : "",
			       !here ? " (not in this network namespace)"
			       : (v.hooks & VSN_HOOK_TC_INGRESS) && !in ? " (TC program missing!)"
									: "");
		first = false;
	}
	if (o->json)
		printf("],\"maps\":{");
	else
		printf("\nmaps:\n");
	for (i = 0; i < sizeof(tabs) / sizeof(tabs[0]); i++) {
		char path[4096];
		struct bpf_map_info info = {};
		__u32 ilen = sizeof(info);
		bool nearly_full;
		int fd, n;

		if (pins_path(o, tabs[i].name, path, sizeof(path)))
			continue;
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		n = count_entries(fd, tabs[i].ks, tabs[i].array, tabs[i].vs);
		bpf_obj_get_info_by_fd(fd, &info, &ilen);
		/* The connection table nearly full: new connections start
		 * evicting live ones (the daemon logs it too). */
		nearly_full = info.max_entries && n >= MAP_FULL_WARN * info.max_entries;
		if (o->json)
			printf("%s\"%s\":{\"entries\":%d,\"max_entries\":%u%s}", i ? "," : "",
			       tabs[i].name, n, info.max_entries,
			       nearly_full ? ",\"warning\":\"nearly full\"" : "");
		else
			printf("  %-14s %8d / %-8u (%.1f%%)%s%s\n", tabs[i].name, n,
			       info.max_entries,
			       info.max_entries ? 100.0 * n / info.max_entries : 0.0,
			       nearly_full ? "  WARNING: nearly full" : "",
			       nearly_full && !strcmp(tabs[i].name, VSN_MAP_CONNS)
				   ? "; new connections evict live ones: find the VM that holds "
				     "most (vsn show connections --vm, metric vsn_vm_connections) "
				     "and lower its max_connections"
				   : "");
		close(fd);
	}
	if (o->json) {
		struct json_object *d = daemon_view(o);

		printf("},\"daemon\":%s}\n",
		       json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN |
							     JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(d);
	} else {
		json_object_put(daemon_view(o));
	}
	pins_close(&m);
	return 0;
}
