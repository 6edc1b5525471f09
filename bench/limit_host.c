/*
 * limit_host.c - the bench's "limit": the plainest C host of an Extism plugin on the same wasmtime
 * library as extism_fast, with a minimal kernel, timing small calls (bench/limit_host.py builds
 * and runs it).
 *
 *     limit_host LIBWASMTIME PLUGIN.wasm FUNCTION INPUT CONFIG_KEY CONFIG_VALUE EPOCH ACCESSORS CALLS REPEATS
 *
 * Prints one JSON line: {"ns_per_call": best of REPEATS loops of CALLS calls, "output": the
 * output of the first call (ASCII, as the bench's plugin writes)}. EPOCH=1 enables epoch
 * interruption (extism_fast's default settings), with the deadline set before every call as any
 * host with a timeout must; EPOCH=0 is extism_fast's interruptible=False.
 *
 * The kernel is just enough for bench/plugin_sources/count_vowels_pdk.c: blocks are bump-allocated
 * and never reused, forgotten at the start of each call; one config entry; vars in a small table.
 * ACCESSORS=wasm: the loads, stores and input reads are extism_fast's accessor module
 * (kernel_c/kernel_access.c, whose exported memory is then the kernel memory), as in extism_fast
 * and the official runtime's wasm kernel: the fastest way known; ACCESSORS=c: every import is a C
 * callback (wasmtime's unchecked API, a wasm-to-native trampoline per call) over a host buffer.
 * Offsets are bounds-checked (loads/stores out of range answer 0 / do nothing), as any host must.
 * It is a floor to measure against, not a host to use.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernel_access.h"
#include "wasmtime_api.h"

#define KERNEL_BYTES (1u << 20)
#define MAX_BLOCKS 256u
#define MAX_VARS 8u
#define VALUE_BYTES 64u

typedef struct block { uint64_t offset, length; } block;
typedef struct var { size_t key_len, value_len; uint8_t key[VALUE_BYTES], value[VALUE_BYTES]; } var;

static uint8_t host_memory[KERNEL_BYTES];
static uint8_t *memory = host_memory; /* or the accessor module's memory */
static uint64_t end = KERNEL_FIRST_OFFSET; /* [0, 64) is the header the accessors read (kernel.h) */
static block blocks[MAX_BLOCKS];
static size_t block_count;
static uint64_t input_offset, input_length, output_offset, output_length, error_offset;
static const char *config_key, *config_value;
static var vars[MAX_VARS];
static size_t var_count;

static void put_header(uint64_t at, uint64_t value) { memcpy(memory + at, &value, 8); }

static void limit_reset(void) {
    end = KERNEL_FIRST_OFFSET;
    block_count = 0;
    input_offset = input_length = output_offset = output_length = error_offset = 0;
    put_header(KERNEL_HEADER_END, end);
}

static uint64_t limit_alloc(uint64_t n) {
    uint64_t capacity = (n + 7) & ~(uint64_t)7;
    if (n == 0 || block_count == MAX_BLOCKS || capacity > KERNEL_BYTES - end) return 0;
    blocks[block_count++] = (block){end, n};
    end += capacity;
    put_header(KERNEL_HEADER_END, end);
    return end - capacity;
}

static uint64_t limit_length(uint64_t offset) {
    for (size_t i = block_count; i-- > 0;)
        if (blocks[i].offset == offset) return blocks[i].length;
    return 0;
}

static int in_range(uint64_t offset, uint64_t n) { return offset >= KERNEL_FIRST_OFFSET && offset <= end && n <= end - offset; }

static uint64_t alloc_bytes(const void *data, size_t n) {
    uint64_t offset = limit_alloc(n);
    if (offset != 0) memcpy(memory + offset, data, n);
    return offset;
}

#define CALLBACK(name) \
    static wasm_trap_t *name(void *env, wasmtime_caller_t *caller, wasmtime_val_raw_t *a, size_t nargs)
#define UNUSED (void)env; (void)caller; (void)nargs

CALLBACK(k_alloc) { UNUSED; a[0].i64 = (int64_t)limit_alloc((uint64_t)a[0].i64); return NULL; }
CALLBACK(k_free) { UNUSED; (void)a; return NULL; }
CALLBACK(k_length) { UNUSED; a[0].i64 = (int64_t)limit_length((uint64_t)a[0].i64); return NULL; }
CALLBACK(k_input_length) { UNUSED; a[0].i64 = (int64_t)input_length; return NULL; }
CALLBACK(k_output_set) { UNUSED; output_offset = (uint64_t)a[0].i64; output_length = (uint64_t)a[1].i64; return NULL; }
CALLBACK(k_error_set) { UNUSED; error_offset = (uint64_t)a[0].i64; return NULL; }

