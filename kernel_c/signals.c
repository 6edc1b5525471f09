/* signals.c - wasmtime's trap handlers kept first in line; contracts in signals.h. */
#define _GNU_SOURCE /* dladdr */
#include "signals.h"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "running.h"
#include "wasmtime_api.h"

/* A signal wasmtime may install a trap handler for, and what is known of its handlers. */
typedef struct guard {
    int signal;
    int known;                     /* `wasmtime` holds wasmtime's handler */
    struct sigaction wasmtime;
    /* What signals_restore installs over a replacing handler: wasmtime's when chain_fault is its
     * previous handler, else front_fault (see there). */
    struct sigaction front;
    struct sigaction before;       /* installed before the first engine: the last resort */
    /* The handler that had replaced wasmtime's, double-buffered so that the chaining handler never
     * reads a half-written one: replacing[replacing_slot], none while replacing_slot is -1. */
    struct sigaction replacing[2];
    int replacing_slot;
} guard;

static guard guards[] = {
    {.signal = SIGILL, .replacing_slot = -1},
    {.signal = SIGSEGV, .replacing_slot = -1},
    {.signal = SIGBUS, .replacing_slot = -1},
    {.signal = SIGFPE, .replacing_slot = -1},
};
#define GUARD_COUNT (sizeof guards / sizeof guards[0])

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int first_engine_done; /* under lock */

/* The frame of this thread's chain_fault while it runs a replacing handler, else 0. A fault handed
 * back to the chaining handler from inside that handler (Ray's re-raises through wasmtime's; the
 * official SDK's wasmtime calls its previous handler, wasmtime's, directly) runs in a deeper frame
 * of the same stack, and goes to the last resort, not round again. A replacing handler may also
 * never return (one that recovers its own faults by siglongjmp, as older wasmtimes did), leaving
 * the mark behind; a later fault's frame is then not deeper than it, since it starts again at the
 * top of the alternate signal stack, where this chain's handlers run (SA_ONSTACK; wasmtime gives
 * every thread that runs wasm one), so it is handed on as a fresh one. (On a thread without an
 * alternate stack a later fault deeper in its stack still goes to the last resort.) Stacks grow
 * down on every target wasmtime supports. Initial-exec TLS: reading it in a signal handler never
 * allocates. */
static __thread uintptr_t handing_from __attribute__((tls_model("initial-exec")));

static guard *guard_of(int signo) {
    for (size_t i = 0; i < GUARD_COUNT; i++)
        if (guards[i].signal == signo) return &guards[i];
    return NULL;
}

/* Do what `action` says for the signal, as the kernel would have (async-signal-safe). */
static void hand_on(const struct sigaction *action, int signo, siginfo_t *info, void *context) {
    if (action->sa_flags & SA_SIGINFO) {
        action->sa_sigaction(signo, info, context);
        return;
    }
    if (action->sa_handler != SIG_DFL && action->sa_handler != SIG_IGN) {
        action->sa_handler(signo);
        return;
    }
    /* The default disposition, installed: a fault kills the process when the faulting instruction
     * runs again on return; a signal sent by kill() or raise() (si_code <= 0) is sent again. */
    sigaction(signo, action, NULL);
    if (info == NULL || info->si_code <= 0) raise(signo);
}

/* wasmtime's previous handler for the guarded signals: faults that are not wasm traps. */
static void chain_fault(int signo, siginfo_t *info, void *context) {
    guard *g = guard_of(signo);
    if (g == NULL) return;
    int slot = __atomic_load_n(&g->replacing_slot, __ATOMIC_ACQUIRE);
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    if (slot >= 0 && !(handing_from != 0 && here < handing_from)) {
        handing_from = here;
        hand_on(&g->replacing[slot], signo, info, context);
        handing_from = 0;
        return;
    }
    hand_on(&g->before, signo, info, context);
}

static int is_chain(const struct sigaction *action) {
    return (action->sa_flags & SA_SIGINFO) && action->sa_sigaction == chain_fault;
}

static int same_handler(const struct sigaction *a, const struct sigaction *b) {
    return ((a->sa_flags ^ b->sa_flags) & SA_SIGINFO) == 0 && a->sa_sigaction == b->sa_sigaction;
}

