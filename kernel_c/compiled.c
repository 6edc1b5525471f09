/* compiled.c - freeing a compiled plugin, and where its modules are; contracts in compiled.h. */
#include "compiled.h"

#include <stdlib.h>

void compiled_free_strings(char **strings, size_t count) {
    if (strings == NULL) return;
    for (size_t i = 0; i < count; i++) free(strings[i]);
    free(strings);
}

void compiled_plugin_delete(compiled_plugin *c) {
    if (c == NULL) return;
    if (c->main) wt.wasmtime_module_delete(c->main);
    for (size_t i = 0; i < c->dep_count; i++)
        if (c->deps && c->deps[i]) wt.wasmtime_module_delete(c->deps[i]);
    free(c->deps);
    compiled_free_strings(c->dep_names, c->dep_count);
    compiled_free_strings(c->export_names, c->export_count);
    free(c->export_shapes);
    free(c->startups);
    if (c->plans != NULL)
        for (size_t i = 0; i <= c->dep_count; i++) import_plan_free(&c->plans[i]);
    free(c->plans);
    free(c->instantiation_order);
    free(c->memory_export_positions);
    compiled_free_strings(c->memory_export_names, c->memory_export_count);
    if (c->linker) wt.wasmtime_linker_delete(c->linker);
    free(c);
}

const wasmtime_module_t *compiled_plugin_module_at(const compiled_plugin *c, size_t position) {
    return position < c->dep_count ? c->deps[position] : c->main;
}

const char *compiled_plugin_module_label(const compiled_plugin *c, size_t position) {
    return position < c->dep_count ? c->dep_names[position] : "main";
}
