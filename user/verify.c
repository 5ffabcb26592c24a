// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The verifier as a budget: load each datapath program alone, with the
 * verifier's statistics, and report what it cost (processed instructions,
 * states, stack, program size).  `vsn verify` prints the table and fails
 * when a program is over budget; `vsn attach` uses the same loader to name
 * the program the kernel refused and keep its whole log in a file.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "vsn.h"
#include "vsn_tc.skel.h"
#include "vsn_xdp.skel.h"

/* The kernel's limit on processed instructions (BPF_COMPLEXITY_LIMIT_INSNS),
 * and vsn's budget: a quarter of it, on every kernel vsn supports. */
#define VERIFIER_LIMIT	   1000000
#define VERIFY_BUDGET	   (VERIFIER_LIMIT / 4)
/* A failing program's level-1 log: the kernel keeps its tail (6.4+) or its
 * head (older) when it is longer. */
#define VERIFY_LOG_FULL	   (64u << 20)
#define VERIFY_LOG_STATS   (1u << 20)
#define VERIFY_TAIL_LINES  8

const struct vsn_prog_desc vsn_progs[VSN_N_PROGS] = {
    [VSN_PROG_VM_INGRESS] = {"vsn_vm_ingress", "tc", "TC ingress of VM interfaces"},
    [VSN_PROG_UP_EGRESS] = {"vsn_up_egress", "tc", "TC egress of uplinks, host flows"},
    [VSN_PROG_XDP] = {"vsn_up_xdp", "xdp", "XDP on uplinks, replies"},
    [VSN_PROG_UP_INGRESS] = {"vsn_up_ingress", "tc", "TC ingress of uplinks, --xdp-mode tc"},
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
		sscanf(s, "processed %ld insns (limit %ld) max_states_per_insn %ld "
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

	bpf_object__for_each_map(m, obj) {
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
	bpf_object__for_each_program(p, obj) {
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

	bpf_object__for_each_program(p, obj) {
		if (!bpf_program__autoload(p))
			continue;
		for (int i = 0; i < VSN_N_PROGS; i++)
			if (!strcmp(vsn_progs[i].name, bpf_program__name(p)) &&
			    verif_explain(&vsn_progs[i], verbose))
				return 1;
	}
	return 0;
}

static void verify_usage(FILE *f)
{
	fprintf(f,
		"usage: vsn [-j] verify [--budget N] [--prog NAME] [--kernel LABEL]\n"
		"\n"
		"Load each datapath program alone on this kernel, with the verifier's\n"
		"statistics, and print what it cost: processed instructions (the kernel's\n"
		"limit is %d), the most states kept per instruction, the peak number of\n"
		"states, each function's stack, and the program's size translated and\n"
		"JIT-compiled.  Nothing is attached or pinned.  Exits 1, naming the\n"
		"program and the kernel, when one is refused or over budget.\n"
		"\n"
		"  --budget N      processed instructions allowed per program (default %d,\n"
		"                  a quarter of the verifier's limit)\n"
		"  --prog NAME     only this program (repeatable)\n"
		"  --kernel LABEL  how to name this kernel in the output (default: uname -r)\n",
		VERIFIER_LIMIT, VERIFY_BUDGET);
}

static void print_json(const struct vsn_verif *v, int n, const char *kernel, long budget)
{
	printf("{\"kernel\":\"%s\",\"budget\":%ld,\"limit\":%d,\"programs\":[", kernel, budget,
	       VERIFIER_LIMIT);
	for (int i = 0; i < n; i++)
		printf("%s{\"program\":\"%s\",\"object\":\"%s\",\"loaded\":%s,\"error\":\"%s\","
		       "\"insns\":%ld,\"max_states_per_insn\":%ld,\"total_states\":%ld,"
		       "\"peak_states\":%ld,\"stack\":\"%s\",\"stack_max\":%ld,"
		       "\"xlated\":%u,\"jited\":%u,\"time_us\":%ld,\"within_budget\":%s}",
		       i ? "," : "", v[i].desc->name, v[i].desc->object, v[i].err ? "false" : "true",
		       v[i].err ? strerror(-v[i].err) : "", v[i].insns, v[i].max_states_per_insn,
		       v[i].total_states, v[i].peak_states, v[i].stack, v[i].stack_max, v[i].xlated,
		       v[i].jited, v[i].time_us,
		       !v[i].err && v[i].insns <= budget ? "true" : "false");
	printf("]}\n");
}

static void print_table(const struct vsn_verif *v, int n, const char *kernel, long budget)
{
	printf("kernel %s: verifier budget %ld processed instructions per program "
	       "(limit %d)\n\n",
	       kernel, budget, VERIFIER_LIMIT);
	printf("%-15s %9s %6s %7s %6s %-16s %7s %7s %s\n", "program", "insns", "budget",
	       "states", "peak", "stack (bytes)", "xlated", "jited", "");
	for (int i = 0; i < n; i++) {
		const char *verdict = v[i].err	       ? "REFUSED"
				      : v[i].insns > budget ? "OVER BUDGET"
							    : "ok";

		printf("%-15s %9ld %5.1f%% %7ld %6ld %-16s %7u %7u %s\n", v[i].desc->name,
		       v[i].insns, 100.0 * v[i].insns / budget, v[i].max_states_per_insn,
		       v[i].peak_states, v[i].stack, v[i].xlated, v[i].jited, verdict);
	}
	printf("\nstates: the most verifier states kept for one instruction; peak: the most\n"
	       "kept at once; stack: each function's frame, as the kernel prints it\n");
}

int cmd_verify(const struct vsn_opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"budget", required_argument, NULL, 'b'},
	    {"prog", required_argument, NULL, 'p'},
	    {"kernel", required_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct vsn_verif res[VSN_N_PROGS];
	const char *only[VSN_N_PROGS], *kernel = kernel_release();
	int n_only = 0, n = 0, bad = 0, c, i;
	long budget = VERIFY_BUDGET;
	char *log = NULL, *end;

	optind = 1;
	while ((c = getopt_long(argc, argv, "b:p:k:h", lo, NULL)) != -1) {
		switch (c) {
		case 'b':
			errno = 0;
			budget = strtol(optarg, &end, 10);
			if (errno || *end || budget <= 0 || budget > VERIFIER_LIMIT) {
				vsn_err("--budget: '%s' is not a number from 1 to %d", optarg,
					VERIFIER_LIMIT);
				return 2;
			}
			break;
		case 'p':
			if (n_only == VSN_N_PROGS) {
				vsn_err("--prog: at most %d programs", VSN_N_PROGS);
				return 2;
			}
			only[n_only++] = optarg;
			break;
		case 'k':
			kernel = optarg;
			break;
		case 'h':
			verify_usage(stdout);
			return 0;
		default:
			verify_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		vsn_err("verify: unexpected argument '%s'", argv[optind]);
		return 2;
	}
	for (i = 0; i < n_only; i++) {
		int k;

		for (k = 0; k < VSN_N_PROGS && strcmp(only[i], vsn_progs[k].name); k++)
			;
		if (k == VSN_N_PROGS) {
			vsn_err("--prog: no program '%s' (vsn_vm_ingress, vsn_up_egress, "
				"vsn_up_xdp, vsn_up_ingress)",
				only[i]);
			return 2;
		}
	}
	libbpf_set_print(NULL);
	log = malloc(VERIFY_LOG_STATS);
	if (!log)
		return 1;
	for (i = 0; i < VSN_N_PROGS; i++) {
		const struct vsn_prog_desc *d = &vsn_progs[i];
		bool want = !n_only;

		for (int k = 0; k < n_only; k++)
			want = want || !strcmp(only[k], d->name);
		if (!want)
			continue;
		if (!o->json)
			fprintf(stderr, "verifying %s ...\n", d->name);
		verif_load_one(d, 4, log, VERIFY_LOG_STATS, &res[n]);
		n++;
	}
	free(log);
	if (o->json)
		print_json(res, n, kernel, budget);
	else
		print_table(res, n, kernel, budget);
	for (i = 0; i < n; i++) {
		if (res[i].err) {
			verif_explain(res[i].desc, o->verbose);
			bad++;
		} else if (res[i].insns > budget) {
			vsn_err("%s is over budget on kernel %s: %ld processed instructions, "
				"budget %ld",
				res[i].desc->name, kernel, res[i].insns, budget);
			bad++;
		}
	}
	return bad ? 1 : 0;
}
