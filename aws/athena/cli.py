"""`lakelab sql FILE|-`: Athena / Hive SQL on Trino."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from trino.exceptions import TrinoQueryError

from aws.athena.sql import TranslationError, run
from lakelab.console import err_console, fail
from lakelab.settings import get_settings


def sql(
    file: Annotated[str, typer.Argument(help="SQL file, or - for standard input")],
    schema: Annotated[Optional[str], typer.Option(help="default schema of the hive catalog (default: the file's "
                                                       "`-- database:` line, else default)")] = None,
    var: Annotated[list[str], typer.Option(help="NAME=VALUE for ${NAME} in the file")] = [],  # noqa: B006
    name: Annotated[list[str], typer.Option(help="run only the statements of these names")] = [],  # noqa: B006
    dry_run: Annotated[bool, typer.Option(help="print the Trino statements, do not run them")] = False,
) -> None:
    """Run Athena / Hive SQL on Trino: CREATE EXTERNAL TABLE, MSCK REPAIR TABLE and SHOW PARTITIONS
    are translated, the rest runs as is (see docs/lab_b.md)."""
    text = sys.stdin.read() if file == "-" else Path(file).read_text()
    variables = dict(v.split("=", 1) for v in var if "=" in v)
    try:
        statements = run(get_settings(), text, schema, variables, name or None, execute=not dry_run)
    except (TranslationError, TrinoQueryError) as exc:
        fail(str(exc))
    for statement in statements:
        title = statement.name or statement.sql.split("\n", 1)[0][:60]
        if statement.translated != statement.sql or dry_run:
            err_console.print(f"[dim]-- {title}: runs as[/]\n{statement.translated}")
        for note in statement.notes:
            err_console.print(f"[yellow]note:[/] {note}")
        if statement.columns and not dry_run:
            grid = Table(*statement.columns, title=title)
            for row in statement.rows:
                grid.add_row(*("NULL" if v is None else str(v) for v in row))
            Console(width=None if sys.stdout.isatty() else 250).print(grid)
