"""The shape of the code (issue 23): dependencies point one way, modules stay small, private names stay
private, and every status change goes through ``apps.notifications.lifecycle``.

The checks read the source (``ast``, regular expressions) and, for the imports, run each module of
``apps/notifications`` and ``notifier`` in an interpreter where nothing of the project but Django's setup
(settings, models, app configs) has been imported before it.
"""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("apps", "notifier")
MAX_LINES = 400


def _sources(*roots: str, skip_migrations: bool = True) -> dict[str, Path]:
    """Module name -> file, for every module under ``roots``."""
    found = {}
    for root in roots:
        for path in sorted((ROOT / root).rglob("*.py")):
            if skip_migrations and "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imports(module: str, path: Path, modules: dict[str, Path], *, top_level_only: bool) -> set[str]:
    """The project modules ``module`` imports (at its top level only, or anywhere in it)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets = []
    for node in nodes:
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            targets += [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    found = set()
    for target in targets:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != module:
            found.add(target)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))
    return cycles


def test_cycles_are_found_in_a_graph_that_has_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_of_apps_or_notifier_imports_itself_in_a_circle():
    """Top-level imports: none anywhere in apps/ and notifier/. Imports inside functions too: none in a
    circle through apps.notifications or notifier."""
    modules = _sources(*PACKAGES)
    top = {name: _imports(name, path, modules, top_level_only=True) for name, path in modules.items()}
    assert _cycles(top) == []
    anywhere = {name: _imports(name, path, modules, top_level_only=False) for name, path in modules.items()}
    ours = [cycle for cycle in _cycles(anywhere)
            if any(m.startswith(("apps.notifications", "notifier")) for m in cycle)]
    assert ours == []


def test_the_notifications_layers_depend_one_way():
    """api -> intake -> store/outbox/lifecycle -> specs/models; tasks -> delivery/maintenance ->
    store/lifecycle/outbox. The lower layers never import the upper ones."""
    modules = _sources("apps/notifications")
    upper = {
        "apps.notifications.outbox": ("intake", "delivery", "maintenance", "commands", "tasks", "api", "lifecycle"),
        "apps.notifications.store": ("intake", "delivery", "maintenance", "commands", "tasks", "api", "lifecycle",
                                     "outbox"),
        "apps.notifications.lifecycle": ("intake", "delivery", "maintenance", "commands", "tasks", "api"),
        "apps.notifications.specs": ("intake", "delivery", "maintenance", "commands", "tasks", "api", "lifecycle",
                                     "outbox", "store"),
        "apps.notifications.intake": ("delivery", "maintenance", "tasks", "api"),
        "apps.notifications.delivery": ("intake", "maintenance", "tasks", "api"),
    }
    wrong = []
    for name, path in modules.items():
        for lower, forbidden in upper.items():
            if name == lower or name.startswith(lower + "."):
                for dep in _imports(name, path, modules, top_level_only=False):
                    if any(dep == f"apps.notifications.{f}" or dep.startswith(f"apps.notifications.{f}.")
                           for f in forbidden):
                        wrong.append((name, dep))
    assert wrong == []


def test_each_module_of_notifications_and_notifier_imports_alone():
    """Each module imports in an interpreter where only Django's setup ran before it (a module that
    works only once another has been imported first hides a circle). What registers itself once per
    process (models, app configs, admin registrations, Prometheus metrics) stays from the setup."""
    registries = (".models", ".apps", ".admin", "notifier.metrics")
    names = [name for name in _sources("apps/notifications", "notifier")
             if not name.endswith(registries) and ".devtools." not in name and ".management." not in name]
    script = (
        "import importlib, json, sys, django\n"
        "django.setup()\n"
        f"keep = {{k for k in sys.modules if not k.startswith(('apps.', 'notifier.')) or k.endswith({registries!r})"
        " or k.count('.') == 1 and k.startswith('apps.')}\n"
        "failed = {}\n"
        "for name in json.loads(sys.argv[1]):\n"
        "    for loaded in [k for k in sys.modules if k not in keep]:\n"
        "        if loaded.startswith(('apps.', 'notifier.')):\n"
        "            del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed[name] = repr(exc)\n"
        "print(json.dumps(failed))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, json.dumps(names)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {}


def test_no_module_is_longer_than_400_lines():
    """notifier/bench.py, notifier/devtools/cluster_scenario.py and config/settings.py are being split
    elsewhere; until then this fails for them."""
    long = {str(path.relative_to(ROOT)): n for path in _sources(*PACKAGES, "config").values()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_no_private_name_is_imported_from_another_module():
    found = []
    for name, path in _sources(*PACKAGES, "config").items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] in
                                                     ("apps", "notifier", "config")):
                found += [f"{name}: {node.module}.{alias.name}" for alias in node.names
                          if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert found == []


# What writes a status (or a status event, or counts one) outside lifecycle: SQL that sets it, an ORM
# update of it, an event row made by hand, the counter, store's COPY helpers.
STATUS_WRITES = re.compile(
    r"SET\s+status\s*=|\.update\((?:[^()]|\([^()]*\))*?\bstatus\s*=|(?<!class )\bNotificationEvent\(|"
    r"NotificationEvent\.objects\.(create|bulk_create|update)\b|\bnotifications_entered\(|"
    r"\bbulk\.(create_notifications|insert_notification_rows)\("
)
# lifecycle owns the transitions and counts; store (with bulk, its COPY layer) holds the hot paths'
# statements whose counts lifecycle makes; metrics defines the counter.
# Models with a status of their own (not a notification's): their rows may change it where they live.
OWN_STATUS = re.compile(r"\bBroadcast\.objects\.")
STATUS_WRITERS = {"apps/notifications/lifecycle.py", "apps/notifications/store.py", "apps/notifications/bulk.py",
                  "notifier/metrics.py"}


def test_every_status_change_goes_through_lifecycle():
    """Product code (apps/, notifier/ but its developer tools) changes a notification's status only
    through apps.notifications.lifecycle (and store's statements, which lifecycle counts)."""
    found = []
    for path in _sources(*PACKAGES).values():
        relative = str(path.relative_to(ROOT))
        if relative in STATUS_WRITERS or "/devtools/" in relative:
            continue
        found += [f"{relative}:{where}" for where in _status_writes(path.read_text())]
    assert found == []


def _status_writes(text: str) -> list[str]:
    """Where ``text`` writes a status: the whole text is searched, so a call spread over several lines
    (``.update(\n    status=...)``) is seen; a write of a model's own status is told by the statement's
    first lines (up to three before the match)."""
    found = []
    for match in STATUS_WRITES.finditer(text):
        start = match.start()
        for _ in range(4):
            start = max(text.rfind("\n", 0, start), 0)
        if not OWN_STATUS.search(text[start:match.end()]):
            number = text.count("\n", 0, match.start()) + 1
            found.append(f"{number}: {text[match.start():match.end()].splitlines()[0].strip()}")
    return found


def test_the_status_guard_sees_a_writer():
    assert STATUS_WRITES.search('Notification.objects.filter(pk=1).update(status="sent")')
    assert STATUS_WRITES.search('f"UPDATE {TABLE} SET status = %s"')
    assert STATUS_WRITES.search("NotificationEvent.objects.bulk_create(events)")
    assert not STATUS_WRITES.search("class NotificationEvent(models.Model):")
    assert not STATUS_WRITES.search("Notification.objects.filter(status=Status.FAILED)")
    assert OWN_STATUS.search('Broadcast.objects.filter(pk=1).update(status="done")')
    assert not OWN_STATUS.search('Notification.objects.filter(broadcast_id=1).update(status="cancelled")')
    # Spread over lines, or with a call among the other fields: still a write.
    assert _status_writes('Notification.objects.filter(pk=1).update(\n    updated_at=now(),\n    status="sent",\n)')
    assert _status_writes('qs.update(updated_at=timezone.now(), status=Status.SENT)')
    assert not _status_writes('Broadcast.objects.filter(\n    pk=1,\n).update(\n    status="done")')
    assert not _status_writes('Notification.objects.filter(status=Status.FAILED).update(attempts=0)')
