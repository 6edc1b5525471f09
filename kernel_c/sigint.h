/*
 * sigint.h - Ctrl-C (SIGINT) seen while a plugin call runs wasm (docs/ARCHITECTURE.md, "Signals").
 *
 * Python handles SIGINT with a C handler that only records it: its Python handler (KeyboardInterrupt
 * by default) runs when the main thread is back in the interpreter, which a call running wasm with
 * the GIL released is not. A counting handler installed in front of Python's counts each SIGINT and
 * hands it on; the epoch callback of a call on the main thread compares the count with the one at
 * the call's start and cancels the call (running.c), after which the runtime lets Python run its
 * handler (PyErr_CheckSignals).
 *
 * Owns: the counting handler, the handler it hands on to, the count. A SIGINT disposition of
 * SIG_IGN or SIG_DFL is respected: nothing is installed over it.
 */
#ifndef EXTISM_FAST_SIGINT_H
#define EXTISM_FAST_SIGINT_H

#include <stdint.h>

/* sigint_watch: make sure SIGINT reaches the counting handler first. When the installed handler is
 * a function (Python's, or any other) that is not the counting handler, it becomes the one handed
 * on to and the counting handler is installed with its flags and mask. Returns 1 when SIGINT is
 * counted, 0 when its disposition is SIG_IGN or SIG_DFL (left as is) or sigaction fails.
 * Costs one sigaction query (two when installing). Call it from one thread at a time (the runtime
 * calls it from Python's main thread only); not async-signal-safe. */
int sigint_watch(void);

/* How many SIGINTs the counting handler has seen; written by it only. */
extern uint64_t sigint_arrivals;

/* sigint_count: sigint_arrivals, read atomically (any thread; inline: read by every call). */
static inline uint64_t sigint_count(void) {
    return __atomic_load_n(&sigint_arrivals, __ATOMIC_ACQUIRE);
}

#endif
