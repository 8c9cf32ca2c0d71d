// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The tc entry points of the external-frontend path (bpf/lib/flow.h), on
 * the clsact hooks of the node's devices: ingress for every packet that
 * arrives (and what XDP left to tc), egress for replies of connections
 * that did not come in through an attached device.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "flow.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ifindex -> device the agent attached to; written by the agent only (cleanup, sluicectl). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct sl_tc_device);
	__uint(max_entries, SL_MAX_NODE_ADDRS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} tc_devices SEC(".maps");

/* Every packet arriving on a device: new flows, both directions of tracked ones. */
SEC("tc")
int sl_tc_ingress(struct __sk_buff *skb)
{
	return sl_flow(skb, true);
}

/*
 * Every packet leaving a device: replies of tracked connections that did
 * not come in through an attached device (a backend on this node, or
 * behind a device the agent did not attach to) are translated here.
 */
SEC("tc")
int sl_tc_egress(struct __sk_buff *skb)
{
	return sl_flow(skb, false);
}
