"""Options several ``grodt`` commands share (an underscore module is not a command)."""

from pathlib import Path

import click

__all__ = ["config_catalog_option"]

config_catalog_option = click.option(
    "--catalog",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Catalog directory (default: the config's `catalog`, else GRODT_CATALOG).",
)
"""``--catalog`` of a command that runs a node config: overrides the config's own catalog."""
