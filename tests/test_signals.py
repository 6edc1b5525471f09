"""wasmtime's trap handlers against handlers other code installs later (README, "Wasm traps and
crash handlers"; docs/ARCHITECTURE.md, "Signals"; kernel_c/signals.h).

wasmtime turns faults in wasm code into traps with signal handlers it installs with the first
engine. A library that installs its own fatal-signal handlers afterwards without chaining (Ray's
core worker at ray.init(), faulthandler.enable()) used to get every trap, and the process died.
Each scenario runs in a subprocess (it may crash); the Ray ones share one (Ray starts in ~5 s).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# "run" traps with `unreachable` (SIGILL) when its input is 4 bytes long, else returns 0 with no
# output; "div" divides by zero (SIGFPE), "oob" reads far past its memory (SIGSEGV, guard pages).
TRAPS_WAT = """
(module
  (import "extism:host/env" "input_length" (func $len (result i64)))
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (if (i64.eq (call $len) (i64.const 4)) (then unreachable))
    i32.const 0)
  (func (export "div") (result i32)
    (i32.div_s (i32.const 1) (i32.wrap_i64 (call $len))))
  (func (export "oob") (result i32)
    (i32.load (i32.const 0x7ffffff0))))
"""

# Imported by every script: the plugin, a check that each trap kind raises, and a non-chaining
# handler (libc's _exit: the process exits with the signal's number as its status).
PRELUDE = f"""
import ctypes, signal, sys
import extism_fast as ef
TRAPS = ef.wat2wasm({TRAPS_WAT!r})
libc = ctypes.CDLL(None, use_errno=True)
libc.signal.restype = ctypes.c_void_p
libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
EXIT_HANDLER = ctypes.cast(libc._exit, ctypes.c_void_p).value

def install_exit_handlers(*signals):
    for s in signals:
        assert libc.signal(s, EXIT_HANDLER) != ctypes.c_void_p(-1).value

def traps(plugin):
    for name, data, text in (("run", b"boom", "unreachable"), ("div", b"", "divide by zero"),
                             ("oob", b"", "out of bounds")):
        try:
            plugin.call(name, data)
        except ef.TrapError as e:
            assert text in str(e), (name, str(e))
        else:
            raise AssertionError(name + " did not trap")
    assert plugin.call("run", b"ok") == b""
    print("traps ok", flush=True)
"""

FAULT_SIGNALS = "signal.SIGILL, signal.SIGFPE, signal.SIGSEGV"


def run_script(body: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run PRELUDE + body in a fresh Python; its extism_fast is this one (the PYTHONPATH and
    directory given stay first: the sanitizer run points them at its sanitized copy)."""
    path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(REPO_ROOT)]))
    env = dict(os.environ, PYTHONPATH=path)
    env.pop("PYTHONFAULTHANDLER", None)
    return subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(body)], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_a_non_chaining_handler_installed_later_no_longer_gets_wasm_traps():
    """Pure C level: _exit installed for SIGILL/SIGFPE/SIGSEGV after the first engine. A new
    instance or a new CompiledPlugin puts wasmtime's handlers back for every plugin, and so does
    restore_trap_handlers(); a fault outside wasm still reaches the replacing handler."""
    out = run_script(f"""
        compiled = ef.CompiledPlugin(TRAPS)
        early = ef.Plugin(compiled)
        traps(early)  # its store exists from now on
        install_exit_handlers({FAULT_SIGNALS})
        traps(ef.Plugin(compiled))  # a new store restores them
        install_exit_handlers({FAULT_SIGNALS})
        ef.CompiledPlugin(TRAPS)  # so does compiling
        traps(early)
        install_exit_handlers({FAULT_SIGNALS})
        restored = ef.restore_trap_handlers()
        print("restored", sorted(int(s) for s in restored), flush=True)
        assert ef.restore_trap_handlers() == []  # nothing replaced since
        traps(early)
        ctypes.string_at(0)  # a genuine segfault: the replacing handler's _exit(11)
        print("not reached", flush=True)
    """)
    restored = sorted(int(s) for s in (signal.SIGILL, signal.SIGFPE, signal.SIGSEGV))
    assert out.stdout.splitlines() == ["traps ok"] * 3 + [f"restored {restored}", "traps ok"], out.stderr
    assert out.returncode == signal.SIGSEGV, out.stderr


