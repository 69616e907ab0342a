"""``raylign plugins``: every registered stage, verifier, loss, ... with the package it came from."""
from __future__ import annotations

from raylign.engine.plugins import SINGULAR, get_registry


def plugins_command(args) -> int:
    from rich.console import Console
    from rich.table import Table

    reg = get_registry()
    table = Table(title="raylign plugins")
    for col in ("kind", "name", "plugin", "package"):
        table.add_column(col)
    for e in reg.all():
        table.add_row(SINGULAR[e.kind], e.name, e.plugin, e.package)
    Console(width=140).print(table)
    return 0
