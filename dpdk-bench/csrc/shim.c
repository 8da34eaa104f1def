/* SPDX-License-Identifier: Apache-2.0
 *
 * The C side of dpdk-bench: what Rust cannot call directly.
 *
 * - DPDK's fastest lookups (rte_lpm_lookup, rte_lpm_lookup_bulk, rte_lpm_lookupx4, and
 *   rte_hash_crc as the hash function) are static inline functions in the headers: they only
 *   exist where C code includes them.
 * - The configuration structs (rte_lpm_config, rte_lpm6_config, rte_fib6_conf with its
 *   union, rte_hash_parameters) are filled here from the real headers, so their layouts are
 *   never re-declared in Rust.
 * - Each measured loop runs here over the whole key array, so a lookup costs no call across
 *   the language boundary: the loops mirror the Rust ones (chunks of VB_CHUNK keys, every
 *   answer folded into a checksum so that none is optimised away).
 *
 * Every loop writes answers as route or entry indexes, VB_MISS for none, to `out` when it
 * is not NULL (the cross-checks), and returns the checksum.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_fib6.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <rte_lpm.h>
#include <rte_lpm6.h>
#include <rte_malloc.h>

#define VB_MISS UINT32_MAX
/* Keys per bulk call: rte_hash's maximum (RTE_HASH_LOOKUP_BULK_MAX), and what the Rust side
 * hands our lookup_batch/get_batch per call. */
#define VB_CHUNK 64

/* A (VRF, IPv4) key; the same layout as `dpdk::VrfKey` in Rust. */
struct vb_vrf_key {
	uint32_t ip;
	uint32_t vrf;
};

int vb_errno(void)
{
	return rte_errno;
}

/* Bytes allocated on the DPDK heaps of every socket: a table's memory is the difference
 * before and after its creation and filling. */
size_t vb_heap_allocated(void)
{
	size_t total = 0;
	for (int s = 0; s < RTE_MAX_NUMA_NODES; s++) {
		struct rte_malloc_socket_stats st;
		if (rte_malloc_get_socket_stats(s, &st) == 0)
			total += st.heap_allocsz_bytes;
	}
	return total;
}

/* ---- rte_lpm (IPv4, DIR-24-8) ---- */

struct rte_lpm *vb_lpm_create(const char *name, uint32_t max_rules, uint32_t tbl8s)
{
	struct rte_lpm_config c = {
		.max_rules = max_rules,
		.number_tbl8s = tbl8s,
		.flags = 0,
	};
	return rte_lpm_create(name, SOCKET_ID_ANY, &c);
}

static inline uint32_t vb_lpm_answer(uint32_t entry)
{
	return (entry & RTE_LPM_LOOKUP_SUCCESS) ? (entry & 0x00ffffff) : VB_MISS;
}

/* rte_lpm_lookup, one key at a time. */
uint64_t vb_lpm_single(const struct rte_lpm *lpm, const uint32_t *ips, uint32_t n,
		       uint32_t *out)
{
	uint64_t sum = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t nh;
		uint32_t a = rte_lpm_lookup(lpm, ips[i], &nh) == 0 ? nh : VB_MISS;
		sum += a;
		if (out)
			out[i] = a;
	}
	return sum;
}

/* rte_lpm_lookup_bulk, VB_CHUNK keys per call (a compile-time count, as its doc asks). */
uint64_t vb_lpm_bulk(const struct rte_lpm *lpm, const uint32_t *ips, uint32_t n, uint32_t *out)
{
	uint64_t sum = 0;
	uint32_t hops[VB_CHUNK];
	uint32_t i = 0;
	for (; i + VB_CHUNK <= n; i += VB_CHUNK) {
		rte_lpm_lookup_bulk(lpm, ips + i, hops, VB_CHUNK);
		for (uint32_t j = 0; j < VB_CHUNK; j++) {
			uint32_t a = vb_lpm_answer(hops[j]);
			sum += a;
			if (out)
				out[i + j] = a;
		}
	}
	if (i < n) {
		rte_lpm_lookup_bulk(lpm, ips + i, hops, n - i);
		for (uint32_t j = 0; j < n - i; j++) {
			uint32_t a = vb_lpm_answer(hops[j]);
			sum += a;
			if (out)
				out[i + j] = a;
		}
	}
	return sum;
}

