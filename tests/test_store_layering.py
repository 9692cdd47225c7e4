"""bridge/store is the one owner of Redis key names and Lua scripts (architecture test)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from bridge.store import keys

ROOT = Path(__file__).resolve().parent.parent
SCRIPT_CALLS = {"register_script", "evalsha", "evalsha_ro", "eval", "eval_ro", "script_load"}
NOT_KEYS = {"Namespace", "ThreadKey", "WORKER_GROUP", "annotations", "dataclass"}
KEY_NAMES = {
    name
    for name, value in vars(keys).items()
    if not name.startswith("_")
    and name not in NOT_KEYS
    and not name.endswith(("_SECONDS", "_MS", "_SIZE", "_ON_RECOVERY"))
    and (callable(value) or isinstance(value, str))
}
KEY_MODULES = {"bridge.keys", "bridge.store.keys"}
BRACES: set[object] = {"{", "}"}


def _sources() -> Iterator[Path]:
    for top in ("bridge", "adapters"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if not path.relative_to(ROOT).as_posix().startswith("bridge/store/"):
                yield path


def _keys_aliases(tree: ast.Module) -> set[str]:
    """Local names bound to the store's key module (`from bridge import keys`, ...)."""
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in {"bridge", "bridge.store"}:
            aliases |= {a.asname or a.name for a in node.names if a.name == "keys"}
        elif isinstance(node, ast.Import):
            aliases |= {a.asname or a.name for a in node.names if a.name in KEY_MODULES}
    return aliases


def _offence(node: ast.AST, aliases: set[str]) -> list[str]:
    match node:
        case ast.Call(func=ast.Attribute(attr=attr)) if attr in SCRIPT_CALLS:
            return [f".{attr}()"]
        case ast.Attribute(value=ast.Name(id=alias), attr=attr) if alias in aliases:
            return [f"keys.{attr}"] if attr in KEY_NAMES else []
        case ast.ImportFrom(module=module, names=names) if module in KEY_MODULES:
            return [f"imports {a.name}" for a in names if a.name in KEY_NAMES]
        case ast.Constant(value=str(value)) if value.startswith("bridge:"):
            return [f"key literal {value!r}"]
        case ast.BinOp(left=left, op=ast.Add(), right=right):
            braces = [x for x in (left, right) if isinstance(x, ast.Constant) and x.value in BRACES]
            return ["hand-made hash tag"] if braces else []
    return []


def offences(source: str) -> list[str]:
    """What in `source` spells a Redis key or runs a Lua script itself."""
    tree = ast.parse(source)
    aliases = _keys_aliases(tree)
    return [f"{getattr(n, 'lineno', 0)}: {o}" for n in ast.walk(tree) for o in _offence(n, aliases)]


def _report() -> dict[str, list[str]]:
    report = {}
    for path in _sources():
        if found := offences(path.read_text()):
            report[path.relative_to(ROOT).as_posix()] = found
    return report


def test_no_module_outside_the_store_spells_a_key_or_runs_a_script() -> None:
    assert _report() == {}, "use bridge.store (Namespace or a typed operation) instead"


def test_the_checker_sees_each_way_of_spelling_a_key() -> None:
    assert offences("self.s = redis.register_script(X)")
    assert offences("await redis.evalsha(sha, 1, k)")
    assert offences("from bridge import keys\nk = f'{keys.tag(t)}:web:log'")
    assert offences("from bridge.store import keys as k\nk.answer('a', 'b', 'c', 'd')")
    assert offences("from bridge.store.keys import inbox")
    assert offences("KEY = 'bridge:web:secret'")
    assert offences("t = '{' + team + '}'")
    assert not offences("from bridge.store import keys\nttl = keys.POSTED_TTL_SECONDS")
    assert not offences("k = Namespace('web').thread(t, 'log')")
