/*
 * vars.h - the per-instance variable store behind var_get / var_set (docs/ABI.md, "Host functions").
 *
 * Keys and values are byte strings. The store's size is capped as the official runtime counts it
 * (`var_set` in its pdk.rs): each var costs its key and value lengths plus VAR_ENTRY_OVERHEAD, and a
 * set is refused when the vars stored (the key's old value included) plus the new one would pass
 * the cap. A cap of 0 disables vars. Variables survive between calls of one plugin instance.
 *
 * Owns: var_store (its entries, copies of keys and values) and its size accounting.
 */
#ifndef EXTISM_FAST_VARS_H
#define EXTISM_FAST_VARS_H

#include <stddef.h>
#include <stdint.h>

/* A key and its value, both byte strings (vars here, config entries in instance.h). */
typedef struct kv_entry {
    uint8_t *key;
    uint64_t key_len;
    uint8_t *value;
    uint64_t value_len;
} kv_entry;

/* Bytes each var costs besides its key and value: the official runtime's
 * size_of::<String>() + size_of::<Vec<u8>>() on 64-bit hosts. */
#define VAR_ENTRY_OVERHEAD UINT64_C(48)

typedef struct var_store {
    kv_entry *entries;
    size_t count;
    size_t capacity;
    uint64_t bytes;     /* sum of key_len + value_len + VAR_ENTRY_OVERHEAD over entries */
    uint64_t max_bytes; /* cap; 0 disables vars */
} var_store;

typedef enum var_status { VAR_OK = 0, VAR_DISABLED = 1, VAR_FULL = 2, VAR_NO_MEMORY = 3 } var_status;

/* vars_init: an empty store with the given cap. */
void vars_init(var_store *s, uint64_t max_bytes);

/* vars_clear: free every entry and the array; the store stays usable (empty). */
void vars_clear(var_store *s);

/* vars_get: the entry for key, or NULL. The pointers stay valid until the next vars_set. */
const kv_entry *vars_get(const var_store *s, const uint8_t *key, uint64_t key_len);

/* vars_set: copy value under key (value == NULL deletes). Fails without changing the store when
 * vars are disabled (VAR_DISABLED, deleting included, as the official runtime), when the vars
 * stored plus the new one would exceed the cap (VAR_FULL: the key's old value still counts), or
 * when the host is out of memory (VAR_NO_MEMORY). Deleting is never over the cap. */
var_status vars_set(var_store *s, const uint8_t *key, uint64_t key_len, const uint8_t *value,
                    uint64_t value_len);

#endif
