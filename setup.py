"""Build the C kernel (a static library, warnings are errors) and the Cython runtime that links it.

wasmtime's library is not linked: _runtime dlopens it from the installed `wasmtime` wheel at import
time (it has no SONAME, so a link-time dependency would only resolve through a fragile rpath).
"""

from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent
KERNEL_SOURCES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "kernel_c").glob("*.c"))
KERNEL_HEADERS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "kernel_c").glob("*.h"))
KERNEL_CFLAGS = ["-O2", "-std=gnu99", "-fPIC", "-Wall", "-Wextra", "-Werror"]

kernel = ("extism_fast_kernel", {"sources": KERNEL_SOURCES, "include_dirs": ["kernel_c"], "cflags": KERNEL_CFLAGS})

runtime = Extension(
    "extism_fast._runtime",
    sources=["extism_fast/_runtime.pyx"],
    include_dirs=["kernel_c"],
    # Cython's generated C is not ours to keep warning-free; the kernel above is.
    extra_compile_args=["-O2", "-Wno-unused-function", "-Wno-unused-parameter"],
    libraries=["extism_fast_kernel", "dl", "pthread"],
    # Rebuild when the kernel or an included part of the runtime changes.
    depends=KERNEL_SOURCES + KERNEL_HEADERS + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "extism_fast").glob("*.pxi")),
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
