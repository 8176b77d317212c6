"""The ``grodt`` command line.

Sub-commands live one per module in this package (``grodt/cli/<name>.py`` exposing ``command``)
and are imported only when used, so ``grodt --help`` stays fast and each feature owns its file.
"""

import importlib
import os
import pkgutil
import sys
from typing import Any

import click

from grodt import __version__
from grodt.core.errors import EXIT_USER_ERROR
from grodt.core.errors import GrodtError


class _LazyGroup(click.Group):
    """A group whose sub-commands are the modules of ``grodt.cli``, imported on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = [
            info.name.replace("_", "-")
            for info in pkgutil.iter_modules(__path__)
            if not info.name.startswith("_")
        ]
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = cmd_name.replace("-", "_")
        if module_name.startswith("_") or module_name not in {
            info.name for info in pkgutil.iter_modules(__path__)
        }:
            return None
        module = importlib.import_module(f"{__name__}.{module_name}")
        return module.command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GrodtError as e:
            # User errors name the file/row/field to fix; a traceback would only bury that.
            click.echo(f"error: {e}", err=True)
            sys.exit(EXIT_USER_ERROR)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="grodt")
def main() -> None:
    """grodt: regime-aware trading on NautilusTrader.

    The same Strategy and Actor classes run in BacktestNode experiments (`grodt backtest`) and in
    TradingNode deployments (`grodt live`).
    """
    # Components are named by import path: a researcher's own module in the working directory is
    # found (after installed packages, so it cannot shadow them), as PYTHONPATH's are.
    working_directory = os.getcwd()
    if working_directory not in sys.path:
        sys.path.append(working_directory)
