"""The package a user installs: an sdist that builds, a wheel built from that sdist, and the
README's first command run from the wheel installed in a fresh virtual environment.

Builds the extension once (`python -m build` makes the sdist, then the wheel from the unpacked
sdist, each in an isolated environment from PyPI); the venv gets the wheel's dependencies from PyPI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import extism_fast as ef

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "examples" / "count_vowels.wat"
# The Python modules of the package and its subpackages (manifest/, host/, scale/, cli/, runtime/).
PACKAGE_PY_FILES = {str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "extism_fast").rglob("*.py")}


def _run(*args: str | Path, cwd: Path | None = None, timeout: float = 900) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict[str, Path]:
    """The sdist, and the wheel `python -m build` built from it."""
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--outdir", out, REPO_ROOT)
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return {"sdist": sdist, "wheel": wheel}


def test_the_sdist_ships_the_sources_and_no_generated_files(dist):
    with tarfile.open(dist["sdist"]) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    expected = {"LICENSE", "README.md", "MANIFEST.in", "pyproject.toml", "setup.py",
                "extism_fast/_runtime.pyx", "extism_fast/_runtime.pyi", "extism_fast/py.typed",
                "extism_fast/_runtime.pxd", "extism_fast/includes/wasmtime.pxd", "extism_fast/includes/kernel.pxd",
                "pdk/c/extism-pdk.h", "examples/count_vowels.wat", "examples/count_vowels.c",
                "examples/count_vowels_server.py", "examples/hello_host.wat"}
    expected |= {str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "extism_fast").glob("*.pxi")}
    expected |= PACKAGE_PY_FILES
    expected |= {str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "kernel_c").glob("*.[ch]")}
    assert expected <= names, sorted(expected - names)
    assert "extism_fast/_runtime.c" not in names
    assert not [n for n in names if n.endswith((".so", ".o", ".a", ".wasm"))]


def test_the_wheel_ships_the_extension_and_no_generated_c(dist):
    with zipfile.ZipFile(dist["wheel"]) as whl:
        names = set(whl.namelist())
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        text = whl.read(metadata).decode()
    assert "extism_fast/_runtime.c" not in names
    assert [n for n in names if n.startswith("extism_fast/_runtime.") and n.endswith(".so")]
    assert {"extism_fast/py.typed", "extism_fast/_runtime.pyi"} <= names
    assert PACKAGE_PY_FILES <= names, sorted(PACKAGE_PY_FILES - names)  # every subpackage's modules
    assert "Classifier: Operating System :: POSIX :: Linux" in text
    assert "Provides-Extra: arrow" in text
    assert [n for n in names if n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE")]


def test_the_wheel_metadata_says_license_authors_urls_and_tested_pythons(dist):
    """PEP 639 metadata (an SPDX expression and the license file, no license classifier), the
    authors, the keywords, the project URLs, and a classifier for each CPython the suite runs on."""
    import email.parser

    with zipfile.ZipFile(dist["wheel"]) as whl:
        (metadata,) = [n for n in whl.namelist() if n.endswith(".dist-info/METADATA")]
        message = email.parser.Parser().parsestr(whl.read(metadata).decode())
    assert message["Metadata-Version"] >= "2.4"
    assert message["License-Expression"] == "BSD-3-Clause"
    assert message.get_all("License-File") == ["LICENSE"]
    assert message["License"] is None  # the expression replaces the free-text field
    classifiers = message.get_all("Classifier")
    assert not [c for c in classifiers if c.startswith("License ::")]
    assert message["Author"] == "the extism_fast authors"
    assert {"extism", "webassembly", "wasmtime"} <= set(message["Keywords"].split(","))
    urls = dict(line.split(", ", 1) for line in message.get_all("Project-URL"))
    assert urls["Official Python SDK"] == "https://github.com/extism/python-sdk"
    assert all(url.startswith("https://") for url in urls.values())
    tested = f"Programming Language :: Python :: {sys.version_info.major}.{sys.version_info.minor}"
    versions = [c for c in classifiers if c.count("::") == 2 and c.startswith("Programming Language :: Python :: 3.")]
    assert tested in versions, versions
    assert message["Requires-Python"] == ">=3.11"


def test_the_readme_command_runs_from_the_wheel_in_a_fresh_venv(dist, tmp_path):
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    _run(venv / "bin" / "python", "-m", "pip", "install", "-q", dist["wheel"])
    # Run away from the checkout, so that only the installed package can be imported.
    where = _run(venv / "bin" / "python", "-c", "import extism_fast; print(extism_fast.__file__)", cwd=tmp_path)
    assert Path(where.strip()).is_relative_to(venv)
    out = _run(venv / "bin" / "extism-fast", "call", EXAMPLE, "count_vowels", "--input", "Hello World",
               cwd=tmp_path)
    with ef.Plugin(EXAMPLE) as plugin:
        expected = plugin.call("count_vowels", "Hello World").decode()
    assert out.strip() == expected == '{"count": 3}'
