/* sigint.c - the counting SIGINT handler; contract in sigint.h. */
#define _POSIX_C_SOURCE 200809L
#include "sigint.h"

#include <signal.h>
#include <stddef.h>

uint64_t sigint_arrivals; /* atomic */

/* The handler found in place when the counting one was installed, double-buffered so that a
 * handler running on another thread never reads a half-written one: next_action[next_slot],
 * none while next_slot is -1. */
static struct sigaction next_action[2];
static int next_slot = -1; /* atomic */

/* Count, then do what the handler found in place would have done (async-signal-safe). */
static void count_sigint(int signo, siginfo_t *info, void *context) {
    __atomic_add_fetch(&sigint_arrivals, 1, __ATOMIC_RELEASE);
    int slot = __atomic_load_n(&next_slot, __ATOMIC_ACQUIRE);
    if (slot < 0) return;
    const struct sigaction *next = &next_action[slot];
    if (next->sa_flags & SA_SIGINFO)
        next->sa_sigaction(signo, info, context);
    else if (next->sa_handler != SIG_DFL && next->sa_handler != SIG_IGN)
        next->sa_handler(signo);
}

static int is_counting(const struct sigaction *action) {
    return (action->sa_flags & SA_SIGINFO) && action->sa_sigaction == count_sigint;
}

int sigint_watch(void) {
    struct sigaction now;
    if (sigaction(SIGINT, NULL, &now) != 0) return 0;
    if (is_counting(&now)) return 1;
    if (!(now.sa_flags & SA_SIGINFO) && (now.sa_handler == SIG_DFL || now.sa_handler == SIG_IGN)) return 0;
    int slot = __atomic_load_n(&next_slot, __ATOMIC_RELAXED) == 0 ? 1 : 0;
    next_action[slot] = now;
    __atomic_store_n(&next_slot, slot, __ATOMIC_RELEASE);
    struct sigaction counting = now; /* its mask and flags (Python's: SA_ONSTACK, no SA_RESTART) */
    counting.sa_sigaction = count_sigint;
    counting.sa_flags = now.sa_flags | SA_SIGINFO;
    return sigaction(SIGINT, &counting, NULL) == 0;
}
