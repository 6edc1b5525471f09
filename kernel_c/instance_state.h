/*
 * instance_state.h - what a plugin instance holds (docs/ABI.md, "A call"); types only.
 *
 * Owns: plugin_instance (one wasmtime store, made by the first call, with the kernel accessor
 * instance whose memory is the kernel memory (kernel_access.c), the instantiated modules, vars,
 * config, the scalar options (instance_settings), WASI settings and the interruption state; used
 * by one thread at a time) and the kinds its fields take. Its lifecycle is instance.h's, its store
 * store.h's, the running call running.h's and call.h's: they all see this one definition, and none
 * of them needs another.
 */
#ifndef EXTISM_FAST_INSTANCE_STATE_H
#define EXTISM_FAST_INSTANCE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "compiled.h"
#include "instance_settings.h" /* generated (setup.py): the scalar options, declared in runtime/options.py */
#include "kernel.h"
#include "memory_budget.h"
#include "vars.h"
#include "wasmtime_api.h"

/* One manifest `allowed_paths` mapping, already validated by the caller. */
typedef struct wasi_preopen {
    char *host_path;
    char *guest_path;
    int read_only;
} wasi_preopen;

/* Why an import callback failed a call: lets the host raise the matching exception class. */
typedef enum failure_kind {
    FAILURE_NONE = 0,
    FAILURE_TRAP = 1,          /* bad offset or bad argument from the plugin */
    FAILURE_LIMIT = 2,         /* a memory, var or HTTP limit */
    FAILURE_HOST_FUNCTION = 3, /* a Python host function raised */
    FAILURE_DENIED = 4,        /* a capability the host did not grant */
    FAILURE_HOST_CALL = 5,     /* a host service failed (network error, bad request) */
} failure_kind;

/* Where a WASI plugin's stdout and stderr go. */
typedef enum wasi_stdio_mode { WASI_STDIO_DISCARD = 0, WASI_STDIO_INHERIT = 1, WASI_STDIO_LOG = 2 } wasi_stdio_mode;

typedef enum interrupt_reason { INTERRUPT_NONE = 0, INTERRUPT_TIMEOUT = 1, INTERRUPT_CANCEL = 2 } interrupt_reason;


typedef struct plugin_instance {
    const compiled_plugin *compiled; /* borrowed; the caller keeps it alive */
    void *owner;                     /* the Python Plugin object, handed to hooks (borrowed) */
    instance_settings settings;      /* as instance_new was given them; a unit reads p->settings.<name> */

    /* State the import callbacks use. */
    kernel *kernel;
    var_store vars;
    kv_entry *config;
    size_t config_count;
    int32_t http_status;             /* status of the last http_request of this call */
    uint8_t *http_headers;           /* JSON of its response headers (malloc'ed) or NULL */
    uint64_t http_headers_length;

    /* The store and what lives in it. */
    wasmtime_store_t *store;
    wasmtime_context_t *ctx;
    wasmtime_func_t *exports;        /* compiled->export_count entries */
    wasmtime_func_t *startups;       /* compiled->startup_count entries: the startup functions */
    wasmtime_memory_t kernel_memory; /* the accessor instance's memory: the kernel's region */
    wasmtime_memory_t main_memory;   /* main's exported "memory", when has_main_memory */
    int has_main_memory;
    int initialized;                 /* startup functions ran in this store */
    int needs_store;                 /* no store yet, or `_start` ended it: make one before the next call */
    int views_exposed;               /* Python may view the store's memories (set by the host; store_drop) */
    uint64_t fuel_consumed;          /* by the last export run (settings.fuel != 0 only) */
    /* WASI_STDIO_LOG: what the plugin wrote to stdout [0] and stderr [1] during the current call,
     * for the host to log afterwards. wasmtime may write from one of its own threads, which must
     * never wait for the GIL the calling thread holds, so the writes only land here. */
    uint8_t *wasi_output[2];
    size_t wasi_output_length[2];
    size_t wasi_output_capacity[2];
    wasi_preopen *preopens;
    size_t preopen_count;
    char **wasi_args;                /* argv the plugin sees (owned, NUL-terminated strings) */
    size_t wasi_arg_count;
    char **wasi_env;                 /* environment: names and values alternate (owned) */
    size_t wasi_env_count;           /* pairs */

    /* Interruption: written by other threads (cancel) and by the epoch callback. */
    uint64_t deadline_ns;            /* monotonic; 0 = no timeout for this call */
    int cancel_requested;            /* atomic (running_cancel_requested / running_cancel) */
    int in_call;                     /* atomic */
    interrupt_reason interrupt;

    /* The GIL: a call may start holding it (cheap for short calls); the first epoch tick of the
     * call releases it (running_release_gil; without epochs: the call's start), and
     * the caller takes it back with the saved thread state after call_run returns. */
    int holds_gil;
    void *saved_thread;

    /* A failure an import callback recorded before trapping (so it can be reported precisely). */
    int host_failure;                /* failure_kind; 0 = none */
    char *host_failure_message;

    memory_budget budget;            /* settings.max_memory_bytes for all the memories, and the
                                      * table limit (settings.max_table_elements) */
} plugin_instance;

#endif
