"""The layout holds: imports point down the layers, modules stay small, moved names are not
re-imported from their old home. The allowlists of today's known exceptions are in pyproject.toml
([tool.importlinter] ignore_imports and [tool.conversa.architecture]); new exceptions fail here."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())
ARCHITECTURE = CONFIG["tool"]["conversa"]["architecture"]
# Names that moved out of inbox.selectors (now in accounts.selectors / campaigns.selectors).
MOVED_FROM_INBOX_SELECTORS = {"AnyUser", "campaigns_for", "require_whatsapp_access"}


def _modules() -> list[Path]:
    return sorted(p for p in (SRC / "conversa").rglob("*.py") if "migrations" not in p.parts)


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_imports_point_down_the_layers() -> None:
    """import-linter's layers contract (grimp reads every import statement, function-level ones
    included). Unmatched allowlist lines fail too, so the list shrinks as the code is fixed."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_is_over_the_line_limit() -> None:
    limit = int(ARCHITECTURE["max_module_lines"])
    allowed = set(ARCHITECTURE["oversized_modules"])
    sizes = {_relative(p): len(p.read_text().splitlines()) for p in _modules()}
    oversized = {path for path, lines in sizes.items() if lines > limit}
    assert oversized <= allowed, f"modules over {limit} lines: {sorted(oversized - allowed)}"
    assert not allowed - oversized, f"no longer oversized, remove from the allowlist: {sorted(allowed - oversized)}"


def _reimports_from_inbox_selectors(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    module_aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "conversa.inbox.selectors":
            if MOVED_FROM_INBOX_SELECTORS & {a.name for a in node.names}:
                return True
        elif isinstance(node, ast.ImportFrom) and node.module == "conversa.inbox":
            module_aliases |= {a.asname or a.name for a in node.names if a.name == "selectors"}
    return any(isinstance(node, ast.Attribute) and node.attr in MOVED_FROM_INBOX_SELECTORS
               and isinstance(node.value, ast.Name) and node.value.id in module_aliases
               for node in ast.walk(tree))


def test_moved_access_helpers_are_imported_from_their_new_home() -> None:
    allowed = set(ARCHITECTURE["reexport_importers"])
    old_home = SRC / "conversa" / "inbox" / "selectors.py"
    importers = {_relative(p) for p in [*_modules(), *(ROOT / "tests").rglob("*.py")]
                 if p != old_home and _reimports_from_inbox_selectors(p)}
    assert importers <= allowed, f"import these from accounts/campaigns.selectors: {sorted(importers - allowed)}"
    assert not allowed - importers, f"fixed, remove from the allowlist: {sorted(allowed - importers)}"


PUBLISHERS = {"publish", "publish_conversation", "publish_message"}


def test_every_published_event_name_is_in_the_catalogue() -> None:
    """Call sites not yet using the constants (the inbox split converts them) still may not invent
    names: a literal event type must be one of realtime.event_types."""
    from conversa.realtime import event_types

    unknown = set()
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in PUBLISHERS
                    and node.args and isinstance(node.args[0], ast.Constant)
                    and node.args[0].value not in event_types.ALL):
                unknown.add(f"{_relative(path)}:{node.lineno} {node.args[0].value!r}")
    assert not unknown, sorted(unknown)
