"""What every command prints through: the consoles, the one error exit, and log output."""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

import typer
from rich.console import Console
from rich.logging import RichHandler

console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> NoReturn:
    """End the command with exit status 1 and a one-line reason."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


def setup_logging() -> None:
    """INFO logs on stderr: rich on a terminal, timestamped lines otherwise (logs of long runs)."""
    if sys.stderr.isatty():
        handler: logging.Handler = RichHandler(console=err_console, show_path=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    for noisy in ("botocore", "urllib3", "httpx", "py4j"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
