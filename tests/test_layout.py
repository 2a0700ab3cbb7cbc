"""The package layout: data flows one way (model -> hw -> flow -> perf -> explore), with no import
upward, and the library never reads the repository's ``reports/`` or ``sim/``."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "fairyhw"
#: Each package and the rank of its stage; a module may import only packages of a lower or equal rank
#: (kernels and bench sit beside the flow: they use the model, nothing uses them but bench).
RANK = {"model": 0, "hw": 1, "flow": 2, "kernels": 2, "perf": 3, "bench": 3, "explore": 4}


def _imports(path: Path):
    """The fairyhw packages a module imports (relative or absolute), with the line."""
    parts = path.relative_to(PKG.parent).with_suffix("").parts        # ('fairyhw', 'perf', 'cli')
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(parts[:len(parts) - node.level])
                mod = base + (node.module.split(".") if node.module else [])
                names = [mod + [a.name] for a in node.names] if not node.module else [mod]
            elif node.module and node.module.split(".")[0] == "fairyhw":
                names = [node.module.split(".")]
            else:
                continue
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names if a.name.split(".")[0] == "fairyhw"]
        else:
            continue
        for n in names:
            if len(n) > 1 and n[1] in RANK:
                yield n[1], node.lineno


def test_no_import_upward():
    bad = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).parts
        if len(rel) < 2 or rel[0] not in RANK:
            continue
        for pkg, line in _imports(path):
            if RANK[pkg] > RANK[rel[0]]:
                bad.append(f"{path.relative_to(PKG.parent)}:{line} imports fairyhw.{pkg}")
    assert bad == []


def test_library_reads_no_repository_folder():
    """No path names the repository's ``sim/`` or ``reports/`` except as a command's default output or
    input folder (``default=`` of an argument), which the user may change."""
    bad = []
    for path in PKG.rglob("*.py"):
        tree = ast.parse(path.read_text())
        defaults = {id(k.value) for k in ast.walk(tree) if isinstance(k, ast.keyword) and k.arg == "default"}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in defaults \
                    and node.value.split("/")[0] in ("sim", "reports"):
                bad.append(f"{path.relative_to(PKG.parent)}:{node.lineno}: {node.value!r}")
    assert bad == []
