// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Resetting a drained backend's connections at once: a TCP RST built here
 * and sent to the initiator through its VM interface (AF_PACKET), with the
 * sequence number the initiator expects (recorded by the datapath in the
 * fabric-side entry), so that it reconnects now instead of on its next
 * packet (a keep-alive may be seconds away, and a RST answering it can
 * race with its timeout).  The datapath's own RST on the next packet stays
 * as the fallback.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "lib/rst_inject.h"

/* One's complement sum of len bytes, folded. */
static uint32_t csum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (; len > 1; p += 2, len -= 2)
		sum += (uint32_t)p[0] << 8 | p[1];
	if (len)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

static bool is_v4(const struct vsn_addr *a)
{
	return !a->a[0] && !a->a[1] && a->a[2] == htonl(0xffff);
}

/* Ethernet + IP + TCP RST from the volume address to the initiator. */
static size_t build_rst(const struct vsn_conn *fwd, uint32_t seq, uint8_t *f)
{
	struct ethhdr *eth = (struct ethhdr *)f;
	struct tcphdr *th;
	uint32_t sum = 0;
	size_t l3;

	memcpy(eth->h_dest, fwd->vm_mac, ETH_ALEN);
	memcpy(eth->h_source, fwd->gw_mac, ETH_ALEN);
	if (is_v4(&fwd->vip)) {
		struct iphdr *ip = (struct iphdr *)(eth + 1);

		eth->h_proto = htons(ETH_P_IP);
		memset(ip, 0, sizeof(*ip));
		ip->version = 4;
		ip->ihl = 5;
		ip->tot_len = htons(sizeof(*ip) + sizeof(*th));
		ip->frag_off = htons(IP_DF);
		ip->ttl = 64;
		ip->protocol = IPPROTO_TCP;
		ip->saddr = fwd->vip.a[3];
		ip->daddr = fwd->vm_addr.a[3];
		ip->check = csum_fold(csum_add(0, ip, sizeof(*ip)));
		sum = csum_add(sum, &ip->saddr, 8);
		l3 = sizeof(*ip);
	} else {
		struct ip6_hdr *ip6 = (struct ip6_hdr *)(eth + 1);

		eth->h_proto = htons(ETH_P_IPV6);
		memset(ip6, 0, sizeof(*ip6));
		ip6->ip6_flow = htonl(6u << 28);
		ip6->ip6_plen = htons(sizeof(*th));
		ip6->ip6_nxt = IPPROTO_TCP;
		ip6->ip6_hlim = 64;
		memcpy(&ip6->ip6_src, fwd->vip.a, 16);
		memcpy(&ip6->ip6_dst, fwd->vm_addr.a, 16);
		sum = csum_add(sum, &ip6->ip6_src, 32);
		l3 = sizeof(*ip6);
	}
	th = (struct tcphdr *)((uint8_t *)(eth + 1) + l3);
	memset(th, 0, sizeof(*th));
	th->source = fwd->vip_port;
	th->dest = fwd->vm_port;
	th->seq = htonl(seq);
	th->doff = 5;
	th->rst = 1;
	sum += IPPROTO_TCP + sizeof(*th); /* pseudo-header: protocol, length */
	th->check = csum_fold(csum_add(sum, th, sizeof(*th)));
	return sizeof(*eth) + l3 + sizeof(*th);
}

int rst_inject(const struct vsn_conn *fwd, const struct vsn_conn *rev, char *err, size_t len)
{
	struct sockaddr_ll sa = {
	    .sll_family = AF_PACKET,
	    .sll_ifindex = (int)fwd->vm_ifindex,
	    .sll_halen = ETH_ALEN,
	};
	uint8_t frame[sizeof(struct ethhdr) + sizeof(struct ip6_hdr) + sizeof(struct tcphdr)];
	size_t n;
	int fd, ret = 0;

	if ((fwd->flags & VSN_CONN_HOST) || !(rev->flags & VSN_CONN_RCV_NXT)) {
		snprintf(err, len, "no VM interface or no sequence number to reset with");
		return -EINVAL;
	}
	n = build_rst(fwd, rev->rcv_nxt, frame);
	memcpy(sa.sll_addr, fwd->vm_mac, ETH_ALEN);
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, len, "packet socket: %s", strerror(errno));
		return ret;
	}
	if (sendto(fd, frame, n, 0, (struct sockaddr *)&sa, sizeof(sa)) != (ssize_t)n) {
		ret = -errno;
		snprintf(err, len, "send on ifindex %u: %s", fwd->vm_ifindex, strerror(errno));
	}
	close(fd);
	return ret;
}