/* In front of wasmtime's handler when wasmtime's handlers were installed before the first engine
 * (another user of the library came first): their previous handler is then not chain_fault but
 * whatever was there (the default action, faulthandler's under pytest...), so wasmtime's handler
 * cannot go first for every fault: restored alone, it cut the replacing handler out, and a trap of
 * another wasm runtime that had chained to it (the official SDK's libextism bundles its own
 * wasmtime) killed the process. Nor can this run wasmtime's handler and see afterwards whether it
 * claimed the fault: an unclaimed one goes to that previous handler, which may end the process.
 * So it decides first, by what only this library knows: a fault on a thread running one of its
 * calls (current_instance, set around every entry into its wasm, instantiation included) goes to
 * wasmtime's handler; any other fault goes where it went before signals_restore, to the replacing
 * handler (chain_fault), whose own chain reaches wasmtime's if it chains. */
static void front_fault(int signo, siginfo_t *info, void *context) {
    guard *g = guard_of(signo);
    if (g == NULL) return;
    if (current_instance != NULL)
        hand_on(&g->wasmtime, signo, info, context);
    else
        chain_fault(signo, info, context);
}

/* Is the handler a function of the wasmtime library (the one loaded by wasmtime_api.c)? */
static int in_wasmtime(const struct sigaction *action) {
    Dl_info handler, library;
    if (!(action->sa_flags & SA_SIGINFO) || wt.wasm_engine_new_with_config == NULL) return 0;
    if (!dladdr((void *)action->sa_sigaction, &handler)) return 0;
    if (!dladdr((void *)wt.wasm_engine_new_with_config, &library)) return 0;
    return handler.dli_fbase == library.dli_fbase;
}

/* An action running `handler`, with the flags wasmtime installs its own with. */
static struct sigaction action_of(void (*handler)(int, siginfo_t *, void *)) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = handler;
    action.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    return action;
}

void signals_engine_begin(void) {
    pthread_mutex_lock(&lock);
    if (first_engine_done) return;
    struct sigaction chaining = action_of(chain_fault);
    for (size_t i = 0; i < GUARD_COUNT; i++) sigaction(guards[i].signal, &chaining, &guards[i].before);
}

/* What wasmtime installed for g's signal while the first engine was created. */
static void record(guard *g) {
    struct sigaction now;
    if (sigaction(g->signal, NULL, &now) != 0) return;
    if (!is_chain(&now)) {
        /* Installed now, with the chaining handler as its previous one. */
        g->known = in_wasmtime(&now);
        if (g->known) g->wasmtime = g->front = now;
        return;
    }
    /* Nothing installed: wasmtime does not trap with this signal here, or its handlers were
     * installed earlier (with another previous handler) and may be the ones found before. */
    sigaction(g->signal, &g->before, NULL);
    g->known = in_wasmtime(&g->before);
    if (g->known) {
        g->wasmtime = g->before;
        g->front = action_of(front_fault);
    }
}

void signals_engine_end(void) {
    if (!first_engine_done) {
        first_engine_done = 1;
        for (size_t i = 0; i < GUARD_COUNT; i++) record(&guards[i]);
    }
    pthread_mutex_unlock(&lock);
}

/* Puts wasmtime's handler (or front_fault before it) back for g's signal if it was replaced;
 * returns whether it did. */
static int restore_one(guard *g) {
    struct sigaction now;
    if (sigaction(g->signal, NULL, &now) != 0 || same_handler(&now, &g->wasmtime) ||
        same_handler(&now, &g->front))
        return 0;
    if (!is_chain(&now)) {
        int next = g->replacing_slot == 0 ? 1 : 0;
        g->replacing[next] = now;
        __atomic_store_n(&g->replacing_slot, next, __ATOMIC_RELEASE);
    }
    return sigaction(g->signal, &g->front, NULL) == 0;
}

int signals_restore(void) {
    pthread_mutex_lock(&lock);
    int restored = 0, known = 0;
    for (size_t i = 0; i < GUARD_COUNT; i++) {
        if (!guards[i].known) continue;
        known = 1;
        if (restore_one(&guards[i])) restored |= 1 << guards[i].signal;
    }
    int result = first_engine_done && !known ? -1 : restored;
    pthread_mutex_unlock(&lock);
    return result;
}
