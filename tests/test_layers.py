"""The layer contract of ARCHITECTURE.md, checked: import-linter's contracts (pyproject.toml) and what they cannot say.

- the contracts hold: layers (imports only point down, nothing imports the CLI), no import cycles between packages or
  between the modules of a package, private modules used only inside their own package, tasks and workflows never
  importing a concrete backend;
- they fail on a violation (a copy of the package with one upward import, one private import and one cycle);
- no private name crosses a package boundary (``from docvlm.x.y import _name``, ``page._method()``);
- tasks never see a model family: they import only the profile seam, never a concrete profile.
"""

from __future__ import annotations

import ast
import functools
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "docvlm"
PYPROJECT = ROOT / "pyproject.toml"

pytest.importorskip("importlinter")

LINT = (
    "import sys; from importlinter.cli import lint_imports; "
    f"sys.exit(lint_imports(config_filename={str(PYPROJECT)!r}, no_cache=True, no_logo=True))"
)


def _lint(pythonpath: Path) -> subprocess.CompletedProcess[str]:
    """import-linter on the ``docvlm`` package found first in ``pythonpath`` (also the working directory)."""
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run([sys.executable, "-c", LINT], capture_output=True, text=True, env=env, cwd=pythonpath,
                          timeout=120)


def test_import_contracts_hold() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


def test_import_contracts_catch_violations(tmp_path: Path) -> None:
    copy = tmp_path / "docvlm"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.npz"))

    def append(relative: str, line: str) -> None:
        path = copy / relative
        path.write_text(path.read_text() + f"\n{line}  # noqa\n")

    append("types/geometry.py", "import docvlm.cli")  # upward, and into the CLI
    append("models/messages.py", "from docvlm.tasks._page import view")  # upward and private
    append("documents/pdf.py", "import docvlm.documents._open")  # _open -> pdf -> _open: a cycle
    result = _lint(tmp_path)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "0 kept, 3 broken" not in out and "broken" in out
    assert "docvlm.types is not allowed to import docvlm.cli" in out
    assert "docvlm.models is not allowed to import docvlm.tasks" in out
    assert "docvlm.models.messages -> docvlm.tasks._page" in out  # private_modules
    assert "No cycles are allowed in docvlm.documents" in out


# ---------------------------------------------------------------------------------------------------------------
# what import-linter cannot see: private names, and families in tasks
# ---------------------------------------------------------------------------------------------------------------
def _package_of(path: Path) -> str:
    """``docvlm.tasks`` for docvlm/tasks/x.py; root modules are each their own package (``docvlm.cli``)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:2])


@functools.cache
def _trees() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), str(path)) for path in sorted(PACKAGE.rglob("*.py"))}


def _kernel(module: str) -> bool:
    """Root private modules (``docvlm._deadline``, ...) are the kernel every layer shares."""
    parts = module.split(".")
    return len(parts) == 2 and parts[1].startswith("_")


def test_no_private_name_is_imported_across_packages() -> None:
    bad = []
    for path, tree in _trees().items():
        here = _package_of(path)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("docvlm")):
                continue
            there = ".".join(node.module.split(".")[:2])
            if there == here or node.module == "docvlm":
                continue
            names = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
            if names and not _kernel(node.module):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {names} from {node.module}")
    assert not bad, "\n".join(bad)


def test_no_private_method_is_called_across_packages() -> None:
    """``obj._name(...)`` where ``_name`` is a method defined only in other packages' classes."""
    trees = _trees()
    defined: dict[str, set[str]] = defaultdict(set)  # private method or attribute name -> packages defining it
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("_"):
                defined[node.name].add(_package_of(path))
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and node.attr.startswith("_"):
                defined[node.attr].add(_package_of(path))
    bad = []
    for path, tree in trees.items():
        here = _package_of(path)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name, owner = node.func.attr, node.func.value
            if not name.startswith("_") or name.startswith("__"):
                continue
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
                continue
            if defined.get(name) and here not in defined[name]:
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} calls {ast.unparse(node.func)} "
                           f"(defined in {', '.join(sorted(defined[name]))})")
    assert not bad, "\n".join(bad)


#: What tasks may take from the profiles: the seam, not a family.
PROFILE_SEAM = {"FamilyProfile", "TaskRequest", "LabeledBox", "LabeledPoint", "LabeledPolygon", "LabeledQuad",
                "Outline", "Segment", "BoxConvention"}


def test_tasks_never_see_a_model_family() -> None:
    bad = []
    for path, tree in _trees().items():
        if _package_of(path) != "docvlm.tasks":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("docvlm.models.profiles"):
                if node.module != "docvlm.models.profiles":
                    bad.append(f"{path.name}:{node.lineno} imports the family module {node.module}")
                bad += [f"{path.name}:{node.lineno} imports {a.name}" for a in node.names if a.name not in PROFILE_SEAM]
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance"
                    and "Profile" in ast.unparse(node.args[1])):
                bad.append(f"{path.name}:{node.lineno} branches on a profile class: {ast.unparse(node)}")
    assert not bad, "\n".join(bad)