CALLBACK(k_load_u8) {
    UNUSED;
    uint64_t o = (uint64_t)a[0].i64;
    a[0].i32 = in_range(o, 1) ? memory[o] : 0;
    return NULL;
}

CALLBACK(k_load_u64) {
    UNUSED;
    uint64_t o = (uint64_t)a[0].i64, v = 0;
    if (in_range(o, 8)) memcpy(&v, memory + o, 8);
    a[0].i64 = (int64_t)v;
    return NULL;
}

CALLBACK(k_store_u8) {
    UNUSED;
    uint64_t o = (uint64_t)a[0].i64;
    if (in_range(o, 1)) memory[o] = (uint8_t)a[1].i32;
    return NULL;
}

CALLBACK(k_store_u64) {
    UNUSED;
    uint64_t o = (uint64_t)a[0].i64;
    if (in_range(o, 8)) memcpy(memory + o, &a[1].i64, 8);
    return NULL;
}

CALLBACK(k_input_load_u8) {
    UNUSED;
    uint64_t i = (uint64_t)a[0].i64;
    a[0].i32 = i < input_length ? memory[input_offset + i] : 0;
    return NULL;
}

CALLBACK(k_input_load_u64) {
    UNUSED;
    uint64_t i = (uint64_t)a[0].i64, v = 0;
    if (input_length >= 8 && i <= input_length - 8) memcpy(&v, memory + input_offset + i, 8);
    a[0].i64 = (int64_t)v;
    return NULL;
}

/* A key block's bytes, or NULL. */
static const uint8_t *block_bytes(uint64_t offset, uint64_t *length) {
    *length = limit_length(offset);
    return *length != 0 ? memory + offset : NULL;
}

CALLBACK(k_config_get) {
    UNUSED;
    uint64_t len;
    const uint8_t *key = block_bytes((uint64_t)a[0].i64, &len);
    int found = key != NULL && len == strlen(config_key) && memcmp(key, config_key, len) == 0;
    a[0].i64 = found ? (int64_t)alloc_bytes(config_value, strlen(config_value)) : 0;
    return NULL;
}

static var *find_var(const uint8_t *key, uint64_t len) {
    for (size_t i = 0; i < var_count; i++)
        if (vars[i].key_len == len && memcmp(vars[i].key, key, len) == 0) return &vars[i];
    return NULL;
}

CALLBACK(k_var_get) {
    UNUSED;
    uint64_t len;
    const uint8_t *key = block_bytes((uint64_t)a[0].i64, &len);
    var *v = key != NULL ? find_var(key, len) : NULL;
    a[0].i64 = v != NULL ? (int64_t)alloc_bytes(v->value, v->value_len) : 0;
    return NULL;
}

CALLBACK(k_var_set) {
    UNUSED;
    uint64_t key_len, value_len;
    const uint8_t *key = block_bytes((uint64_t)a[0].i64, &key_len);
    const uint8_t *value = block_bytes((uint64_t)a[1].i64, &value_len);
    if (key == NULL || key_len > VALUE_BYTES || value_len > VALUE_BYTES) return NULL;
    var *v = find_var(key, key_len);
    if (v == NULL && var_count < MAX_VARS) {
        v = &vars[var_count++];
        v->key_len = key_len;
        memcpy(v->key, key, key_len);
    }
    if (v != NULL) {
        v->value_len = value_len;
        if (value != NULL) memcpy(v->value, value, value_len);
    }
    return NULL;
}

typedef struct env_function { const char *name; wasmtime_func_unchecked_callback_t callback; } env_function;

static const env_function ENV[] = {
    {"alloc", k_alloc}, {"free", k_free}, {"length", k_length}, {"load_u8", k_load_u8},
    {"load_u64", k_load_u64}, {"store_u8", k_store_u8}, {"store_u64", k_store_u64},
    {"input_length", k_input_length}, {"input_load_u8", k_input_load_u8},
    {"input_load_u64", k_input_load_u64}, {"output_set", k_output_set}, {"error_set", k_error_set},
    {"config_get", k_config_get}, {"var_get", k_var_get}, {"var_set", k_var_set},
};

