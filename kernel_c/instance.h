/*
 * instance.h - a compiled plugin, its instances, and a call (docs/ABI.md, "A call").
 *
 * compiled_plugin: the engine-level, store-independent part shared by every instance: the linker
 *   (kernel callbacks + host imports + user host functions + WASI when enabled), the modules, their
 *   import plans (import_plan.h) and the table of the main module's function exports. A plugin may
 *   be compiled for several engines (pooled / on-demand, with / without epoch interruption).
 * plugin_instance: one wasmtime store, made by the first call, with the kernel accessor instance
 *   (whose memory is the kernel memory, see kernel_access.c), the instantiated modules, vars,
 *   config and the interruption state. Used by one thread at a time.
 *
 * Import callbacks find the instance of the running call through `current_instance`, a
 * thread-local set around every entry into wasm: the linker's callbacks can then be shared by every
 * instance, and the lookup costs less than going through the store's data.
 */
#ifndef EXTISM_FAST_INSTANCE_H
#define EXTISM_FAST_INSTANCE_H

#include <stddef.h>
#include <stdint.h>

#include "import_plan.h"
#include "kernel.h"
#include "vars.h"
#include "wasmtime_api.h"

/* The shape of a function export. Only () -> i32 and () -> () can be called as plugin functions. */
typedef enum export_shape { EXPORT_RETURNS_NOTHING = 0, EXPORT_RETURNS_I32 = 1, EXPORT_OTHER = 2 } export_shape;

/* What an engine does besides running wasm (instance_engine_new). */
typedef enum engine_flags {
    ENGINE_EPOCH = 1, /* epoch interruption: timeouts, cancel, and the GIL released after a tick */
    ENGINE_FUEL = 2,  /* fuel metering (instruction budgets) */
    ENGINE_DEBUG = 4, /* DWARF debug info for native debuggers (EXTISM_DEBUG) */
    /* Bits 3-4: the wasmtime profiler (wasmtime_profiling_strategy_t, EXTISM_PROFILE). */
    ENGINE_PROFILER_SHIFT = 3,
    ENGINE_PROFILER_MASK = 3 << 3,
} engine_flags;

/* The number of distinct engine_flags values (engine tables are indexed by them). */
#define ENGINE_FLAG_VALUES 32

/* An engine and the kernel accessor module compiled for it (modules belong to one engine). */
typedef struct engine_bundle {
    wasm_engine_t *engine;
    wasmtime_module_t *access_module;
    int flags;                 /* engine_flags */
    uint32_t pool_instances;   /* plugin instances the pooling allocator holds; 0 = on-demand */
} engine_bundle;

typedef struct compiled_plugin {
    const engine_bundle *bundle;     /* borrowed: one of the process-wide engines */
    wasmtime_linker_t *linker;       /* owned */
    wasmtime_module_t *main;         /* owned */
    size_t dep_count;                /* modules linked by name besides main */
    wasmtime_module_t **deps;        /* owned, dep_count entries */
    char **dep_names;                /* owned, NUL-terminated */
    import_plan *plans;              /* owned: deps in order, then main (compiled_plugin_link) */
    size_t *instantiation_order;     /* owned: positions (deps, then main) in dependency order */
    size_t forward_count;            /* forwarding imports (cycles between modules); 0 = none */
    size_t access_memory_export;     /* export index of the accessor module's memory */
    ptrdiff_t memory_export;         /* export index of main's "memory", or -1 */
    size_t export_count;             /* function exports of main */
    char **export_names;             /* owned, NUL-terminated */
    size_t *export_positions;        /* each one's index among all of main's exports */
    uint8_t *export_shapes;          /* export_shape per export */
    uint8_t *export_slots;           /* max(parameters, results) per export (capped at 255) */
    ptrdiff_t initialize_index;      /* the startup export run first (see compiled_plugin_link), or -1 */
    ptrdiff_t hs_init_index;         /* `hs_init`, -1 if absent */
    ptrdiff_t start_index;           /* `_start`, -1 if absent */
} compiled_plugin;

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
    wasmtime_memory_t kernel_memory; /* the accessor instance's memory: the kernel's region */
    wasmtime_memory_t main_memory;   /* main's exported "memory", when has_main_memory */
    int has_main_memory;
    int initialized;                 /* startup functions ran in this store */
    int needs_store;                 /* no store yet, or `_start` ended it: make one before the next call */
    int64_t max_memory_bytes;        /* per wasm memory; -1 = unlimited */
    int64_t max_table_elements;      /* per wasm table; -1 = unlimited */
    uint64_t fuel;                   /* instructions per call (fuel engine only); 0 = unmetered */
    uint64_t fuel_consumed;          /* by the last export run (fuel != 0 only) */
    int wasi;
    int wasi_stdio;                  /* wasi_stdio_mode */
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
    int cancel_requested;            /* atomic (instance_cancel_requested / instance_cancel) */
    int in_call;                     /* atomic */
    interrupt_reason interrupt;

    /* The GIL: a call may start holding it (cheap for short calls); the first epoch tick of the
     * call releases it through instance_hooks.release_gil (without epochs: the call's start), and
     * the caller takes it back with the saved thread state after instance_call returns. */
    int holds_gil;
    void *saved_thread;

    /* A failure an import callback recorded before trapping (so it can be reported precisely). */
    int host_failure;                /* failure_kind; 0 = none */
    char *host_failure_message;
} plugin_instance;

