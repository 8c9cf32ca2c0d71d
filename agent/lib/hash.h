/* SPDX-License-Identifier: Apache-2.0 */
/* A fast 64-bit hash of bytes under a key drawn once per process (fingerprints). */
#ifndef SLUICE_HASH_H
#define SLUICE_HASH_H

#include <stddef.h>
#include <stdint.h>

/*
 * Never 0, so that 0 can mean "no fingerprint". Keyed per process: inputs
 * chosen to collide cannot be prepared from outside.
 */
uint64_t hash64(const void *data, size_t len);

#endif
