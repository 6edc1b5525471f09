/*
 * sha256.h - SHA-256 (FIPS 180-4) of a byte string, for the compile cache's keys and checksums
 * (extism_fast/runtime/compile_cache.py): names, engine fingerprints and small modules are hashed
 * here, in the extension that is loaded already, where CPython's own sha256 is a module a fresh
 * process would load for them (~0.3 ms) and hashlib's OpenSSL ~3 ms.
 *
 * Owns: nothing (a pure function over the caller's bytes).
 */
#ifndef EXTISM_FAST_SHA256_H
#define EXTISM_FAST_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_BYTES 32

/* sha256_digest: the SHA-256 digest of the `length` bytes at `data` (NULL allowed when length is 0)
 * into `out` (SHA256_DIGEST_BYTES bytes). Any length; reads nothing past data + length. */
void sha256_digest(const uint8_t *data, size_t length, uint8_t out[SHA256_DIGEST_BYTES]);

#endif