static void die(const char *what, wasmtime_error_t *error, wasm_trap_t *trap) {
    char *message = error != NULL ? wt_take_error_message(error) : trap != NULL ? wt_take_trap_message(trap) : NULL;
    fprintf(stderr, "limit_host: %s%s%s\n", what, message ? ": " : "", message ? message : "");
    exit(1);
}

static wasmtime_func_unchecked_callback_t env_callback(const wasm_name_t *module, const wasm_name_t *name) {
    static const char env_module[] = "extism:host/env";
    if (module->size != sizeof env_module - 1 || memcmp(module->data, env_module, module->size) != 0) return NULL;
    for (size_t i = 0; i < sizeof ENV / sizeof ENV[0]; i++)
        if (strlen(ENV[i].name) == name->size && memcmp(ENV[i].name, name->data, name->size) == 0) return ENV[i].callback;
    return NULL;
}

/* Instantiate `module`: each extism:host/env import is the accessor instance's export of that name
 * when there is one (ACCESSORS=wasm), else the C callback above. */
static wasmtime_instance_t instantiate(wasmtime_context_t *ctx, const wasmtime_module_t *module,
                                      const wasmtime_instance_t *accessors) {
    wasm_importtype_vec_t imports;
    wt.wasmtime_module_imports(module, &imports);
    wasmtime_extern_t *externs = calloc(imports.size + 1, sizeof *externs);
    for (size_t i = 0; i < imports.size; i++) {
        const wasm_name_t *name = wt.wasm_importtype_name(imports.data[i]);
        if (accessors != NULL && wt.wasmtime_instance_export_get(ctx, accessors, (const char *)name->data, name->size, &externs[i]))
            continue;
        wasmtime_func_unchecked_callback_t callback = env_callback(wt.wasm_importtype_module(imports.data[i]), name);
        const wasm_functype_t *type = wt.wasm_externtype_as_functype_const(wt.wasm_importtype_type(imports.data[i]));
        if (callback == NULL || type == NULL) {
            fprintf(stderr, "limit_host: unsupported import %.*s\n", (int)name->size, (const char *)name->data);
            exit(1);
        }
        externs[i].kind = WASM_EXTERN_FUNC;
        wt.wasmtime_func_new_unchecked(ctx, type, callback, NULL, NULL, &externs[i].of.func);
    }
    wasmtime_instance_t instance;
    wasm_trap_t *trap = NULL;
    wasmtime_error_t *error = wt.wasmtime_instance_new(ctx, module, externs, imports.size, &instance, &trap);
    if (error != NULL || trap != NULL) die("instantiation failed", error, trap);
    free(externs);
    wt.wasm_importtype_vec_delete(&imports);
    return instance;
}

/* The accessor module instantiated, its memory grown to KERNEL_BYTES and made the kernel memory. */
static wasmtime_instance_t instantiate_accessors(wasm_engine_t *engine, wasmtime_context_t *ctx) {
    size_t wat_length;
    const char *wat = kernel_access_wat(&wat_length);
    wasm_byte_vec_t wasm;
    wasmtime_module_t *module;
    wasmtime_error_t *error = wt.wasmtime_wat2wasm(wat, wat_length, &wasm);
    if (error == NULL) {
        error = wt.wasmtime_module_new(engine, wasm.data, wasm.size, &module);
        wt.wasm_byte_vec_delete(&wasm);
    }
    if (error != NULL) die("the accessor module", error, NULL);
    wasmtime_instance_t instance = instantiate(ctx, module, NULL);
    wt.wasmtime_module_delete(module);
    wasmtime_extern_t item;
    uint64_t pages;
    if (!wt.wasmtime_instance_export_get(ctx, &instance, "memory", 6, &item) || item.kind != WASM_EXTERN_MEMORY)
        die("the accessor module has no memory", NULL, NULL);
    error = wt.wasmtime_memory_grow(ctx, &item.of.memory, KERNEL_BYTES / 65536 - 1, &pages);
    if (error != NULL) die("cannot grow the kernel memory", error, NULL);
    memory = wt.wasmtime_memory_data(ctx, &item.of.memory);
    return instance;
}

static wasmtime_func_t export_func(wasmtime_context_t *ctx, const wasmtime_instance_t *instance, const char *name) {
    wasmtime_extern_t item;
    if (!wt.wasmtime_instance_export_get(ctx, instance, name, strlen(name), &item) || item.kind != WASM_EXTERN_FUNC) {
        fprintf(stderr, "limit_host: no exported function %s\n", name);
        exit(1);
    }
    return item.of.func;
}

