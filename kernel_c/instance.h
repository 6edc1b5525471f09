/*
 * instance.h - a plugin instance's lifecycle (docs/ABI.md, "A call").
 *
 * Owns: making and deleting a plugin_instance (instance_state.h), the options it is made from
 * (instance_options: the one struct C receives them in, from extism_fast/runtime/options.py) and
 * its copies of config, preopens and WASI argv/env (the WASI ones only when settings.wasi is set:
 * they are not used otherwise). The store itself is store.h's; a call is call.h's.
 */
#ifndef EXTISM_FAST_INSTANCE_H
#define EXTISM_FAST_INSTANCE_H

#include <stddef.h>
#include <stdint.h>

#include "compiled.h"
#include "instance_state.h"
#include "vars.h"

/* What a plugin instance is allowed and given: extism_fast/runtime/options.py resolves the manifest and the
 * Plugin's options once; the runtime (_pack_options, _plugin.pxi) writes the scalars (`settings`) by
 * field name, at the offsets of runtime/options.py's ctypes mirror (CInstanceOptions, compared with
 * this one by tests/test_options.py). instance_new keeps `settings` whole and copies what the arrays
 * point to (preopens and WASI argv/env only for a WASI instance). */
typedef struct instance_options {
    instance_settings settings;      /* first: the scalars (build/generated/instance_settings.h) */
    const kv_entry *config;          /* NULL when config_count is 0, as every array here */
    size_t config_count;
    const wasi_preopen *preopens;
    size_t preopen_count;
    const char *const *wasi_args;    /* WASI argv (none unless given) */
    size_t wasi_arg_count;
    const char *const *wasi_env;     /* WASI environment: name, value, name, value... (none unless given) */
    size_t wasi_env_count;           /* pairs */
} instance_options;

/* instance_new: an instance of `compiled` with its own kernel; its store is made and the modules
 * instantiated by the first call or call_prepare (as the official runtime: no plugin code runs
 * outside a call, and creating an instance costs microseconds). Returns NULL and sets *error
 * (malloc'ed) on failure. */
plugin_instance *instance_new(const compiled_plugin *compiled, void *owner, const instance_options *options,
                              char **error);

/* instance_use_compiled: run `compiled` (the same plugin compiled for another engine) from now on.
 * Only while p has no store (before its first call or after CALL_POOL_EXHAUSTED); returns 0, or -1
 * when p has a store or `compiled` has other exports or startup functions. */
int instance_use_compiled(plugin_instance *p, const compiled_plugin *compiled);

/* instance_delete: drop the store, the kernel, vars and config. NULL is ignored. */
void instance_delete(plugin_instance *p);

/* Reads for the Python layer, which sees plugin_instance as opaque (inline: some are on the call
 * path). instance_owner: the Plugin the instance was made for. instance_kernel: its kernel.
 * instance_fuel: fuel per call (0 = unmetered); instance_fuel_consumed: by the last export run.
 * instance_needs_store: the next call makes a new store (none yet, or `_start` ended the last).
 * instance_budget: the memory budget (limit, refused; memory_budget_describe). */
static inline void *instance_owner(const plugin_instance *p) { return p->owner; }
static inline kernel *instance_kernel(const plugin_instance *p) { return p->kernel; }
static inline uint64_t instance_fuel(const plugin_instance *p) { return p->settings.fuel; }
static inline uint64_t instance_fuel_consumed(const plugin_instance *p) { return p->fuel_consumed; }
static inline int instance_needs_store(const plugin_instance *p) { return p->needs_store; }
static inline const memory_budget *instance_budget(const plugin_instance *p) { return &p->budget; }

/* instance_set_views_exposed: whether Python views the store's memories (KernelBuffers): if so,
 * store_drop hands the store to running_hooks.keep_store before it goes. */
static inline void instance_set_views_exposed(plugin_instance *p, int exposed) { p->views_exposed = exposed != 0; }

/* instance_clear_vars: forget every var (between calls). */
static inline void instance_clear_vars(plugin_instance *p) { vars_clear(&p->vars); }

#endif