typedef enum call_status {
    CALL_OK = 0,
    CALL_PLUGIN_ERROR,   /* error_set; message = the plugin's text */
    CALL_NONZERO,        /* returned non-zero without error_set; rc holds it */
    CALL_TRAP,           /* message = the trap's text */
    CALL_TIMEOUT,
    CALL_CANCELLED,
    CALL_OUT_OF_FUEL,    /* the call used up its fuel budget */
    CALL_INPUT_TOO_LARGE,/* the input does not fit under the kernel memory limit */
    CALL_HOST_FAILURE,   /* an import callback recorded a failure; failure holds its kind */
    CALL_EXIT,           /* WASI proc_exit with a non-zero code; rc holds it */
    CALL_INSTANTIATE,    /* instantiation or a startup function failed */
    CALL_POOL_EXHAUSTED, /* the engine's instance pool is full (nothing ran: switch to the on-demand
                          * compilation with instance_use_compiled and call again) */
} call_status;

typedef struct call_result {
    call_status status;
    int32_t rc;
    failure_kind failure;
    const uint8_t *output;  /* into kernel memory; valid until the next call on the instance */
    uint64_t output_length;
    char *message;          /* malloc'ed, NUL-terminated, or NULL; free with free() */
} call_result;

typedef struct host_hooks {
    /* Log `msg` at level 0..4 (trace..error) for the plugin `owner`. Called without the GIL. */
    void (*log)(void *owner, int level, const uint8_t *msg, size_t len);
    /* The lowest level (0..4) that is logged for `owner`, or INT32_MAX when logging is off. */
    int32_t (*log_level)(void *owner);
    /* Release the GIL this thread holds; returns the thread state to restore it with. */
    void *(*release_gil)(void);
    /* Perform http_request: owns (frees) the request and body blocks, sets p->http_status and the
     * headers, stores the response block in *response. NULL -> every request is refused.
     * Returns NULL or a trap (made with instance_fail). */
    wasm_trap_t *(*http_request)(void *owner, uint64_t request, uint64_t body, uint64_t *response);
} host_hooks;

/* Set once by the Python layer at import. */
extern host_hooks instance_hooks;

/* The instance whose call is running on this thread, or NULL. initial-exec: a plain %fs-relative
 * load instead of a __tls_get_addr call in this shared object (read on every kernel call). */
extern __thread plugin_instance *current_instance __attribute__((tls_model("initial-exec")));

/* instance_engine_new: a process engine with memories that never move (host pointers into the
 * kernel memory stay valid while it grows) and the `flags` (engine_flags): epoch interruption
 * costs every loop of a plugin a check, fuel metering more, so only plugins that need them use
 * engines that have them. pool_instances > 0: the pooling allocator, with room for that many
 * plugin instances (accessor + main + a few dependencies each), after checking that its address
 * space can be reserved (else -1: the caller uses an on-demand engine). Also compiles the kernel
 * accessor module. Returns 0, or -1 and sets *error (malloc'ed). */
int instance_engine_new(int flags, uint32_t pool_instances, engine_bundle *out, char **error);

/* compiled_plugin_delete: free everything compiled_plugin owns. NULL is ignored. */
void compiled_plugin_delete(compiled_plugin *c);

/* compiled_plugin_link: after the caller filled bundle, linker, main and deps, list main's
 * function exports, find the startup functions and build the import plans and the instantiation
 * order (import_plan.h; positions: deps, then main). The caller then checks the imports that do
 * not come from a module (compiled_plugin_import_source). On failure returns -1 and either fills
 * *problem (a link problem between modules; free it with link_problem_free) or sets *error
 * (malloc'ed: a startup export of an unusable type, out of memory). */
int compiled_plugin_link(compiled_plugin *c, link_problem *problem, char **error);

/* compiled_plugin_import_source: where import `index` of the module at `position` comes from. */
import_source compiled_plugin_import_source(const compiled_plugin *c, size_t position, size_t index);

/* What a plugin instance is allowed and given: filled once from the manifest and the Plugin's
 * options (the one place a new manifest option is added). instance_new copies what it points to. */
typedef struct instance_options {
    uint64_t kernel_limit;           /* bytes of kernel memory; 0 = the default (4 GiB) */
    int64_t max_memory_bytes;        /* per wasm memory (manifest.memory.max_pages); -1 = unlimited */
    int64_t max_table_elements;      /* per wasm table (manifest.memory.max_table_elements); -1 = unlimited */
    uint64_t max_var_bytes;          /* total size of vars; 0 disables them */
    uint64_t fuel;                   /* budget of every call (fuel engine only); 0 = unmetered */
    const kv_entry *config;
    size_t config_count;
    int wasi;
    int wasi_stdio;                  /* wasi_stdio_mode */
    const wasi_preopen *preopens;
    size_t preopen_count;
    const char *const *wasi_args;    /* WASI argv (none unless given) */
    size_t wasi_arg_count;
    const char *const *wasi_env;     /* WASI environment: name, value, name, value... (none unless given) */
    size_t wasi_env_count;           /* pairs */
    int strict;                      /* bad kernel accesses trap with a precise message (kernel.h) */
} instance_options;

