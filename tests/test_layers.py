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


# The managers' chat runs on Telegram: these bot/ modules drive the Telegram runtime (topics,
# reactions, sending to the group) or render its HTML. Nothing else in bot/ may import
# channels/: the customer dialogue gets crm types from every adapter and answers with
# channel-neutral replies, so an update never goes channels -> bot -> channels.
TELEGRAM_DESK = {
    "bot/__init__.py": "attach() wires the Router into the Telegram runtime's handler",
    "bot/desk.py": "the managers' commands: reacts and answers through the runtime",
    "bot/mirror.py": "mirrors the timeline into the team's forum topics",
    "bot/render.py": "the managers' chat in Telegram HTML (escape, topic links, UTF-16 sizes)",
    "bot/order_desk.py": "/orders and /order in a topic, in Telegram HTML",
    "bot/toolkit.py": "/r, /replies, /find and edits in a topic, in Telegram HTML",
    "bot/campaigns.py": "the marketers' /campaign wizard in a private chat, in Telegram HTML",
}
CUSTOMER_DIALOGUE = ("bot/customer.py", "bot/intents.py", "bot/menu.py", "bot/orders.py")


def bot_modules(path: Path) -> set[str]:
    """The bot/ modules `path` imports by name (`from bot import menu`, `from bot.x import y`);
    the package itself (bot/__init__.py) is not counted: importing a sibling runs it anyway."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "bot":
                found.update(f"bot/{a.name}.py" for a in node.names)
            elif node.module.startswith("bot."):
                found.add(node.module.replace(".", "/") + ".py")
        elif isinstance(node, ast.Import):
            found.update(a.name.replace(".", "/") + ".py" for a in node.names
                         if a.name.startswith("bot."))
    return {f for f in found if (ROOT / f).is_file()}


def test_only_the_managers_chat_in_bot_imports_the_channels() -> None:
    assert all((ROOT / rel).is_file() for rel in TELEGRAM_DESK), "a listed module is gone"
    crossings = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if "channels" in imports(path) and rel not in TELEGRAM_DESK:
            crossings.append(f"{rel} imports channels/ (only {sorted(TELEGRAM_DESK)} may)")
    assert not crossings, "\n".join(crossings)


def test_the_customer_dialogue_reaches_no_channel_even_through_the_bot() -> None:
    """bot/customer.py and its helpers import no channels/ module, directly or through another
    bot/ module (bot/orders.py -> bot/customer.py -> …)."""
    crossings = []
    for start in CUSTOMER_DIALOGUE:
        seen, todo = {start}, [start]
        while todo:
            rel = todo.pop()
            if "channels" in imports(ROOT / rel):
                crossings.append(f"{start} reaches channels/ through {rel}")
            for nxt in bot_modules(ROOT / rel) - seen:
                seen.add(nxt)
                todo.append(nxt)
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
