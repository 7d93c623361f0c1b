"""The package surface: a curated flat namespace, light imports, layers kept apart."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import docvlm

HEAVY = ["torch", "transformers", "outlines", "cv2", "playwright"]
ROOT = Path(docvlm.__file__).parent


def test_all_is_sorted_unique_and_complete() -> None:
    assert docvlm.__all__ == sorted(set(docvlm.__all__))
    public = {n for n in vars(docvlm) if not n.startswith("_")}
    # submodules are attributes once something imports them; those not exported do not count
    submodules = {m.name for m in pkgutil.iter_modules(docvlm.__path__)} - set(docvlm.__all__)
    assert public - submodules == set(docvlm.__all__) - {"__version__"}
    for name in docvlm.__all__:
        assert getattr(docvlm, name) is not None


def test_import_is_light_and_documents_work_without_heavy_modules() -> None:
    code = textwrap.dedent(
        f"""
        import sys
        BLOCKED = {HEAVY!r}
        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"blocked import of {{name}}")
                return None
        sys.meta_path.insert(0, Blocker())
        import docvlm as dv
        doc = dv.open(dv.samples.invoice_pdf())
        page = doc[0]
        assert page.render(dpi=50).image.size[0] > 0
        assert len(page.words()) > 40
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED + ["pandas"])
        print("LOADED", loaded)
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert "LOADED []" in res.stdout


def _imports(path: Path) -> set[str]:
    """Modules a file imports at module level (not inside functions or TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_types_layer_imports_nothing_heavy_or_above_it() -> None:
    forbidden = {*HEAVY, "pymupdf", "fitz", "pandas", "PIL"}
    for path in (ROOT / "types").glob("*.py"):
        for mod in _imports(path):
            top = mod.split(".")[0]
            assert top not in forbidden, f"{path.name} imports {mod} at module level"
            if mod.startswith("docvlm."):
                assert mod.split(".")[1] in {"types", "errors"}, f"{path.name} imports {mod} from a higher layer"


def test_documents_layer_does_not_import_models_or_tasks() -> None:
    for path in (ROOT / "documents").glob("*.py"):
        for mod in _imports(path):
            assert not mod.startswith(("docvlm.models", "docvlm.tasks", "docvlm.workflows", "docvlm.cli")), (path, mod)
