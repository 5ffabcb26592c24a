// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The verifier as a budget: load one datapath program alone, with the
 * verifier's statistics, and say what it cost (processed instructions,
 * states, stack, program size); when the kernel refuses it, say why and
 * keep the whole log in a file.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lib/verifier.h"
#include "lib/vsn.h"
#include "vsn_tc.skel.h"
#include "vsn_xdp.skel.h"

/* A failing program's level-1 log: the kernel keeps its tail (6.4+) or its
 * head (older) when it is longer. */
#define VERIFY_LOG_FULL	  (64u << 20)
#define VERIFY_TAIL_LINES 8

const struct vsn_prog_desc vsn_progs[VSN_N_PROGS] = {
    [VSN_PROG_VM_INGRESS] = {"vsn_vm_ingress", "tc", "TC ingress of VM interfaces"},
    [VSN_PROG_UP_EGRESS] = {"vsn_up_egress", "tc", "TC egress of uplinks, host flows"},
    [VSN_PROG_XDP] = {"vsn_up_xdp", "xdp", "XDP on uplinks, replies"},
    [VSN_PROG_UP_INGRESS] = {"vsn_up_ingress", "tc", "TC ingress of uplinks, --xdp-mode tc"},
    [VSN_PROG_UP_XFER] = {"vsn_up_xfer", "tc", "TC ingress of uplinks, replies XDP leaves"},
};

static const void *object_bytes(const char *object, size_t *sz)
{
	if (!strcmp(object, "xdp"))
		return vsn_xdp__elf_bytes(sz);
	return vsn_tc__elf_bytes(sz);
}

/* "processed N insns (limit L) max_states_per_insn A total_states B
 * peak_states C mark_read D" and "stack depth X+Y+Z": as every kernel since
 * 5.2 prints them at BPF_LOG_STATS. */
static void parse_stats(const char *log, struct vsn_verif *v)
{
	const char *s;

	s = strstr(log, "processed ");
	if (s)
		sscanf(s,
		       "processed %ld insns (limit %ld) max_states_per_insn %ld "
		       "total_states %ld peak_states %ld",
		       &v->insns, &v->limit, &v->max_states_per_insn, &v->total_states,
		       &v->peak_states);
	s = strstr(log, "verification time ");
	if (s)
		sscanf(s, "verification time %ld", &v->time_us);
	s = strstr(log, "stack depth ");
	if (s) {
		size_t n = 0;

		s += strlen("stack depth ");
		while (n + 1 < sizeof(v->stack) && ((s[n] >= '0' && s[n] <= '9') || s[n] == '+'))
			n++;
		memcpy(v->stack, s, n);
		v->stack[n] = '\0';
		for (const char *p = v->stack; *p;) {
			char *end;
			long d = strtol(p, &end, 10);

			if (end == p)
				break;
			if (d > v->stack_max)
				v->stack_max = d;
			p = *end == '+' ? end + 1 : end;
		}
	}
}

static void prog_sizes(int fd, struct vsn_verif *v)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (!bpf_obj_get_info_by_fd(fd, &info, &len)) {
		v->xlated = info.xlated_prog_len;
		v->jited = info.jited_prog_len;
	}
}

/* Shrink what verification does not depend on: hash tables' sizes (an
 * array's size can matter to the verifier, so arrays keep theirs). */
static void object_prepare(struct bpf_object *obj)
{
	struct bpf_map *m;

	bpf_object__for_each_map(m, obj)
	{
		enum bpf_map_type t = bpf_map__type(m);

		bpf_map__set_pin_path(m, NULL);
		if (t == BPF_MAP_TYPE_HASH || t == BPF_MAP_TYPE_LRU_HASH)
			bpf_map__set_max_entries(m, 64);
	}
}