def test_the_official_sdk_dies_on_a_trap_there():
    """README, Differences: the official SDK keeps no watch on its handlers; a new plugin of its
    own made after a non-chaining handler was installed still dies on its first trap."""
    out = run_script("""
        import extism
        extism.Plugin(bytes(TRAPS))  # its first engine: its wasmtime's handlers
        install_exit_handlers(signal.SIGILL)
        try:
            extism.Plugin(bytes(TRAPS)).call("run", b"boom")
        except extism.Error:
            print("raised", flush=True)
    """)
    assert out.stdout == "" and out.returncode == signal.SIGILL, (out.stdout, out.stderr)


def test_a_signal_sent_to_the_process_still_reaches_the_replacing_handler():
    """kill(SIGILL) is no wasm trap: wasmtime hands it on, and the handler that had replaced
    wasmtime's gets it (not wasmtime's own previous one, the default action)."""
    out = run_script("""
        plugin = ef.Plugin(TRAPS)
        install_exit_handlers(signal.SIGILL)
        traps(plugin)  # a new store: wasmtime's handler is back
        import os
        os.kill(os.getpid(), signal.SIGILL)
        print("not reached", flush=True)
    """)
    assert out.stdout.splitlines() == ["traps ok"], out.stderr
    assert out.returncode == signal.SIGILL, out.stderr


def test_faulthandler_enabled_after_the_first_engine():
    """faulthandler.enable() after the first engine took every trap for a fatal error; now traps
    raise, and a genuine segfault still gets faulthandler's report (then the default action)."""
    out = run_script("""
        import faulthandler
        compiled = ef.CompiledPlugin(TRAPS)
        faulthandler.enable()
        traps(ef.Plugin(compiled))
        ctypes.string_at(0)
    """)
    assert out.stdout.splitlines() == ["traps ok"], out.stderr
    assert "Fatal Python error: Segmentation fault" in out.stderr and "string_at" in out.stderr, out.stderr
    assert out.returncode == -signal.SIGSEGV, out.stderr


def test_when_another_wasmtime_engine_came_first():
    """wasmtime-py's engine installed wasmtime's handlers before extism_fast's first engine: they are
    still recognised (they live in the same library) and put back, behind a front handler (their
    previous handler is the default action, not the chaining one) that gives them the faults of
    extism_fast's calls only: a fault outside them still reaches the replacing handler (it used to
    get the default action)."""
    out = run_script(f"""
        import wasmtime
        wasmtime.Engine()
        plugin = ef.Plugin(TRAPS)
        assert ef.restore_trap_handlers() == []  # nothing replaced yet: wasmtime's stay alone
        install_exit_handlers({FAULT_SIGNALS})
        assert sorted(ef.restore_trap_handlers()) == [signal.SIGILL, signal.SIGFPE, signal.SIGSEGV]
        assert ef.restore_trap_handlers() == []
        traps(plugin)
        traps(ef.Plugin(TRAPS))
        ctypes.string_at(0)
    """)
    assert out.stdout.splitlines() == ["traps ok"] * 2, out.stderr
    assert out.returncode == signal.SIGSEGV, out.stderr  # the replacing handler's _exit(11)


# Steps of a scenario mixing both SDKs in one process (the official SDK's libextism bundles its own
# wasmtime, whose handlers chain to the ones found at its first engine): "wasmtime" makes a
# wasmtime-py engine (wasmtime's handlers before extism_fast's first engine), "ours"/"official" a
# new plugin (for ours: a new store, which puts wasmtime's handlers back over the official SDK's),
# "faulthandler" is pytest's faulthandler.enable(),
# "ours-traps"/"official-traps" make every plugin of that SDK made so far trap (each kind; the
# official ones three times over), "restore" is restore_trap_handlers().
MIXED_STEPS = {
    "faulthandler": "import faulthandler; faulthandler.enable()",
    "wasmtime": "import wasmtime; wasmtime.Engine()",
    "ours": "mine.append(ef.Plugin(TRAPS)); mine[-1].call('run', b'ok')",
    "official": "theirs.append(extism.Plugin(bytes(TRAPS)))",
    "ours-traps": "for plugin in mine: traps(plugin)",
    "official-traps": "for plugin in theirs: official_traps(plugin)",
    "restore": "ef.restore_trap_handlers()",
}
MIXED_PRELUDE = """
import extism
mine, theirs = [], []

def official_traps(plugin):
    for _ in range(3):
        for name, data in (("run", b"boom"), ("div", b""), ("oob", b"")):
            try:
                plugin.call(name, data)
            except extism.Error:
                pass
            else:
                raise AssertionError(name + " did not trap")
    assert plugin.call("run", b"ok") == b""
    print("official traps ok", flush=True)
"""


