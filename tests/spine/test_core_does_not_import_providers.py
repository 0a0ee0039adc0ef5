"""`communications` is the core: providers plug into it, it never imports them (issue 12)."""

import ast
from pathlib import Path

import communications.apps

CORE = Path(communications.apps.__file__).parent


def _integrations_imports(path: Path) -> list[str]:
    """Every import of `integrations` anywhere in the module, inside functions too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [
            f"{path.relative_to(CORE.parent)}:{node.lineno} imports {name}"
            for name in names
            if name == "integrations" or name.startswith("integrations.")
        ]
    return found


def test_communications_never_imports_integrations():
    modules = sorted(CORE.rglob("*.py"))
    assert len(modules) > 20  # the walk really sees the app
    offenders = [line for module in modules for line in _integrations_imports(module)]
    assert offenders == []


def test_the_walk_catches_an_import_inside_a_function():
    module = CORE / "_probe_for_import_walk.py"
    try:
        module.write_text("def f():\n    from integrations.registry import provider_for\n")
        assert _integrations_imports(module) == [
            "communications/_probe_for_import_walk.py:2 imports integrations.registry"
        ]
    finally:
        module.unlink()


def test_integrations_registers_its_providers_in_the_core():
    from communications.models import Channel
    from communications.providers import _FACTORIES

    assert {Channel.Kind.API, Channel.Kind.WHATSAPP} <= set(_FACTORIES)
