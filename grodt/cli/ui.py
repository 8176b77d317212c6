"""``grodt ui``: the MLflow UI on the configured tracking store."""

import os
import sys

import click


@click.command(name="ui")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=int, help="Server workers.")
@click.option(
    "--tracking-uri",
    default=None,
    help="Tracking store (default: GRODT_TRACKING_URI, MLFLOW_TRACKING_URI, else the embedded "
    "SQLite store in GRODT_RUNS_DIR).",
)
@click.option("--dry-run", is_flag=True, help="Print the server command instead of running it.")
def command(host: str, port: int, workers: int, tracking_uri: str | None, dry_run: bool) -> None:
    """Open the MLflow UI (runs, metrics, artifacts, tearsheets, model registry) on the
    configured tracking store, at http://HOST:PORT.

    The embedded SQLite store needs no server for tracking; this starts one only to browse.
    With an http(s) tracking URI the UI is that server's: its address is printed.
    """
    from grodt.core.errors import GrodtError
    from grodt.tracking.store import open_client
    from grodt.tracking.store import probe
    from grodt.tracking.store import resolve_store

    store = resolve_store(tracking_uri)
    if store.scheme in ("http", "https"):
        click.echo(f"The tracking server serves its own UI: {store.uri}")
        return
    reason = probe(store)
    if reason is not None:
        raise GrodtError(f"tracking store {store.display_uri} is unreachable: {reason}")
    # Create or migrate the schema here, once, not concurrently in the server's workers.
    open_client(store)
    args = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        store.uri,
        "--registry-store-uri",
        store.uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    if store.artifact_root:
        args += ["--default-artifact-root", store.artifact_root]
    if dry_run:
        click.echo(" ".join(args))
        return
    click.echo(
        f"MLflow UI for {store.display_uri} on http://{host}:{port} (Ctrl-C to stop)",
        err=True,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, args)
