"""Build the C kernel (a static library, warnings are errors) and the Cython runtime that links it.

wasmtime's library is not linked: _runtime dlopens it from the installed `wasmtime` wheel at import
time (it has no SONAME, so a link-time dependency would only resolve through a fragile rpath).

EXTISM_FAST_SANITIZE=1 builds both with AddressSanitizer and UndefinedBehaviorSanitizer (any UB
report aborts). Such a build only imports into a Python started with libasan and libubsan in
LD_PRELOAD; tests/test_sanitizers.py builds one into a copy of the tree and runs tests with it.
"""

import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent
KERNEL_SOURCES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "kernel_c").glob("*.c"))
KERNEL_HEADERS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "kernel_c").glob("*.h"))
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
RUNTIME_SANITIZE_FLAGS = SANITIZE_FLAGS + ["-O0"] if SANITIZE else []

kernel = ("extism_fast_kernel", {"sources": KERNEL_SOURCES, "include_dirs": ["kernel_c"], "cflags": KERNEL_CFLAGS + KERNEL_SANITIZE_FLAGS})

runtime = Extension(
    "extism_fast._runtime",
    sources=["extism_fast/_runtime.pyx"],
    include_dirs=["kernel_c"],
    # Cython's generated C is not ours to keep warning-free; the kernel above is.
    extra_compile_args=["-O2", "-Wno-unused-function", "-Wno-unused-parameter"] + RUNTIME_SANITIZE_FLAGS,
    extra_link_args=SANITIZE_FLAGS,
    libraries=["extism_fast_kernel", "dl", "pthread"],
    # Rebuild when the kernel or an included part of the runtime changes.
    depends=KERNEL_SOURCES + KERNEL_HEADERS + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "extism_fast").glob("*.px[id]")),
)


class build_ext_with_kernel(build_ext):
    """build_ext that builds the kernel library it links first, so that
    `python setup.py build_ext --inplace` works on its own."""

    def run(self) -> None:
        self.run_command("build_clib")
        super().run()


setup(
    cmdclass={"build_ext": build_ext_with_kernel},
    libraries=[kernel],
    ext_modules=cythonize(
        [runtime],
        include_path=["."],
        compiler_directives={"language_level": "3", "embedsignature": True},
    ),
)