int verif_load_one(const struct vsn_prog_desc *d, __u32 log_level, char *log, size_t log_len,
		   struct vsn_verif *v)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = d->object);
	struct bpf_object *obj = NULL;
	struct bpf_program *p, *target = NULL;
	const void *bytes;
	size_t sz;
	int err;

	memset(v, 0, sizeof(*v));
	v->desc = d;
	log[0] = '\0';
	bytes = object_bytes(d->object, &sz);
	obj = bpf_object__open_mem(bytes, sz, &oo);
	err = libbpf_get_error(obj);
	if (err) {
		obj = NULL;
		goto cleanup;
	}
	object_prepare(obj);
	bpf_object__for_each_program(p, obj)
	{
		bool me = !strcmp(bpf_program__name(p), d->name);

		bpf_program__set_autoload(p, me);
		if (me)
			target = p;
	}
	if (!target) {
		err = -ENOENT;
		goto cleanup;
	}
	bpf_program__set_log_level(target, log_level);
	bpf_program__set_log_buf(target, log, log_len);
	err = bpf_object__load(obj);
	parse_stats(log, v);
	if (!err)
		prog_sizes(bpf_program__fd(target), v);
cleanup:
	v->err = err;
	bpf_object__close(obj);
	return err;
}

const char *kernel_release(void)
{
	static struct utsname u;

	if (!u.release[0] && uname(&u))
		return "unknown";
	return u.release;
}

/* The last n lines of a log (a pointer into it). */
static const char *log_tail(const char *log, int n)
{
	const char *p = log + strlen(log);

	while (p > log && p[-1] == '\n')
		p--;
	while (p > log && n > 0) {
		p--;
		if (*p == '\n' && --n == 0)
			return p + 1;
	}
	return log;
}

/* Keep a refused program's whole verifier log in a file: its path in path. */
static int log_save(const char *dir, const char *prog, const char *log, char *path, size_t len)
{
	size_t n = strlen(log);
	int fd, err = 0;

	snprintf(path, len, "%s/vsn-verifier-%s-XXXXXX.log", dir, prog);
	fd = mkstemps(path, 4);
	if (fd < 0)
		return -errno;
	if (write(fd, log, n) != (ssize_t)n)
		err = -EIO;
	close(fd);
	return err;
}

int verif_explain(const struct vsn_prog_desc *d, bool verbose)
{
	const char *dir = getenv("TMPDIR");
	struct vsn_verif v;
	char path[4096];
	char *log;
	int err;

	if (!dir || !*dir)
		dir = "/tmp";
	log = malloc(VERIFY_LOG_FULL);
	if (!log)
		return -ENOMEM;
	err = verif_load_one(d, 1 | 4, log, VERIFY_LOG_FULL, &v);
	if (!err)
		goto cleanup; /* loads alone: not this one */
	if (verbose)
		fputs(log, stderr);
	vsn_err("the kernel (%s) refuses program %s (%s): %s", kernel_release(), d->name, d->what,
		strerror(-err));
	if (v.insns)
		fprintf(stderr, "vsn: the verifier processed %ld instructions (limit %ld)\n",
			v.insns, v.limit);
	fprintf(stderr, "vsn: the verifier's last lines:\n");
	for (const char *l = log_tail(log, VERIFY_TAIL_LINES); *l;) {
		const char *nl = strchr(l, '\n');
		int n = nl ? (int)(nl - l) : (int)strlen(l);

		fprintf(stderr, "    %.*s\n", n, l);
		l += n + (nl ? 1 : 0);
	}
	if (!log_save(dir, d->name, log, path, sizeof(path)))
		fprintf(stderr, "vsn: the whole verifier log is in %s%s\n", path,
			verbose ? "" : " (--verbose prints it here)");
	else
		fprintf(stderr, "vsn: could not save the verifier log under %s\n", dir);
cleanup:
	free(log);
	return err;
}

int verif_explain_obj(struct bpf_object *obj, bool verbose)
{
	struct bpf_program *p;

	bpf_object__for_each_program(p, obj)
	{
		if (!bpf_program__autoload(p))
			continue;
		for (int i = 0; i < VSN_N_PROGS; i++)
			if (!strcmp(vsn_progs[i].name, bpf_program__name(p)) &&
			    verif_explain(&vsn_progs[i], verbose))
				return 1;
	}
	return 0;
}
