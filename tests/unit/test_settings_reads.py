"""Every setting the code reads is defined in config/settings/, with its one default there: no
``getattr(settings, "X", default)`` (a second default that can disagree with the settings') anywhere in
apps/, notifier/ or config/, and no ``settings.X`` that the settings do not define."""
import ast
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("apps", "notifier", "config")


def _modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path, ast.parse(path.read_text(), filename=str(path))


def _imports_django_settings(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.ImportFrom) and node.module == "django.conf"
               and any(alias.name == "settings" and alias.asname is None for alias in node.names)
               for node in ast.walk(tree))


def _is_settings(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "settings"


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{node.lineno}"


def test_no_getattr_of_a_setting_with_a_default_of_its_own():
    found = [_where(path, node) for path, tree in _modules() for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
             and len(node.args) == 3 and _is_settings(node.args[0])]
    assert found == [], "getattr(settings, name, default): define the setting once in config/settings/ instead"


def test_every_setting_read_is_defined():
    undefined = []
    for path, tree in _modules():
        if not _imports_django_settings(tree):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _is_settings(node.value) and node.attr.isupper():
                name = node.attr
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
                  and node.args and _is_settings(node.args[0]) and len(node.args) > 1
                  and isinstance(node.args[1], ast.Constant)):
                name = node.args[1].value
            else:
                continue
            if not hasattr(settings, name):
                undefined.append(f"{_where(path, node)} {name}")
    assert undefined == []