/* One call as a host makes it: a fresh kernel, the input written, the deadline set, the export run,
 * its return code and output read. */
static void call(wasmtime_context_t *ctx, const wasmtime_func_t *func, const char *input, size_t n, int epoch) {
    limit_reset();
    input_offset = alloc_bytes(input, n);
    input_length = n;
    put_header(KERNEL_HEADER_INPUT_OFFSET, input_offset);
    put_header(KERNEL_HEADER_INPUT_LENGTH, input_length);
    if (epoch) wt.wasmtime_context_set_epoch_deadline(ctx, 1000000);
    wasmtime_val_raw_t raw[1] = {{.i64 = 0}};
    wasm_trap_t *trap = NULL;
    wasmtime_error_t *error = wt.wasmtime_func_call_unchecked(ctx, func, raw, 1, &trap);
    if (error != NULL || trap != NULL || raw[0].i32 != 0 || error_offset != 0 || !in_range(output_offset, output_length))
        die("the call failed", error, trap);
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0) die("cannot read the plugin", NULL, NULL);
    long length = ftell(f);
    rewind(f);
    void *data = malloc((size_t)length);
    if (data == NULL || fread(data, 1, (size_t)length, f) != (size_t)length) die("cannot read the plugin", NULL, NULL);
    fclose(f);
    *size = (size_t)length;
    return data;
}

int main(int argc, char **argv) {
    if (argc != 11) {
        fprintf(stderr, "usage: limit_host LIBWASMTIME PLUGIN FUNCTION INPUT CONFIG_KEY CONFIG_VALUE EPOCH ACCESSORS CALLS REPEATS\n");
        return 2;
    }
    char err[512];
    if (wt_load(argv[1], err, sizeof err) != 0) die(err, NULL, NULL);
    const char *input = argv[4];
    size_t input_len = strlen(input);
    config_key = argv[5];
    config_value = argv[6];
    int epoch = atoi(argv[7]);
    int wasm_accessors = strcmp(argv[8], "wasm") == 0;
    long calls = atol(argv[9]), repeats = atol(argv[10]);

    wasm_config_t *config = wt.wasm_config_new();
    wt.wasmtime_config_epoch_interruption_set(config, epoch != 0);
    wasm_engine_t *engine = wt.wasm_engine_new_with_config(config);
    size_t wasm_size;
    uint8_t *wasm = read_file(argv[2], &wasm_size);
    wasmtime_module_t *module;
    wasmtime_error_t *error = wt.wasmtime_module_new(engine, wasm, wasm_size, &module);
    if (error != NULL) die("compilation failed", error, NULL);
    wasmtime_store_t *store = wt.wasmtime_store_new(engine, NULL, NULL);
    wasmtime_context_t *ctx = wt.wasmtime_store_context(store);
    if (epoch) wt.wasmtime_context_set_epoch_deadline(ctx, 1000000);
    wasmtime_instance_t accessors;
    if (wasm_accessors) accessors = instantiate_accessors(engine, ctx);
    wasmtime_instance_t instance = instantiate(ctx, module, wasm_accessors ? &accessors : NULL);
    wasmtime_func_t initialize = export_func(ctx, &instance, "_initialize");
    wasm_trap_t *trap = NULL;
    error = wt.wasmtime_func_call_unchecked(ctx, &initialize, NULL, 0, &trap);
    if (error != NULL || trap != NULL) die("_initialize failed", error, trap);
    wasmtime_func_t func = export_func(ctx, &instance, argv[3]);

    call(ctx, &func, input, input_len, epoch);
    char output[512];
    snprintf(output, sizeof output, "%.*s", (int)output_length, (const char *)memory + output_offset);
    for (long i = 0; i < calls; i++) call(ctx, &func, input, input_len, epoch); /* warm up */
    double best = 1e300;
    for (long r = 0; r < repeats; r++) {
        double t0 = now_ns();
        for (long i = 0; i < calls; i++) call(ctx, &func, input, input_len, epoch);
        double per_call = (now_ns() - t0) / (double)calls;
        if (per_call < best) best = per_call;
    }
    printf("{\"ns_per_call\": %.2f, \"output\": \"", best);
    for (const char *c = output; *c; c++) printf(*c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
    printf("\"}\n");
    wt.wasmtime_store_delete(store);
    wt.wasmtime_module_delete(module);
    wt.wasm_engine_delete(engine);
    free(wasm);
    return 0;
}
