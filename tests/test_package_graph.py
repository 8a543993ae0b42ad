"""The one-way package graph: the import-linter contracts in setup.cfg hold, and they bite.

``.ci/run`` runs ``lint-imports`` too; this test checks the same contracts
wherever the tests run, and that they are not vacuous: a copy of the package
with one import pointing upwards breaks them.
"""

import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers import REPO

pytest.importorskip("importlinter")

_LINT = (
    "import sys; from importlinter.cli import lint_imports; "
    "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))"
)


def _lint(source_root: str) -> subprocess.CompletedProcess:
    """Runs import-linter with setup.cfg's contracts on the package under ``source_root``."""
    return subprocess.run(
        [sys.executable, "-c", _LINT, os.path.join(REPO, "setup.cfg")],
        cwd=source_root,
        env={**os.environ, "PYTHONPATH": source_root},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_package_keeps_its_import_contracts():
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    "module, upward_import, summary",
    [
        # Both contracts: the layers and the forbidden list.
        ("training/runner.py", "from mnist_research.inference import export", "0 kept, 2 broken"),
        # The layers contract alone: below training, and below the commands' flags.
        ("rundir/records.py", "from mnist_research.training import history", "1 kept, 1 broken"),
        ("data/pipeline.py", "from mnist_research import command", "1 kept, 1 broken"),
    ],
)
def test_an_upward_import_breaks_the_contracts(module, upward_import, summary, tmp_path):
    shutil.copytree(
        os.path.join(REPO, "mnist_research"),
        tmp_path / "mnist_research",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    with open(tmp_path / "mnist_research" / module, "a") as f:
        f.write(f"\n{upward_import}  # noqa\n")
    result = _lint(str(tmp_path))
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert summary in result.stdout
    package = "mnist_research." + module.split("/")[0]
    assert f"{package} is not allowed to import" in result.stdout
