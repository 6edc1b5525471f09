/*
 * instance_state.h - what a plugin instance holds (docs/ABI.md, "A call"); types only.
 *
 * Owns: plugin_instance (one wasmtime store, made by the first call, with the kernel accessor
 * instance whose memory is the kernel memory (kernel_access.c), the instantiated modules, vars,
 * config, the scalar options (instance_settings, generated), the WASI state (instance_wasi, a
 * WASI instance's only), and first the running call's state (running_call, running.h's); used by
 * one thread at a time) and the kinds its fields take. Its lifecycle is instance.h's, its store
 * store.h's, the running call running.h's and call.h's: they all see this one definition
 * (running.h only its first member), and none of them needs another.
 */
#ifndef EXTISM_FAST_INSTANCE_STATE_H
#define EXTISM_FAST_INSTANCE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "compiled.h"
#include "instance_settings.h" /* generated (setup.py): the scalar options, declared in runtime/options.py */
#include "kernel.h"
#include "memory_budget.h"
#include "running.h"
#include "vars.h"
#include "wasmtime_api.h"

/* One manifest `allowed_paths` mapping, already validated by the caller. */
typedef struct wasi_preopen {
    char *host_path;
    char *guest_path;
    int read_only;
} wasi_preopen;

/* Where a WASI plugin's stdout and stderr go. */
typedef enum wasi_stdio_mode { WASI_STDIO_DISCARD = 0, WASI_STDIO_INHERIT = 1, WASI_STDIO_LOG = 2 } wasi_stdio_mode;

/* What only a WASI instance needs (instance_new makes it when settings.wasi is set). */
typedef struct instance_wasi {
    /* WASI_STDIO_LOG: what the plugin wrote to stdout [0] and stderr [1] during the current call,
     * for the host to log afterwards. wasmtime may write from one of its own threads, which must
     * never wait for the GIL the calling thread holds, so the writes only land here. */
    uint8_t *output[2];
    size_t output_length[2];
    size_t output_capacity[2];
    wasi_preopen *preopens;
    size_t preopen_count;
    char **args;                     /* argv the plugin sees (owned, NUL-terminated strings) */
    size_t arg_count;
    char **env;                      /* environment: names and values alternate (owned) */
    size_t env_count;                /* pairs */
} instance_wasi;

typedef struct plugin_instance {
    running_call run;                /* first: running.h reaches it as running_state(p) */
    const compiled_plugin *compiled; /* borrowed; the caller keeps it alive */
    void *owner;                     /* the Python Plugin object, handed to hooks (borrowed) */
    instance_settings settings;      /* as instance_new was given them; a unit reads p->settings.<name> */

    /* State the import callbacks use. */
    kernel *kernel;
    var_store vars;
    kv_entry *config;
    size_t config_count;

    /* The store and what lives in it. */
    wasmtime_store_t *store;
    wasmtime_context_t *ctx;
    wasmtime_func_t *exports;        /* compiled->export_count entries (in funcs) */
    wasmtime_func_t *startups;       /* compiled->startup_count entries: the startup functions (in funcs) */
    wasmtime_memory_t kernel_memory; /* the accessor instance's memory: the kernel's region */
    wasmtime_memory_t main_memory;   /* main's exported "memory", when has_main_memory */
    int has_main_memory;
    int initialized;                 /* startup functions ran in this store */
    int needs_store;                 /* no store yet, or `_start` ended it: make one before the next call */
    int views_exposed;               /* Python may view the store's memories (set by the host; store_drop) */
    uint64_t fuel_consumed;          /* by the last export run (settings.fuel != 0 only) */
    instance_wasi *wasi_state;       /* settings.wasi only, else NULL: an idle instance without WASI
                                      * carries none of WASI's state (RSS per instance) */

    memory_budget budget;            /* settings.max_memory_bytes for all the memories, and the
                                      * table limit (settings.max_table_elements) */
    wasmtime_func_t funcs[];         /* allocated with the struct: exports, then startups */
} plugin_instance;

/* running.h, a leaf, sees plugin_instance only as its first member (running_state). */
_Static_assert(offsetof(plugin_instance, run) == 0, "plugin_instance must start with its running_call");

#endif
