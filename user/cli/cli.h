/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The vsn command's families: main.c dispatches to these. */
#ifndef VSN_CLI_H
#define VSN_CLI_H

#include "lib/vsn.h"

/* Subcommands: each returns the process exit status. */
int cmd_attach(const struct vsn_opts *o, int argc, char **argv);
int cmd_detach(const struct vsn_opts *o, int argc, char **argv);
int cmd_status(const struct vsn_opts *o, int argc, char **argv);
int cmd_apply(const struct vsn_opts *o, int argc, char **argv);
int cmd_show(const struct vsn_opts *o, int argc, char **argv);
int cmd_route(const struct vsn_opts *o, int argc, char **argv);
int cmd_backend(const struct vsn_opts *o, int argc, char **argv);
int cmd_events(const struct vsn_opts *o, int argc, char **argv);
int cmd_telemetry(const struct vsn_opts *o, int argc, char **argv);
int cmd_profile(const struct vsn_opts *o, int argc, char **argv);
int cmd_top(const struct vsn_opts *o, int argc, char **argv);
int cmd_health(const struct vsn_opts *o, int argc, char **argv);
int cmd_daemon(const struct vsn_opts *o, int argc, char **argv);
int cmd_bw(const struct vsn_opts *o, int argc, char **argv);
int cmd_verify(const struct vsn_opts *o, int argc, char **argv);
int cmd_cluster(const struct vsn_opts *o, int argc, char **argv);
/* Any of argv[1..] is -h or --help: a command's help works anywhere, before
 * anything is opened (no root, no attach, no daemon needed). */
bool cli_help_asked(int argc, char **argv);
int show_telemetry(const struct vsn_opts *o, const struct vsn_maps *m);
/* Paths' and backends' health as the running daemon judges it. */
int show_health(const struct vsn_opts *o);

#endif /* VSN_CLI_H */
