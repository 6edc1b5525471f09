"""Build the C kernel and the Cython runtime into one extension module, extism_fast._runtime.

wasmtime's library is not linked: _runtime dlopens it from the installed `wasmtime` wheel at import
time (it has no SONAME, so a link-time dependency would only resolve through a fragile rpath).
"""

from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

ROOT = Path(__file__).parent
KERNEL_SOURCES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "kernel_c").glob("*.c"))

runtime = Extension(
    "extism_fast._runtime",
    sources=["extism_fast/_runtime.pyx", *KERNEL_SOURCES],
    include_dirs=["kernel_c"],
    extra_compile_args=["-O2", "-std=gnu99", "-Wall", "-Wextra", "-Wno-unused-function",
                        "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
    libraries=["dl", "pthread"],
)

setup(
    ext_modules=cythonize(
        [runtime],
        include_path=["."],
        compiler_directives={"language_level": "3", "embedsignature": True},
    ),
)
