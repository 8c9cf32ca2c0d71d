// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The XDP entry point of the external-frontend path (bpf/lib/flow.h),
 * attached with --xdp to the --devices: new flows and tracked connections
 * arriving from outside are balanced, translated and sent out before the
 * stack builds an skb (native mode). What XDP cannot finish goes up
 * untouched (XDP_PASS) to the tc program on the same device (ctx.h).
 */
#define SL_CTX_XDP
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "flow.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int sl_xdp_ingress(struct xdp_md *ctx)
{
	return sl_flow(ctx, true);
}
