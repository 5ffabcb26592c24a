/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Constants that vmlinux.h does not carry (they are #defines in uapi). */
#ifndef VSN_DEFS_H
#define VSN_DEFS_H

#define ETH_P_IP	0x0800
#define ETH_P_IPV6	0x86DD
#define ETH_P_8021Q	0x8100
#define ETH_P_8021AD	0x88A8
#define TC_ACT_OK	0
#define TC_ACT_SHOT	2
#define TC_ACT_REDIRECT 7
#define AF_INET		2
#define AF_INET6	10

#endif /* VSN_DEFS_H */
