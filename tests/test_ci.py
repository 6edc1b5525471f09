"""`.ci/run` runs exactly the README's test command (CI must need nothing the README does not say),
in a fresh virtual environment, with everything the suite imports installed by the test extra."""

import ast
import importlib.metadata
import re
import sys
import tomllib

from conftest import REPO_ROOT

#: Where the suite's imports live: the tests, what they import or run (the fuzz targets, the bench
#: modules, the package) and setup.py (the sanitizer test builds the extension with it).
SUITE_SOURCES = ("tests/*.py", "fuzz/*.py", "bench/*.py", "extism_fast/**/*.py", "setup.py")


def readme_test_command() -> str:
    readme = (REPO_ROOT / "README.md").read_text()
    commands = [line for line in readme.splitlines() if line.startswith("apt-get update")]
    assert len(commands) == 1, "README must show one test command"
    return commands[0]


def test_ci_runs_the_readme_test_command():
    ci = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == readme_test_command()


def test_the_test_command_installs_into_a_fresh_venv_and_tests_from_it():
    steps = [step.strip() for step in readme_test_command().split("&&")]
    venv = steps.index("python3 -m venv --clear .venv-test")
    assert steps[venv + 1] == ". .venv-test/bin/activate"
    assert steps.index("python3 -m pip install -q -e '.[test]'") > venv + 1
    assert steps[-1] == "python3 -m pytest -q"
    assert ".venv-test/" in (REPO_ROOT / ".gitignore").read_text().splitlines()


def test_the_readme_install_command_runs_the_bundled_example():
    readme = (REPO_ROOT / "README.md").read_text()
    assert "pip install . && extism-fast call examples/count_vowels.wat count_vowels" in readme
    assert (REPO_ROOT / "examples" / "count_vowels.wat").is_file()


def _strings_after_dash_m(args: list[ast.expr]) -> list[str]:
    """``X`` of each ``python, "-m", "X"`` among ``args`` (a subprocess command; the interpreter
    is ``sys.executable`` or a path ending in python)."""
    return [module.value for python, flag, module in zip(args, args[1:], args[2:])
            if "python" in ast.unparse(python) or ast.unparse(python) == "sys.executable"
            if isinstance(flag, ast.Constant) and flag.value == "-m"
            and isinstance(module, ast.Constant) and isinstance(module.value, str)]


def imported_modules(source: str) -> set[str]:
    """Top-level modules ``source`` imports, runs with ``python -m`` or imports by name
    (``pytest.importorskip``, ``importlib.import_module``)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, (ast.List, ast.Tuple)):
            names.update(_strings_after_dash_m(node.elts))
        elif isinstance(node, ast.Call):
            names.update(_strings_after_dash_m(node.args))
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called in ("importorskip", "import_module") and node.args and isinstance(node.args[0], ast.Constant):
                names.add(node.args[0].value)
    return {name.split(".")[0] for name in names if isinstance(name, str)}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_imported_modules_reads_every_kind_of_import():
    source = ("import a.b\nfrom c import d\nfrom . import e\nsubprocess.run([sys.executable, '-m', 'f.g'])\n"
              "_run(venv / 'bin' / 'python', '-m', 'h')\npytest.importorskip('i.j')\nimportlib.import_module('k')\n"
              "cli(['call', '-m', 'manifest.json'])\n")
    assert imported_modules(source) == {"a", "c", "f", "h", "i", "k"}


def test_the_test_extra_installs_everything_the_suite_imports():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["test"]
    installed = {_normalized(re.match(r"[A-Za-z0-9._-]+", r).group()) for r in requirements}
    local = {p.stem for p in REPO_ROOT.iterdir()} | {p.stem for p in (REPO_ROOT / "tests").glob("*.py")}
    local.add("pip")  # every venv has it (ensurepip)
    providers = importlib.metadata.packages_distributions()
    missing = {}
    for pattern in SUITE_SOURCES:
        for path in REPO_ROOT.glob(pattern):
            for module in imported_modules(path.read_text()):
                if module in sys.stdlib_module_names or module in local or module == "__future__":
                    continue
                # The distribution that provides it here; an absent one by its module name.
                dists = {_normalized(d) for d in providers.get(module, [module])}
                if not dists & installed:
                    missing.setdefault(module, []).append(str(path.relative_to(REPO_ROOT)))
    assert not missing, f"imported by the suite but not in pyproject's dependencies or test extra: {missing}"
