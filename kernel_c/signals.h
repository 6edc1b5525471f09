/*
 * signals.h - wasmtime's trap handlers kept first in line (docs/ARCHITECTURE.md, "Signals").
 *
 * wasmtime turns faults raised by wasm code (SIGILL for `unreachable`, SIGSEGV for out-of-bounds
 * accesses, SIGFPE for division by zero; SIGBUS only where it installs one) into traps with signal
 * handlers it installs once per process, with the first engine. Code that installs its own fatal
 * signal handlers later without handing faults on in their context (Ray's core worker at
 * ray.init() and in every Ray worker, faulthandler.enable() after the first engine) leaves wasm
 * traps to them, and the process dies on the first trap.
 *
 * Owns: the record of wasmtime's handlers (taken around the first engine's creation), the chaining
 * handler, and signals_restore, which puts wasmtime's handlers back and hands the faults they do
 * not claim to the handler that had replaced them:
 *
 *   fault -> wasmtime's handler -> a wasm trap: handled (the call returns the trap)
 *                               -> not wasm: its previous handler, which is signals.c's chaining
 *                                  handler (installed just before the first engine) -> the handler
 *                                  that had replaced wasmtime's (Ray's report, faulthandler's...)
 *                                  -> what that hands on to, re-entering the chaining handler
 *                                  (deeper than the frame that handed it on) -> the handler
 *                                  installed before the first engine (the default action: the
 *                                  process dies)
 *
 * When wasmtime's handlers were installed before the first engine (another user of the wasmtime
 * library, e.g. wasmtime-py, came first), their previous handler is not the chaining handler, and
 * signals_restore installs a front handler instead of wasmtime's: a fault on a thread running one
 * of our calls goes to wasmtime's handler (then where wasmtime sends it); any other fault to the
 * replacing handler, as before the restore (so the official SDK's own wasmtime, which had chained
 * to ours, still gets its traps).
 *
 * Nothing here runs on the per-call path: checking costs one sigaction query per guarded signal.
 */
#ifndef EXTISM_FAST_SIGNALS_H
#define EXTISM_FAST_SIGNALS_H

/* signals_engine_begin / signals_engine_end: bracket every engine creation (engine.c). Around the
 * process's first one they record wasmtime's handlers: begin installs the chaining handler (so
 * that wasmtime takes it as its previous handler), end reads what wasmtime installed. When
 * wasmtime's handlers were installed earlier (other code created a wasmtime engine first), the
 * chaining handler is removed again and a handler inside the wasmtime library found in its place
 * is recorded as wasmtime's (faults it does not claim then go where wasmtime sends them). begin
 * takes a lock that end releases; both must be called, in that order, even if creation fails. */
void signals_engine_begin(void);
void signals_engine_end(void);

/* signals_restore: every guarded signal whose handler is no longer wasmtime's (nor the front
 * handler) gets wasmtime's, or the front handler, back; the replacing handler becomes the chaining
 * handler's next one (see above). Returns the
 * signals restored as a mask of (1 << signal number); 0 also when no engine exists yet; -1 when
 * an engine exists but no wasmtime handler is known (replaced before the first engine of this
 * library): traps then reach whatever handler is installed. Thread-safe; not async-signal-safe. */
int signals_restore(void);

#endif