@pytest.mark.parametrize("steps", [
    # tests/test_assemblyscript.py run alone: pytest's faulthandler, wasmtime-py's engine, ours, the
    # official one (wasmtime's previous handler is faulthandler's, which reports and ends the process)
    "faulthandler wasmtime ours official ours official-traps ours-traps official-traps ours official-traps",
    "wasmtime ours official ours official-traps ours-traps official-traps ours official-traps",
    "wasmtime official ours official-traps ours-traps ours official official-traps ours-traps",
    "ours official ours official-traps ours-traps official-traps ours official-traps ours-traps",
    "official ours official-traps ours-traps ours official official-traps ours-traps",
    "wasmtime ours official restore official-traps ours-traps restore official-traps",
], ids=lambda steps: steps.replace(" ", ","))
def test_both_sdks_trap_in_one_process(steps):
    """Traps of both SDKs, interleaved, whatever engine came first; every new store of ours puts
    wasmtime's handlers back over the official SDK's own, which still gets its traps (with
    wasmtime-py's engine first, the first official trap after that used to kill the process:
    SIGILL). Then a genuine segfault still ends the process with the default action."""
    names = steps.split()
    out = run_script(MIXED_PRELUDE + "\n".join(MIXED_STEPS[name] for name in names) +
                     "\nctypes.string_at(0)\n")
    expected, made = [], {"ours": 0, "official": 0}
    for name in names:
        made[name] = made.get(name, 0) + 1
        if name == "ours-traps":
            expected += ["traps ok"] * made["ours"]
        elif name == "official-traps":
            expected += ["official traps ok"] * made["official"]
    assert out.stdout.splitlines() == expected, out.stderr[-3000:]
    assert out.returncode == -signal.SIGSEGV, out.stderr[-3000:]


# A library that recovers SIGILLs of its own by siglongjmp out of its handler (as older wasmtimes
# did with their traps) and hands any other fault to the handler it replaced.
RECOVERING_HANDLER_C = r"""
#include <setjmp.h>
#include <signal.h>
#include <string.h>
static struct sigaction previous;
static sigjmp_buf recover;
static volatile sig_atomic_t guarded;

static void handler(int signo, siginfo_t *info, void *context) {
    if (guarded) {
        guarded = 0;
        siglongjmp(recover, 1);
    }
    if (previous.sa_flags & SA_SIGINFO) previous.sa_sigaction(signo, info, context);
    else sigaction(signo, &previous, NULL);
}

int install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = handler;
    action.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    return sigaction(SIGILL, &action, &previous);
}

int recovered_fault(void) { /* 1 once its SIGILL was recovered */
    if (sigsetjmp(recover, 1)) return 1;
    guarded = 1;
    __builtin_trap();
    return 0;
}
"""


@pytest.mark.parametrize("wasmtime_first", [False, True], ids=["ours-first", "wasmtime-py-first"])
def test_a_replacing_handler_that_jumps_out_of_its_fault(tmp_path, wasmtime_first):
    """The replacing handler never returns to the chaining handler when it recovers a fault of its
    own: the chaining handler's mark of a handler running used to stay, and the next fault it
    handed on went to the last resort (the second recovery died: SIGILL). Traps and recoveries
    interleave; a genuine segfault still ends the process."""
    library = tmp_path / "recovering.so"
    compiler = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")[0]
    subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-o", str(library), "-x", "c", "-"],
                   input=RECOVERING_HANDLER_C, text=True, check=True)
    out = run_script(f"""
        if {wasmtime_first}:
            import wasmtime
            wasmtime.Engine()
        plugin = ef.Plugin(TRAPS)
        traps(plugin)
        recovering = ctypes.CDLL({str(library)!r})
        assert recovering.install() == 0
        ef.restore_trap_handlers()
        for _ in range(3):
            assert recovering.recovered_fault() == 1
            traps(plugin)
            traps(ef.Plugin(TRAPS))  # a new store in between
        ctypes.string_at(0)
    """)
    assert out.stdout.splitlines() == ["traps ok"] * 7, out.stderr[-3000:]
    assert out.returncode == -signal.SIGSEGV, out.stderr[-3000:]