/* rte_lpm_lookupx4 (SSE), four keys per call; the tail one at a time. */
uint64_t vb_lpm_x4(const struct rte_lpm *lpm, const uint32_t *ips, uint32_t n, uint32_t *out)
{
	uint64_t sum = 0;
	uint32_t i = 0;
	for (; i + 4 <= n; i += 4) {
		uint32_t hop[4];
		xmm_t v = _mm_loadu_si128((const __m128i *)(ips + i));
		rte_lpm_lookupx4(lpm, v, hop, VB_MISS);
		for (int j = 0; j < 4; j++) {
			sum += hop[j];
			if (out)
				out[i + j] = hop[j];
		}
	}
	return sum + vb_lpm_single(lpm, ips + i, n - i, out ? out + i : NULL);
}

/* One rte_lpm per VRF: rte_lpm_lookup in the key's table (bulk calls need one table). */
uint64_t vb_lpm_vrf_single(struct rte_lpm *const *lpms, const struct vb_vrf_key *keys,
			   uint32_t n, uint32_t *out)
{
	uint64_t sum = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t nh;
		uint32_t a = rte_lpm_lookup(lpms[keys[i].vrf], keys[i].ip, &nh) == 0 ? nh : VB_MISS;
		sum += a;
		if (out)
			out[i] = a;
	}
	return sum;
}

/* ---- rte_lpm6 ---- */

struct rte_lpm6 *vb_lpm6_create(const char *name, uint32_t max_rules, uint32_t tbl8s)
{
	struct rte_lpm6_config c = {
		.max_rules = max_rules,
		.number_tbl8s = tbl8s,
		.flags = 0,
	};
	return rte_lpm6_create(name, SOCKET_ID_ANY, &c);
}

uint64_t vb_lpm6_single(const struct rte_lpm6 *lpm, const uint8_t (*ips)[16], uint32_t n,
			uint32_t *out)
{
	uint64_t sum = 0;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t nh;
		uint32_t a = rte_lpm6_lookup(lpm, ips[i], &nh) == 0 ? nh : VB_MISS;
		sum += a;
		if (out)
			out[i] = a;
	}
	return sum;
}

uint64_t vb_lpm6_bulk(const struct rte_lpm6 *lpm, const uint8_t (*ips)[16], uint32_t n,
		      uint32_t *out)
{
	uint64_t sum = 0;
	int32_t hops[VB_CHUNK];
	for (uint32_t i = 0; i < n; i += VB_CHUNK) {
		uint32_t m = RTE_MIN((uint32_t)VB_CHUNK, n - i);
		/* The API takes the keys as non-const; it only reads them. */
		rte_lpm6_lookup_bulk_func(lpm, (uint8_t(*)[16])ips[i], hops, m);
		for (uint32_t j = 0; j < m; j++) {
			uint32_t a = hops[j] < 0 ? VB_MISS : (uint32_t)hops[j];
			sum += a;
			if (out)
				out[i + j] = a;
		}
	}
	return sum;
}

/* ---- rte_fib6 (TRIE) ---- */

/* Next hops of 4 bytes: route indexes of up to 31 bits (the trie keeps one bit as a flag),
 * enough for ~2M routes; 2 bytes would hold only 32,767. The default next hop, answered when
 * no route matches, is the largest one, which no route uses. */
#define VB_FIB6_DEFAULT ((UINT64_C(1) << 31) - 1)

struct rte_fib6 *vb_fib6_create(const char *name, uint32_t max_routes, uint32_t tbl8s)
{
	struct rte_fib6_conf c;
	memset(&c, 0, sizeof(c));
	c.type = RTE_FIB6_TRIE;
	c.default_nh = VB_FIB6_DEFAULT;
	c.max_routes = (int)max_routes;
	c.rib_ext_sz = 0;
	c.trie.nh_sz = RTE_FIB6_TRIE_4B;
	c.trie.num_tbl8 = tbl8s;
	return rte_fib6_create(name, SOCKET_ID_ANY, &c);
}

