"""`.ci/run` runs exactly the README's test command (CI must need nothing the README does not say)."""

from conftest import REPO_ROOT


def test_ci_runs_the_readme_test_command():
    readme = (REPO_ROOT / "README.md").read_text()
    commands = [line for line in readme.splitlines() if line.startswith("apt-get update")]
    assert len(commands) == 1, "README must show one test command"
    ci = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == commands[0]


def test_the_readme_install_command_runs_the_bundled_example():
    readme = (REPO_ROOT / "README.md").read_text()
    assert "pip install . && extism-fast call examples/count_vowels.wat count_vowels" in readme
    assert (REPO_ROOT / "examples" / "count_vowels.wat").is_file()
