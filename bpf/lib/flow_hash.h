/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The hash of a flow's 5-tuple that Maglev tables are indexed with,
 * shared by the tc program and the agent's tests. Seeded with a constant,
 * never skb->hash (its seed is per boot): two nodes, or one rebooted,
 * must hash a flow alike. Words are assembled byte by byte (little-endian
 * order), so hosts of either byte order agree.
 */
#ifndef SLUICE_FLOW_HASH_H
#define SLUICE_FLOW_HASH_H

#define SL_FLOW_HASH_SEED 0x51ce5eedu

static __always_inline __u32 sl_rotl32(__u32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

/* One step of murmur3's 32-bit body. */
static __always_inline __u32 sl_hash_step(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51u;
	k = sl_rotl32(k, 15);
	k *= 0x1b873593u;
	h ^= k;
	h = sl_rotl32(h, 13);
	return h * 5 + 0xe6546b64u;
}

/* Four bytes as a little-endian word, without a stack copy. */
static __always_inline __u32 sl_le32(const __u8 *p)
{
	return (__u32)p[0] | (__u32)p[1] << 8 | (__u32)p[2] << 16 | (__u32)p[3] << 24;
}

/*
 * saddr, daddr (16 bytes each, IPv4 in the first 4, the rest zero), sport
 * and dport in network order, proto and family (SL_AF_*).
 */
static __always_inline __u32 sl_flow_hash(const __u8 saddr[16], const __u8 daddr[16], __u16 sport,
					  __u16 dport, __u8 proto, __u8 family)
{
	__u32 h = SL_FLOW_HASH_SEED;
	int i;

	for (i = 0; i < 16; i += 4) {
		h = sl_hash_step(h, sl_le32(saddr + i));
		h = sl_hash_step(h, sl_le32(daddr + i));
	}
	h = sl_hash_step(h, (__u32)sport << 16 | dport);
	h = sl_hash_step(h, (__u32)proto << 8 | family);
	/* murmur3's finalizer */
	h ^= 40;
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

#endif
