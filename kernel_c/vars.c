/* vars.c - the variable store; contracts in vars.h. A linear scan: plugins keep few vars. */
#include "vars.h"

#include <stdlib.h>
#include <string.h>

void vars_init(var_store *s, uint64_t max_bytes) {
    memset(s, 0, sizeof *s);
    s->max_bytes = max_bytes;
}

void vars_clear(var_store *s) {
    for (size_t i = 0; i < s->count; i++) {
        free(s->entries[i].key);
        free(s->entries[i].value);
    }
    free(s->entries);
    uint64_t max_bytes = s->max_bytes;
    vars_init(s, max_bytes);
}

static ptrdiff_t find(const var_store *s, const uint8_t *key, uint64_t key_len) {
    for (size_t i = 0; i < s->count; i++) {
        const kv_entry *e = &s->entries[i];
        if (e->key_len == key_len && (key_len == 0 || memcmp(e->key, key, (size_t)key_len) == 0))
            return (ptrdiff_t)i;
    }
    return -1;
}

const kv_entry *vars_get(const var_store *s, const uint8_t *key, uint64_t key_len) {
    ptrdiff_t i = find(s, key, key_len);
    return i < 0 ? NULL : &s->entries[i];
}

/* What a var counts against the cap. */
static uint64_t cost(const kv_entry *e) { return e->key_len + e->value_len + VAR_ENTRY_OVERHEAD; }

static uint8_t *copy_bytes(const uint8_t *data, uint64_t len) {
    uint8_t *copy = malloc(len ? (size_t)len : 1);
    if (copy != NULL && len) memcpy(copy, data, (size_t)len);
    return copy;
}

var_status vars_set(var_store *s, const uint8_t *key, uint64_t key_len, const uint8_t *value,
                    uint64_t value_len) {
    if (s->max_bytes == 0) return VAR_DISABLED;
    ptrdiff_t i = find(s, key, key_len);
    uint64_t old = i >= 0 ? cost(&s->entries[i]) : 0;
    if (value == NULL) { /* delete */
        if (i >= 0) {
            s->bytes -= old;
            free(s->entries[i].key);
            free(s->entries[i].value);
            s->entries[i] = s->entries[--s->count];
        }
        return VAR_OK;
    }
    /* As the official runtime: what is stored, the old value included, plus the new var. */
    uint64_t remaining = s->bytes < s->max_bytes ? s->max_bytes - s->bytes : 0;
    if (VAR_ENTRY_OVERHEAD > remaining || key_len > remaining - VAR_ENTRY_OVERHEAD ||
        value_len > remaining - VAR_ENTRY_OVERHEAD - key_len)
        return VAR_FULL;
    if (i >= 0 && value_len == s->entries[i].value_len) { /* a counter's new value, mostly: no malloc */
        if (value_len) memcpy(s->entries[i].value, value, (size_t)value_len);
        return VAR_OK; /* the same size: s->bytes unchanged */
    }
    uint8_t *value_copy = copy_bytes(value, value_len);
    if (value_copy == NULL) return VAR_NO_MEMORY;
    if (i >= 0) {
        free(s->entries[i].value);
        s->entries[i].value = value_copy;
        s->entries[i].value_len = value_len;
    } else {
        uint8_t *key_copy = copy_bytes(key, key_len);
        if (key_copy == NULL) { free(value_copy); return VAR_NO_MEMORY; }
        if (s->count == s->capacity) {
            size_t cap = s->capacity ? s->capacity * 2 : 8;
            kv_entry *entries = realloc(s->entries, cap * sizeof *entries);
            if (entries == NULL) { free(key_copy); free(value_copy); return VAR_NO_MEMORY; }
            s->entries = entries;
            s->capacity = cap;
        }
        s->entries[s->count++] = (kv_entry){key_copy, key_len, value_copy, value_len};
    }
    s->bytes = s->bytes - old + VAR_ENTRY_OVERHEAD + key_len + value_len;
    return VAR_OK;
}
