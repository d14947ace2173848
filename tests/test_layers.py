"""Dependencies point inward: the core imports no outer layer and no channel library."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTER = ("channels", "bot", "scheduler", "web")
CHANNEL_LIBS = ("telegram", "aiosmtplib", "aioimaplib", "apscheduler")
COMPOSITION_ROOTS = {"crm/app.py", "crm/cli.py", "crm/cli_toolkit.py"}  # the CLI, split


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_no_outer_layer() -> None:
    crossings = []
    for path in sorted((ROOT / "crm").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in COMPOSITION_ROOTS:
            continue
        bad = imports(path) & {*OUTER, *CHANNEL_LIBS}
        if bad:
            crossings.append(f"{rel} imports {sorted(bad)}")
    assert not crossings, "\n".join(crossings)


def test_channels_do_not_import_the_bot_or_scheduler() -> None:
    crossings = []
    for path in sorted((ROOT / "channels").rglob("*.py")):
        bad = imports(path) & {"bot", "scheduler"}
        if bad:
            crossings.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not crossings, "\n".join(crossings)


def test_the_bot_sees_no_provider_type() -> None:
    """Adapters hand crm types on at their edge: bot/ imports no channel library."""
    crossings = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        bad = imports(path) & set(CHANNEL_LIBS)
        if bad:
            crossings.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not crossings, "\n".join(crossings)


def test_web_uses_the_core_not_the_bot_or_the_channels() -> None:
    """web/ (the API, the console) and bot/ are peers: both call crm services and queries."""
    crossings = []
    for path in sorted((ROOT / "web").rglob("*.py")):
        bad = imports(path) & {"bot", "channels", "scheduler", *CHANNEL_LIBS}
        if bad:
            crossings.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not crossings, "\n".join(crossings)
    assert "crm" in set().union(*(imports(p) for p in (ROOT / "web").rglob("*.py")))
