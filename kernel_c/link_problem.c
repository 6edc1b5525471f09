/* link_problem.c - the structured link problem and its helpers; contracts in link_problem.h. */
#include "link_problem.h"

#include <stdlib.h>
#include <string.h>

void link_problem_free(link_problem *problem) {
    free(problem->module);
    free(problem->name);
    if (problem->expected != NULL) wt.wasm_externtype_delete(problem->expected);
    if (problem->found != NULL) wt.wasm_externtype_delete(problem->found);
    free(problem->cycle);
    memset(problem, 0, sizeof *problem);
}

int link_problem_out_of_memory(link_problem *problem) {
    problem->kind = LINK_PROBLEM_MEMORY;
    return -1;
}

int link_problem_set(link_problem *problem, link_problem_kind kind, link_import import) {
    problem->kind = kind;
    problem->importer = import.importer;
    problem->provider = import.provider;
    problem->import_kind = import.kind;
    problem->module = wt_copy_text(import.module, strlen(import.module));
    problem->name = wt_copy_text(import.name, strlen(import.name));
    if (problem->module == NULL || problem->name == NULL) problem->kind = LINK_PROBLEM_MEMORY;
    return -1;
}

/* A copy of the `size` bytes at `data`, NUL-terminated, each NUL byte in them written "\\0". */
static char *copy_showing_nul(const char *data, size_t size) {
    size_t nuls = 0;
    for (size_t i = 0; i < size; i++) nuls += data[i] == '\0';
    char *copy = malloc(size + nuls + 1);
    if (copy == NULL) return NULL;
    size_t j = 0;
    for (size_t i = 0; i < size; i++) {
        if (data[i] == '\0') {
            copy[j++] = '\\';
            copy[j++] = '0';
        } else {
            copy[j++] = data[i];
        }
    }
    copy[j] = '\0';
    return copy;
}

int link_problem_nul_name(link_problem *problem, size_t importer, const wasm_name_t *module,
                          const wasm_name_t *name, wasm_externkind_t import_kind) {
    problem->kind = LINK_PROBLEM_NUL_NAME;
    problem->importer = importer;
    problem->provider = LINK_NO_PROVIDER;
    problem->import_kind = import_kind;
    problem->module = copy_showing_nul((const char *)module->data, module->size);
    problem->name = copy_showing_nul((const char *)name->data, name->size);
    if (problem->module == NULL || problem->name == NULL) problem->kind = LINK_PROBLEM_MEMORY;
    return -1;
}
