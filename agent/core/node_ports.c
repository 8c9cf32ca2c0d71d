// SPDX-License-Identifier: Apache-2.0
/*
 * --nodeport-addresses: parsing the flag, and the addresses it gives for
 * the node as it is now (kube-proxy's NewNodePortAddresses and its
 * "primary", pkg/proxy/util/nodeport_addresses.go and cmd/kube-proxy).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/node_ports.h"
#include "lib/xalloc.h"

int node_port_spec_parse(const char *text, struct node_port_spec *out, char *why, size_t len)
{
	char *copy, *tok, *save = NULL;
	size_t n = 1;

	memset(out, 0, sizeof(*out));
	if (!text || !*text) {
		snprintf(why, len, "empty; give \"primary\" or a list of CIDRs");
		return -EINVAL;
	}
	if (!strcmp(text, "primary")) {
		out->primary = true;
		return 0;
	}
	for (const char *p = text; *p; p++)
		n += *p == ',';
	out->cidrs = xcalloc(n, sizeof(*out->cidrs));
	copy = xstrdup(text);
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "primary")) {
			snprintf(why, len, "\"primary\" stands alone, not in a list of CIDRs");
			goto fail;
		}
		if (!strchr(tok, '/') || !cidr_parse(tok, &out->cidrs[out->n_cidrs])) {
			snprintf(why, len, "\"%.64s\" is not a CIDR (ADDRESS/LENGTH)", tok);
			goto fail;
		}
		out->n_cidrs++;
	}
	free(copy);
	if (!out->n_cidrs) {
		snprintf(why, len, "no CIDR in \"%.64s\"", text);
		node_port_spec_clear(out);
		return -EINVAL;
	}
	return 0;
fail:
	free(copy);
	node_port_spec_clear(out);
	return -EINVAL;
}

void node_port_spec_clear(struct node_port_spec *spec)
{
	free(spec->cidrs);
	memset(spec, 0, sizeof(*spec));
}

/* The node's first address of family: its primary one, InternalIPs coming first. */
static const struct ip_addr *primary_address(const struct node *node, int family)
{
	for (int i = 0; node && i < node->n_addresses; i++) {
		if (node->addresses[i].family == family)
			return &node->addresses[i];
	}
	return NULL;
}

void node_port_addrs_compute(const struct node_port_spec *spec, const struct node *node,
			     struct node_port_addrs *out)
{
	static const int families[2] = { AF_INET, AF_INET6 };

	memset(out, 0, sizeof(*out));
	out->cidrs = xcalloc(spec->n_cidrs + 2, sizeof(*out->cidrs));
	for (int f = 0; f < 2; f++) {
		size_t before = out->n_cidrs;

		if (spec->primary) {
			const struct ip_addr *ip = primary_address(node, families[f]);

			if (ip) {
				out->cidrs[out->n_cidrs].addr = *ip;
				out->cidrs[out->n_cidrs++].prefix_len = f ? 128 : 32;
			}
		}
		for (size_t i = 0; i < spec->n_cidrs; i++) {
			if (spec->cidrs[i].addr.family == families[f])
				out->cidrs[out->n_cidrs++] = spec->cidrs[i];
		}
		/* Nothing of this family said: all of it, as kube-proxy's 0.0.0.0/0 or ::/0. */
		if (out->n_cidrs == before) {
			if (f)
				out->all_v6 = true;
			else
				out->all_v4 = true;
		}
	}
}

static bool cidr_contains(const struct cidr *c, const struct ip_addr *addr)
{
	unsigned int full = c->prefix_len / 8, rest = c->prefix_len % 8;

	if (c->addr.family != addr->family)
		return false;
	if (memcmp(c->addr.bytes, addr->bytes, full))
		return false;
	return !rest || !((c->addr.bytes[full] ^ addr->bytes[full]) & (0xff00u >> rest));
}

bool node_port_addrs_match(const struct node_port_addrs *np, const struct ip_addr *addr)
{
	if (addr->family == AF_INET ? np->all_v4 : np->all_v6)
		return true;
	for (size_t i = 0; i < np->n_cidrs; i++) {
		if (cidr_contains(&np->cidrs[i], addr))
			return true;
	}
	return false;
}

bool node_port_addrs_equal(const struct node_port_addrs *a, const struct node_port_addrs *b)
{
	if (a->all_v4 != b->all_v4 || a->all_v6 != b->all_v6 || a->n_cidrs != b->n_cidrs)
		return false;
	for (size_t i = 0; i < a->n_cidrs; i++) {
		if (!ip_addr_equal(&a->cidrs[i].addr, &b->cidrs[i].addr) ||
		    a->cidrs[i].prefix_len != b->cidrs[i].prefix_len)
			return false;
	}
	return true;
}

const char *node_port_addrs_text(const struct node_port_addrs *np, char *buf, size_t len)
{
	char addr[IP_ADDR_STRLEN];
	size_t used = 0;

	buf[0] = '\0';
	if (np->all_v4 && np->all_v6)
		return snprintf(buf, len, "all"), buf;
	for (size_t i = 0; i < np->n_cidrs && used < len; i++)
		used += snprintf(buf + used, len - used, "%s%s/%u", used ? "," : "",
				 ip_addr_format(&np->cidrs[i].addr, addr), np->cidrs[i].prefix_len);
	if (np->all_v4 && used < len)
		snprintf(buf + used, len - used, "%sall IPv4", used ? "," : "");
	if (np->all_v6 && used < len)
		snprintf(buf + used, len - used, "%sall IPv6", used ? "," : "");
	return buf;
}

void node_port_addrs_copy(struct node_port_addrs *dst, const struct node_port_addrs *src)
{
	node_port_addrs_clear(dst);
	*dst = *src;
	dst->cidrs = xcalloc(src->n_cidrs + 1, sizeof(*dst->cidrs));
	memcpy(dst->cidrs, src->cidrs, src->n_cidrs * sizeof(*dst->cidrs));
}

void node_port_addrs_clear(struct node_port_addrs *np)
{
	free(np->cidrs);
	memset(np, 0, sizeof(*np));
}
