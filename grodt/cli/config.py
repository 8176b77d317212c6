"""``grodt config``: check a node config without running it, its JSON Schema, its reference."""

import json
from pathlib import Path

import click


@click.group(name="config")
def command() -> None:
    """Node configs: check one without running it, print the JSON Schema or the reference."""


@command.command(name="check")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a value as `grodt backtest --set` does (repeatable).",
)
@click.option(
    "--catalog",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Catalog to check a backtest's bars against (default: the config's `catalog`, else "
    "GRODT_CATALOG).",
)
@click.option(
    "--no-catalog",
    "skip_catalog",
    is_flag=True,
    help="Do not open the catalog (check the file alone).",
)
def check(
    config: Path,
    overrides: tuple[str, ...],
    catalog: Path | None,
    skip_catalog: bool,
) -> None:
    """Validate CONFIG (backtest or live) without running it.

    Resolves includes, applies --set overrides, validates every field, imports every strategy
    and actor and checks its config (unknown keys, types, invariants), validates the risk and
    forensics sections, and, for a backtest, checks that the catalog holds bars of every bar
    type in the run's date range. Exit 0 with a one-line summary, or exit 2 with an error naming
    the file and the field.
    """
    from grodt.core.settings import get_settings
    from grodt.nodes.catalog_data import check_catalog
    from node_configs.live_schema import load_node_config
    from node_configs.schema import BacktestNodeSpec

    spec = load_node_config(config, overrides)
    where = ""
    if isinstance(spec, BacktestNodeSpec):
        if not skip_catalog:
            catalog_path = catalog or (Path(spec.catalog) if spec.catalog else None)
            catalog_path = catalog_path or get_settings().catalog
            check_catalog(spec.data, catalog_path, str(config), start=spec.start, end=spec.end)
            where = f", catalog {catalog_path}"
        span = f"{spec.start or 'first bar'} → {spec.end or 'last bar'}"
        kind = f"backtest, {span}"
    else:
        kind = "live, paper" if spec.is_paper else "live, broker"
    click.echo(
        f"ok: {config} ({kind}): node {spec.name!r}, {len(spec.strategies)} strategies, "
        f"{len(spec.actors)} actors{where}",
    )


@command.command(name="schema")
@click.option("--indent", type=int, default=2, show_default=True, help="JSON indentation.")
def schema(indent: int) -> None:
    """Print the JSON Schema of node configs (backtest or live), for editors that validate YAML.

    It describes a document after `include:` resolution, with the risk and forensics sections
    typed by their own models.
    """
    from node_configs.reference import node_json_schema

    click.echo(json.dumps(node_json_schema(), indent=indent, ensure_ascii=False))


@command.command(name="reference")
@click.option(
    "--write",
    "write_to",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the Markdown to this file (docs/configs.md) instead of printing it.",
)
def reference(write_to: Path | None) -> None:
    """Print (or --write) the config reference in Markdown, generated from the models."""
    from node_configs.reference import reference_markdown

    text = reference_markdown()
    if write_to is None:
        click.echo(text, nl=False)
        return
    write_to.write_text(text, encoding="utf-8")
    click.echo(f"wrote {write_to}")