/* instance_new: an instance of `compiled` with its own kernel; its store is made and the modules
 * instantiated by the first call or instance_prepare (as the official runtime: no plugin code runs
 * outside a call, and creating an instance costs microseconds). Returns NULL and sets *error
 * (malloc'ed) on failure. */
plugin_instance *instance_new(const compiled_plugin *compiled, void *owner, const instance_options *options,
                              char **error);

/* instance_prepare: make the store and instantiate the modules now if the next call would (see
 * instance_new); r->status is CALL_OK, CALL_INSTANTIATE or CALL_POOL_EXHAUSTED. timeout_ns and
 * holds_gil as for instance_call (wasm start functions run here). */
void instance_prepare(plugin_instance *p, uint64_t timeout_ns, int holds_gil, call_result *r);

/* instance_detach_store: hand the current store (its memories included) to the caller, who deletes
 * it with wasmtime_store_delete when nothing points into its memories any more; the next call makes
 * a new one. Returns NULL when there is no store. For a store about to be replaced (after `_start`)
 * while Python still holds views of its kernel memory. */
wasmtime_store_t *instance_detach_store(plugin_instance *p);

/* instance_use_compiled: run `compiled` (the same plugin compiled for another engine) from now on.
 * Only while p has no store (before its first call or after CALL_POOL_EXHAUSTED); returns 0, or -1
 * when p has a store or `compiled` has other exports. */
int instance_use_compiled(plugin_instance *p, const compiled_plugin *compiled);

/* instance_reset_kernel: forget every block of the kernel memory (the official Plugin::reset):
 * the last call's output, error and allocations. Vars stay. Only between calls. */
void instance_reset_kernel(plugin_instance *p);

/* instance_kernel_memory: the kernel memory's bytes (the official runtime's "Extism linear memory",
 * what EXTISM_MEMDUMP writes); NULL when the instance has no store. */
const uint8_t *instance_kernel_memory(plugin_instance *p, size_t *length);

/* instance_main_memory: the bytes of main's exported "memory" (EXTISM_COREDUMP); NULL when there
 * is none or no store. */
const uint8_t *instance_main_memory(plugin_instance *p, size_t *length);

/* instance_delete: drop the store, the kernel, vars and config. NULL is ignored. */
void instance_delete(plugin_instance *p);

/* instance_call: run the export `export_index` with `input` (docs/ABI.md, "A call"). timeout_ns 0 =
 * none (and ignored on an engine without ENGINE_EPOCH). Fills *r; free r->message afterwards.
 * holds_gil: the caller holds the GIL; the call releases it once it has run for a tick (~1 ms),
 * or at once on an engine without ENGINE_EPOCH, and leaves the thread state in p->saved_thread,
 * which the caller must restore. Hooks take the GIL when they need it. */
void instance_call(plugin_instance *p, size_t export_index, const uint8_t *input, uint64_t input_length,
                   uint64_t timeout_ns, int holds_gil, call_result *r);

/* WASI output kept per stream (WASI_STDIO_LOG) is capped at this many bytes per call. */
#define INSTANCE_WASI_OUTPUT_MAX (UINT64_C(1) << 20)

/* instance_take_wasi_output: the bytes written to stream (0 stdout, 1 stderr) since the last take;
 * *length gets their count. Valid until the next call; the stream is emptied. */
const uint8_t *instance_take_wasi_output(plugin_instance *p, int stream, size_t *length);

/* instance_set_http_headers: keep a copy of `json` for http_headers (NULL / 0 forgets it).
 * Returns 0, or -1 when out of host memory. */
int instance_set_http_headers(plugin_instance *p, const uint8_t *json, uint64_t length);

/* instance_cancel: make the running call (if any) on p fail as cancelled. Any thread, but p must
 * stay alive meanwhile: the Python side calls it holding the GIL, which close() needs too. */
void instance_cancel(plugin_instance *p);

/* instance_cancel_requested: has instance_cancel been called during the running call? */
int instance_cancel_requested(plugin_instance *p);

/* instance_fail: for import callbacks: record `message` and its kind as the reason of the failure
 * and return a trap carrying it. The first failure of a call wins. */
wasm_trap_t *instance_fail(plugin_instance *p, failure_kind kind, const char *message);

/* env_imports_define: define every `extism:host/env` import of docs/ABI.md on the linker. */
int env_imports_define(wasmtime_linker_t *linker, char **error);

/* env_import_signature: for an `extism:host/env` name, its parameter and result kinds as strings
 * like "I" / "II" / "" (I = i64, i = i32); returns 0 when the name is not an ABI function. */
int env_import_signature(const char *name, size_t name_len, const char **params, const char **results);

#endif
