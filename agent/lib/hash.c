// SPDX-License-Identifier: Apache-2.0
/*
 * A fast keyed 64-bit hash for fingerprints of raw bytes (a manifest item
 * as read): 16 bytes per step through a 64x64->128 multiply, folded, so it
 * runs at memory speed; keyed per process from getrandom().
 */
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#include "lib/hash.h"

static uint64_t key[3];
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void key_seed(void)
{
	if (getrandom(key, sizeof(key), GRND_NONBLOCK) != sizeof(key)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		key[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid();
		key[1] = (uint64_t)ts.tv_sec * 0xbf58476d1ce4e5b9ULL ^ (uintptr_t)&ts;
		key[2] = key[0] * 0x94d049bb133111ebULL + key[1];
	}
	/* Odd multipliers: a zero key would fold every block to nothing. */
	key[0] |= 1;
	key[1] |= 1;
}

static inline uint64_t fold(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t load64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

uint64_t hash64(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h, a = 0, b = 0;
	size_t n = len;

	pthread_once(&key_once, key_seed);
	h = fold(key[2] ^ len, key[0]);
	for (; n >= 16; n -= 16, p += 16)
		h ^= fold(load64(p) ^ key[0], load64(p + 8) ^ h ^ key[1]);
	if (n >= 8) {
		a = load64(p);
		memcpy(&b, p + 8, n - 8);
	} else {
		memcpy(&a, p, n);
	}
	h ^= fold(a ^ key[0], b ^ h ^ key[1] ^ n);
	h = fold(h ^ key[2], key[1]);
	return h ? h : 1;
}
