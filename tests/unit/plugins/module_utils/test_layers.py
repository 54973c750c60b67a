"""The shape of plugins/, read with ast: imports only at module level, and module_utils in layers, each file
importing only the files below it."""

import ast
import os
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[4] / "plugins"
MODULE_UTILS = "ansible_collections.otp.release.plugins.module_utils"

# Lowest layer first: a file may import only files listed before it.
LAYERS = ["_erlterm", "_versions", "_errors", "_relfiles", "_files", "_proc", "_tarball", "_erts", "_beam", "_review",
          "_root", "_identity", "_node", "_session", "_repair", "_unpack", "_verify", "_change", "_remove", "_oneoff", "_pipeline",
          "_argspec", "_module"]


def parsed(path):
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def plugin_files():
    return sorted(p for p in PLUGINS.rglob("*.py") if p.name != "__init__.py")


def module_utils_files():
    return sorted(p for p in (PLUGINS / "module_utils").glob("*.py") if p.name != "__init__.py")


def _catches_import_error(handler):
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(name, ast.Name) and name.id in ("ImportError", "ModuleNotFoundError") for name in names)


def allowed_imports(tree):
    """Imports at module level, and inside a module-level try whose handlers catch ImportError."""
    allowed = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            allowed.add(node)
        elif isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers):
            for inner in node.body + node.orelse + [s for h in node.handlers for s in h.body]:
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    allowed.add(inner)
    return allowed


def misplaced_import_lines(path):
    tree = parsed(path)
    allowed = allowed_imports(tree)
    return sorted(node.lineno for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)) and node not in allowed)


def sibling_imports(path):
    """[(line, name)] of the module_utils files this file imports, whatever the import form."""
    found = []
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from ._x import y, from . import _x
                base = node.module.split(".")[0] if node.module else None
                found += [(node.lineno, base)] if base else [(node.lineno, a.name) for a in node.names]
            elif node.module == MODULE_UTILS:
                found += [(node.lineno, alias.name) for alias in node.names]
            elif node.module and node.module.startswith(MODULE_UTILS + "."):
                found.append((node.lineno, node.module[len(MODULE_UTILS) + 1:].split(".")[0]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name[len(MODULE_UTILS) + 1:].split(".")[0]) for a in node.names
                      if a.name.startswith(MODULE_UTILS + ".")]
    return found


def test_every_plugin_file_is_read():
    names = [p.stem for p in module_utils_files()]
    assert "_erlterm" in names and "_module" in names and len(plugin_files()) > len(names)


@pytest.mark.parametrize("path", plugin_files(), ids=lambda p: str(p.relative_to(PLUGINS)))
def test_imports_only_at_module_level(path):
    """An import inside a function or class hides a dependency from the reader and from these layer checks; only the
    guarded optional import (try/except ImportError at module level) may sit in a block."""
    assert misplaced_import_lines(path) == [], "%s: move the imports on these lines to the top of the file" % path


@pytest.mark.parametrize("path", module_utils_files(), ids=lambda p: p.name)
def test_module_utils_import_only_lower_layers(path):
    assert path.stem in LAYERS, (
        "%s is a new module_utils file: place it in LAYERS in %s, above every file it imports and below every file "
        "that imports it." % (path.name, os.path.relpath(__file__, str(PLUGINS.parent))))
    lower = LAYERS[:LAYERS.index(path.stem)]
    wrong = ["line %d imports %s" % (line, name) for line, name in sibling_imports(path) if name not in lower]
    assert wrong == [], "%s may import only %s" % (path.name, ", ".join(lower) or "no other module_utils file")


@pytest.mark.parametrize("path", module_utils_files(), ids=lambda p: p.name)
def test_module_utils_never_import_controller_code(path):
    """module_utils run on the host: plugin_utils, action and filter plugins are not there."""
    controller = ("ansible_collections.otp.release.plugins.", "ansible.plugins", "ansible.errors")
    imported = [n.module for n in ast.walk(parsed(path)) if isinstance(n, ast.ImportFrom) and n.module]
    imported += [a.name for n in ast.walk(parsed(path)) if isinstance(n, ast.Import) for a in n.names]
    assert [m for m in imported if m.startswith(controller) and not m.startswith(MODULE_UTILS)] == []


def test_the_checks_see_what_they_must_refuse(tmp_path):
    """The checks themselves: a function-level import, a guarded one, and every import form of a sibling."""
    sample = tmp_path / "_sample.py"
    sample.write_text(
        "import os\n"
        "try:\n    import jmespath\nexcept ImportError:\n    jmespath = None\n"
        "from ansible_collections.otp.release.plugins.module_utils._node import Channel\n"
        "from ansible_collections.otp.release.plugins.module_utils import _root\n"
        "import ansible_collections.otp.release.plugins.module_utils._files\n"
        "from ._proc import run_command\n"
        "def f():\n    import json\n    return json\n"
        "class C(object):\n    from os import path\n")
    assert misplaced_import_lines(sample) == [11, 14]
    assert sorted(name for _line, name in sibling_imports(sample)) == ["_files", "_node", "_proc", "_root"]
