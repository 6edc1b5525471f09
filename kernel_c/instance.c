/* instance.c - the plugin instance lifecycle and its options; contracts in instance.h. */
#include "instance.h"

#include <stdlib.h>
#include <string.h>

#include "store.h"

/* Each copy below allocates nothing for no items (NULL, count 0): most instances have none, and
 * every idle instance would keep the empty arrays. */
static int copy_config(plugin_instance *p, const kv_entry *config, size_t count) {
    if (count == 0) return 0;
    p->config = calloc(count, sizeof *p->config);
    if (p->config == NULL) return -1;
    for (size_t i = 0; i < count; i++) {
        kv_entry *e = &p->config[i];
        e->key = malloc(config[i].key_len + 1);
        e->value = malloc(config[i].value_len + 1);
        p->config_count = i + 1;
        if (e->key == NULL || e->value == NULL) return -1;
        memcpy(e->key, config[i].key, (size_t)config[i].key_len);
        memcpy(e->value, config[i].value, (size_t)config[i].value_len);
        e->key_len = config[i].key_len;
        e->value_len = config[i].value_len;
    }
    return 0;
}

static int copy_preopens(instance_wasi *w, const wasi_preopen *preopens, size_t count) {
    if (count == 0) return 0;
    w->preopens = calloc(count, sizeof *w->preopens);
    if (w->preopens == NULL) return -1;
    for (size_t i = 0; i < count; i++) {
        wasi_preopen *po = &w->preopens[i];
        po->host_path = wt_copy_text(preopens[i].host_path, strlen(preopens[i].host_path));
        po->guest_path = wt_copy_text(preopens[i].guest_path, strlen(preopens[i].guest_path));
        po->read_only = preopens[i].read_only;
        w->preopen_count = i + 1;
        if (po->host_path == NULL || po->guest_path == NULL) return -1;
    }
    return 0;
}

/* Into *out: a malloc'ed array of `count` copies of NUL-terminated strings (NULL for none).
 * Returns -1 when out of memory (*out NULL). */
static int copy_strings(const char *const *strings, size_t count, char ***out) {
    *out = NULL;
    if (count == 0) return 0;
    char **copies = calloc(count, sizeof *copies);
    for (size_t i = 0; copies != NULL && i < count; i++) {
        copies[i] = wt_copy_text(strings[i], strlen(strings[i]));
        if (copies[i] == NULL) {
            compiled_free_strings(copies, i);
            return -1;
        }
    }
    *out = copies;
    return copies != NULL ? 0 : -1;
}

/* The WASI state of a WASI instance: its copies of argv, the environment and the preopens
 * (options are not used without WASI, so an instance without it keeps none). Returns -1 when out
 * of memory (what was made is p->wasi_state's, freed by free_wasi). */
static int new_wasi(plugin_instance *p, const instance_options *options) {
    if (!p->settings.wasi) return 0;
    instance_wasi *w = p->wasi_state = calloc(1, sizeof *p->wasi_state);
    if (w == NULL) return -1;
    int copied = copy_strings(options->wasi_args, options->wasi_arg_count, &w->args);
    w->arg_count = w->args != NULL ? options->wasi_arg_count : 0;
    copied |= copy_strings(options->wasi_env, 2 * options->wasi_env_count, &w->env);
    w->env_count = w->env != NULL ? options->wasi_env_count : 0;
    return copied != 0 ? -1 : copy_preopens(w, options->preopens, options->preopen_count);
}

static void free_wasi(instance_wasi *w) {
    if (w == NULL) return;
    for (size_t i = 0; i < w->preopen_count; i++) {
        free(w->preopens[i].host_path);
        free(w->preopens[i].guest_path);
    }
    free(w->preopens);
    compiled_free_strings(w->args, w->arg_count);
    compiled_free_strings(w->env, 2 * w->env_count);
    free(w->output[0]);
    free(w->output[1]);
    free(w);
}

plugin_instance *instance_new(const compiled_plugin *compiled, void *owner, const instance_options *options,
                              char **error) {
    /* The export and startup handles live at the struct's end: one allocation. */
    size_t funcs = compiled->export_count + compiled->startup_count;
    plugin_instance *p = calloc(1, sizeof *p + funcs * sizeof p->funcs[0]);
    if (p == NULL) {
        *error = WT_TEXT("out of memory");
        return NULL;
    }
    p->compiled = compiled;
    p->owner = owner;
    p->settings = options->settings; /* the scalars, as they came: each unit reads its own */
    memory_budget_init(&p->budget, p->settings.max_memory_bytes, p->settings.max_table_elements);
    vars_init(&p->vars, p->settings.max_var_bytes);
    p->kernel = kernel_new(0, store_grow_kernel_memory, p); /* 4 GiB; max_pages is the memory budget's */
    p->exports = p->funcs;
    p->startups = p->funcs + compiled->export_count;
    if (p->kernel == NULL || new_wasi(p, options) != 0 || copy_config(p, options->config, options->config_count) != 0) {
        *error = WT_TEXT("cannot reserve memory for the plugin instance (kernel memory or host memory)");
        instance_delete(p);
        return NULL;
    }
    kernel_set_strict(p->kernel, p->settings.strict);
    if (p->settings.max_memory_bytes >= 0) kernel_share_budget(p->kernel, store_charge_kernel_table);
    p->needs_store = 1; /* instantiated by the first call (call_prepare) */
    return p;
}

int instance_use_compiled(plugin_instance *p, const compiled_plugin *compiled) {
    if (p->store != NULL || compiled->export_count != p->compiled->export_count ||
        compiled->startup_count != p->compiled->startup_count)
        return -1;
    p->compiled = compiled;
    return 0;
}

void instance_delete(plugin_instance *p) {
    if (p == NULL) return;
    store_drop(p);
    kernel_delete(p->kernel);
    vars_clear(&p->vars);
    for (size_t i = 0; i < p->config_count; i++) {
        free(p->config[i].key);
        free(p->config[i].value);
    }
    free(p->config);
    free_wasi(p->wasi_state);
    running_free(p);
    free(p);
}