/* vector: 0 scalar, 1 AVX-512 (needs EAL's --force-max-simd-bitwidth=512 and the CPU). */
int vb_fib6_select(struct rte_fib6 *fib, int vector)
{
	return rte_fib6_select_lookup(fib, vector ? RTE_FIB6_LOOKUP_TRIE_VECTOR_AVX512 :
						    RTE_FIB6_LOOKUP_TRIE_SCALAR);
}

uint64_t vb_fib6_bulk(struct rte_fib6 *fib, const uint8_t (*ips)[16], uint32_t n, uint32_t *out)
{
	uint64_t sum = 0;
	uint64_t hops[VB_CHUNK];
	for (uint32_t i = 0; i < n; i += VB_CHUNK) {
		uint32_t m = RTE_MIN((uint32_t)VB_CHUNK, n - i);
		rte_fib6_lookup_bulk(fib, (uint8_t(*)[16])ips[i], hops, (int)m);
		for (uint32_t j = 0; j < m; j++) {
			uint32_t a = hops[j] == VB_FIB6_DEFAULT ? VB_MISS : (uint32_t)hops[j];
			sum += a;
			if (out)
				out[i + j] = a;
		}
	}
	return sum;
}

/* ---- rte_hash ---- */

/* rte_hash_crc (SSE4.2 crc32) as the table's hash: the fastest DPDK offers for 8-byte
 * keys. It is static inline, so the table needs this function to point at. */
static uint32_t vb_crc(const void *key, uint32_t len, uint32_t init)
{
	return rte_hash_crc(key, len, init);
}

/* A table of `entries` 8-byte keys, no extra flags (single writer, no extendable buckets:
 * the classic cuckoo table). */
struct rte_hash *vb_hash_create(const char *name, uint32_t entries)
{
	struct rte_hash_parameters p;
	memset(&p, 0, sizeof(p));
	p.name = name;
	p.entries = entries;
	p.key_len = sizeof(uint64_t);
	p.hash_func = vb_crc;
	p.hash_func_init_val = 0;
	p.socket_id = SOCKET_ID_ANY;
	p.extra_flag = 0;
	return rte_hash_create(&p);
}

/* Entries carry their index as the data pointer's value. */
int vb_hash_add(const struct rte_hash *h, uint64_t key, uint32_t index)
{
	return rte_hash_add_key_data(h, &key, (void *)(uintptr_t)index);
}

uint64_t vb_hash_single(const struct rte_hash *h, const uint64_t *keys, uint32_t n,
			uint32_t *out)
{
	uint64_t sum = 0;
	for (uint32_t i = 0; i < n; i++) {
		void *d;
		uint32_t a = rte_hash_lookup_data(h, &keys[i], &d) >= 0 ? (uint32_t)(uintptr_t)d :
									VB_MISS;
		sum += a;
		if (out)
			out[i] = a;
	}
	return sum;
}

/* rte_hash_lookup_bulk_data, VB_CHUNK keys per call; the API takes an array of key
 * pointers, so building it is part of the cost. */
uint64_t vb_hash_bulk(const struct rte_hash *h, const uint64_t *keys, uint32_t n, uint32_t *out)
{
	uint64_t sum = 0;
	const void *kp[VB_CHUNK];
	void *data[VB_CHUNK];
	for (uint32_t i = 0; i < n; i += VB_CHUNK) {
		uint32_t m = RTE_MIN((uint32_t)VB_CHUNK, n - i);
		uint64_t hits = 0;
		for (uint32_t j = 0; j < m; j++)
			kp[j] = &keys[i + j];
		rte_hash_lookup_bulk_data(h, kp, m, &hits, data);
		for (uint32_t j = 0; j < m; j++) {
			uint32_t a = (hits >> j) & 1 ? (uint32_t)(uintptr_t)data[j] : VB_MISS;
			sum += a;
			if (out)
				out[i + j] = a;
		}
	}
	return sum;
}
