/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* A TCP RST to a VM-direct initiator, sent by the controller (rst_inject.c). */
#ifndef VSN_RST_INJECT_H
#define VSN_RST_INJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "vsn_types.h"

/* fwd: the VM-side entry; rev: its fabric-side entry (rcv_nxt).  0 or
 * -errno with err filled. */
int rst_inject(const struct vsn_conn *fwd, const struct vsn_conn *rev, char *err, size_t len);

#endif /* VSN_RST_INJECT_H */
