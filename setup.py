"""Build the C kernel (a static library, warnings are errors) and the Cython runtime that links it.

wasmtime's library is not linked: _runtime dlopens it from the installed `wasmtime` wheel at import
time (it has no SONAME, so a link-time dependency would only resolve through a fragile rpath).

EXTISM_FAST_SANITIZE=1 builds both with AddressSanitizer and UndefinedBehaviorSanitizer (any UB
report aborts). Such a build only imports into a Python started with libasan and libubsan in
LD_PRELOAD; tests/test_sanitizers.py builds one into a copy of the tree and runs tests with it.

The C struct of the options C enforces, instance_settings, is generated first into
build/generated/instance_settings.h from their one declaration in Python (extism_fast/runtime/declarations.py,
C_SETTINGS: docs/ARCHITECTURE.md, "How to add... A manifest option"); every compilation of kernel_c
gets that directory in its include path. The runtime's table of the same fields (their names, types,
their values for a manifest that sets no option, and which manifest option, converted how, sets
each: declarations.built_settings) is generated with it, into
build/generated/built_settings.pxi, which _runtime.pyx includes and hands to runtime/options.py
(no module for a first plugin to load for it).
"""

import importlib
import os
import sys
import types
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_clib import build_clib
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent
KERNEL_SOURCES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "kernel_c").glob("*.c"))
KERNEL_HEADERS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "kernel_c").glob("*.h"))
GENERATED = "build/generated"  # headers made from Python declarations (relative to ROOT, as the paths above)
SETTINGS_HEADER = f"{GENERATED}/instance_settings.h"
SETTINGS_TABLE = f"{GENERATED}/built_settings.pxi"


def write_settings_files() -> None:
    """Write SETTINGS_HEADER and SETTINGS_TABLE from runtime/declarations.py's c_settings_header() and
    c_settings_table(), each only when its text changes (a rewrite would rebuild every kernel object).
    The package's __init__ imports the extension this builds: declarations.py is imported under a bare
    stand-in package instead."""
    saved = {name: module for name, module in sys.modules.items() if name.split(".")[0] == "extism_fast"}
    package = types.ModuleType("extism_fast")
    package.__path__ = [str(ROOT / "extism_fast")]
    sys.modules["extism_fast"] = package
    try:
        declarations = importlib.import_module("extism_fast.runtime.declarations")
        texts = {SETTINGS_HEADER: declarations.c_settings_header(), SETTINGS_TABLE: declarations.c_settings_table()}
    finally:
        for name in [name for name in sys.modules if name.split(".")[0] == "extism_fast"]:
            del sys.modules[name]
        sys.modules.update(saved)
    for relative, text in texts.items():
        path = ROOT / relative
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


write_settings_files()
# Hidden visibility: the kernel's functions are called only from inside the extension, so calls
# between them are direct (no PLT) and may be inlined (semantic interposition would forbid both).
KERNEL_CFLAGS = ["-O2", "-std=gnu99", "-fPIC", "-fvisibility=hidden", "-Wall", "-Wextra", "-Werror"]
SANITIZE = os.environ.get("EXTISM_FAST_SANITIZE", "") == "1"
# Frame pointers give reports every frame. Python's CFLAGS carry -fwrapv, which defines signed
# overflow and so hides it from UBSan: -fno-wrapv undoes that. The kernel is built with -O1 (ASan's
# advice: fast, and close to what ships); Cython's 80,000 generated lines with -O0 (4x faster to build).
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
                  "-fno-omit-frame-pointer", "-fno-wrapv", "-g"] if SANITIZE else []
KERNEL_SANITIZE_FLAGS = SANITIZE_FLAGS + ["-O1"] if SANITIZE else []
# Link-time optimization of the kernel: on every kernel call one unit calls another (an import
# callback into the allocator, call_run into the kernel and the ticker), and LTO inlines across
# units (~25 ns less of a ~500 ns small call: bench "limit" row). Fat objects, so that the static
# library links even where the linker has no LTO plugin. Not in sanitizer builds, nor with a
# compiler that refuses the flags (probed by build_clib_with_lto).
KERNEL_LTO_FLAGS = [] if SANITIZE else ["-flto", "-ffat-lto-objects"]
RUNTIME_SANITIZE_FLAGS = SANITIZE_FLAGS + ["-O0"] if SANITIZE else []

# obj_deps: a changed header (the generated one included) rebuilds every kernel object.
kernel = ("extism_fast_kernel", {"sources": KERNEL_SOURCES, "include_dirs": ["kernel_c", GENERATED],
                                 "obj_deps": {"": KERNEL_HEADERS + [SETTINGS_HEADER]},
                                 "cflags": KERNEL_CFLAGS + KERNEL_SANITIZE_FLAGS})

runtime = Extension(
    "extism_fast._runtime",
    sources=["extism_fast/_runtime.pyx"],
    include_dirs=["kernel_c", GENERATED],
    # Cython's generated C is not ours to keep warning-free; the kernel above is.
    extra_compile_args=["-O2", "-Wno-unused-function", "-Wno-unused-parameter"] + RUNTIME_SANITIZE_FLAGS,
    extra_link_args=SANITIZE_FLAGS,
    libraries=["extism_fast_kernel", "dl", "pthread"],
    # Rebuild when the kernel or an included part of the runtime changes.
    depends=KERNEL_SOURCES + KERNEL_HEADERS + [SETTINGS_HEADER, SETTINGS_TABLE] + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "extism_fast").glob("*.px[id]")),
)


def compiler_takes(compiler, flags: list[str]) -> bool:
    """Does `compiler` (a setuptools CCompiler) compile C with these flags?"""
    import tempfile

    from setuptools.errors import CompileError

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "probe.c"
        source.write_text("int probe(int x) { return x + 1; }\n")
        try:
            compiler.compile([str(source)], output_dir=tmp, extra_postargs=flags)
        except CompileError:
            return False
    return True


class build_clib_with_lto(build_clib):
    """build_clib that adds KERNEL_LTO_FLAGS to the kernel's flags when the compiler takes them
    (`lto` tells build_ext to link with them too)."""

    lto = False

    def build_libraries(self, libraries) -> None:
        self.lto = bool(KERNEL_LTO_FLAGS) and compiler_takes(self.compiler, KERNEL_LTO_FLAGS)
        if self.lto:
            libraries = [(name, {**info, "cflags": info["cflags"] + KERNEL_LTO_FLAGS}) for name, info in libraries]
        super().build_libraries(libraries)


class build_ext_with_kernel(build_ext):
    """build_ext that builds the kernel library it links first, so that
    `python setup.py build_ext --inplace` works on its own."""

    def run(self) -> None:
        self.run_command("build_clib")
        if self.get_finalized_command("build_clib").lto:
            for extension in self.extensions:  # the link step inlines the kernel's units into each other
                extension.extra_link_args = [*extension.extra_link_args, "-flto", "-O2"]
        super().run()


setup(
    cmdclass={"build_clib": build_clib_with_lto, "build_ext": build_ext_with_kernel},
    libraries=[kernel],
    ext_modules=cythonize(
        [runtime],
        include_path=[".", GENERATED],  # GENERATED: built_settings.pxi
        compiler_directives={"language_level": "3", "embedsignature": True},
    ),
)
