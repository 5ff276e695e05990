"""The layers of ARCHITECTURE.md hold: import-linter's contracts (pyproject.toml) pass on
the code, and fail when an arrow is planted that points back up."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import REPO_ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ("app", "ingest", "retrieval", "llm")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture
def copy_of_code(tmp_path) -> Path:
    for name in PACKAGES:
        shutil.copytree(
            REPO_ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_code_keeps_every_contract():
    result = lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "broken"),
    [
        ("retrieval/hybrid.py", "from app.settings import Settings", "Layers"),
        ("ingest/chunking.py", "import app.errors", "Below app, nothing reads settings"),
        ("llm/prompt.py", "from retrieval.types import Hit", "Layers"),
        ("ingest/pipeline.py", "from llm.base import LLM", "ingest never calls a model"),
        ("app/ui/chat.py", "from retrieval import Index", "The UI talks to services only"),
        ("app/ui/admin.py", "import chromadb", "The UI talks to services only"),
    ],
)
def test_a_planted_back_import_breaks_the_contract(copy_of_code, module, planted, broken):
    path = copy_of_code / module
    source = path.read_text(encoding="utf-8")
    # after the module docstring and `from __future__`, where an import would really go
    marker = "from __future__ import annotations\n"
    assert marker in source
    path.write_text(source.replace(marker, f"{marker}\n{planted}\n", 1), encoding="utf-8")
    result = lint_imports(copy_of_code)
    assert result.returncode != 0, result.stdout
    broken_section = result.stdout.split("Broken contracts", 1)[-1]
    assert broken in broken_section, result.stdout


def test_streamlit_app_imports_services_only():
    """streamlit_app.py is a module, not a package, so import-linter cannot take it as a
    root: its imports are read here."""
    tree = ast.parse((REPO_ROOT / "streamlit_app.py").read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported & {"retrieval", "llm", "ingest", "chromadb", "torch"} == set()
    assert "app" in imported