def test_the_dask_and_ray_worker_entry_point_restores_them():
    """Every Ray batch and Dask partition starts in _workers.pool_for, which puts the handlers
    back: here the pool's instance (and its store) already exists when they are replaced."""
    pytest.importorskip("pyarrow")
    out = run_script(f"""
        import pyarrow as pa
        from extism_fast.ray import PluginMapper
        mapper = PluginMapper(TRAPS, "run", errors="return")
        table = pa.table({{"text": ["ok", "boom"]}})
        for _ in range(2):
            errors = mapper(table).column("error").to_pylist()
            assert errors[0] is None and errors[1].startswith("TrapError: "), errors
            print("batch ok", flush=True)
            install_exit_handlers({FAULT_SIGNALS})
    """)
    assert out.stdout.splitlines() == ["batch ok"] * 2, out.stderr
    assert out.returncode == 0, out.stderr


RAY_INIT = """ray.init(num_cpus=1, _node_ip_address="127.0.0.1", include_dashboard=False, logging_level="ERROR",
         log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}})
print("ray pids", *[i.process.pid for infos in ray._private.worker._global_node.all_processes.values()
                    for i in infos], flush=True)"""

RAY_SCRIPT = f"""
import os
import ray
import pyarrow as pa
from extism_fast.ray import PluginMapper

compiled = ef.CompiledPlugin(TRAPS)
early = ef.Plugin(compiled)
traps(early)  # its store is made before ray.init()
{RAY_INIT}
traps(ef.Plugin(compiled))  # the driver: a new instance after ray.init() restores the handlers
traps(early)                # ... for every plugin of the process
table = pa.table({{"text": ["boom", "ok", "boom"]}})

@ray.remote
def task(mapper, batch):
    return mapper(batch)

mapped = ray.get(task.remote(PluginMapper(compiled, "run", errors="return"), table))
errors = mapped.column("error").to_pylist()
assert errors[1] is None and errors[0].startswith("TrapError: ") and "unreachable" in errors[0], errors
print("task ok", flush=True)
actor = ray.remote(PluginMapper).remote(compiled, "run")
try:
    ray.get(actor.__call__.remote(table))
except Exception as e:  # the batch's error, from a live worker
    assert "unreachable" in str(e), str(e)
else:
    raise AssertionError("no error")
assert ray.get(actor.__call__.remote(table.slice(1, 1))).column("output").to_pylist() == [b""]
print("actor ok", flush=True)
ray.shutdown()  # resets the fault signals to their default action (wasmtime's handlers too)
assert sorted(ef.restore_trap_handlers()) == [signal.SIGILL, signal.SIGFPE, signal.SIGSEGV]
traps(early)
{RAY_INIT}
ef.restore_trap_handlers()
ctypes.string_at(0)  # a genuine segfault: Ray's report, then the default action (faulthandler's
# handler, which ray.init() enabled, did not survive ray.shutdown(), and is not enabled again)
"""


def test_ray_driver_tasks_and_actors_get_trap_errors():
    """ray.init() in the driver, then traps in the driver (existing and new instances), in a Ray
    task and in a Ray actor running PluginMapper; after ray.shutdown(); a genuine segfault after a
    second ray.init() is still reported by Ray's handler."""
    pytest.importorskip("ray")
    pytest.importorskip("pyarrow")
    out = run_script(RAY_SCRIPT, timeout=240)
    lines = out.stdout.splitlines()
    try:
        assert [line for line in lines if not line.startswith("ray pids")] == \
            ["traps ok"] * 3 + ["task ok", "actor ok", "traps ok"], out.stderr[-3000:]
        assert "SIGSEGV received" in out.stderr, out.stderr[-3000:]  # Ray's handler (absl)
        assert out.returncode == -signal.SIGSEGV, out.stderr[-3000:]
    finally:  # Ray's processes die with their driver; make sure of it
        for line in lines:
            if line.startswith("ray pids"):
                for pid in map(int, line.split()[2:]):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
