/*
 * kernel_access.h - the kernel accessor module: the hot `extism:host/env` functions (loads, stores,
 * input reads) as wasm over the kernel memory. See kernel_access.c for why and how.
 *
 * Owns: the accessor module's WAT text and the fault message of a failed accessor check.
 */
#ifndef EXTISM_FAST_KERNEL_ACCESS_H
#define EXTISM_FAST_KERNEL_ACCESS_H

#include <stddef.h>

#include "kernel.h"

/* kernel_access_wat: the module's WebAssembly text (static storage); *length = its byte count. */
const char *kernel_access_wat(size_t *length);

/* kernel_access_fault_message: when the last trap came from a failed accessor check, a message
 * naming the function and the offset (malloc'ed; the record is cleared), else NULL. */
char *kernel_access_fault_message(kernel *k);

#endif
