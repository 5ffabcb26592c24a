// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * vsn verify: every datapath program loaded alone on this kernel
 * (lib/verifier.c), its verifier cost against the budget, as a table or
 * JSON; fails when one is refused or over budget.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "cli/cli.h"
#include "lib/verifier.h"

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
		       i ? "," : "", v[i].desc->name, v[i].desc->object,
		       v[i].err ? "false" : "true", v[i].err ? strerror(-v[i].err) : "", v[i].insns,
		       v[i].max_states_per_insn, v[i].total_states, v[i].peak_states, v[i].stack,
		       v[i].stack_max, v[i].xlated, v[i].jited, v[i].time_us,
		       !v[i].err && v[i].insns <= budget ? "true" : "false");
	printf("]}\n");
}

static void print_table(const struct vsn_verif *v, int n, const char *kernel, long budget)
{
	printf("kernel %s: verifier budget %ld processed instructions per program "
	       "(limit %d)\n\n",
	       kernel, budget, VERIFIER_LIMIT);
	printf("%-15s %9s %6s %7s %6s %-16s %7s %7s %s\n", "program", "insns", "budget", "states",
	       "peak", "stack (bytes)", "xlated", "jited", "");
	for (int i = 0; i < n; i++) {
		const char *verdict = v[i].err		    ? "REFUSED"
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
				"vsn_up_xdp, vsn_up_ingress, vsn_up_xfer)",
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
