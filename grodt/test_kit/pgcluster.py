"""A throw-away local PostgreSQL server for tests and benchmarks.

The tracking store at scale is PostgreSQL; the test suite and ``benchmarks/tracking_scale.py``
need a real one without depending on a running service. :class:`TemporaryPostgres` runs
``initdb`` and ``pg_ctl`` from the PostgreSQL binaries on the machine into a fresh temporary
directory and listens on a loopback TCP port with ``trust`` authentication (loopback only).

PostgreSQL refuses to run as root: when the current user is root, the cluster is created and
started as the ``postgres`` OS user (``runuser``/``su``), with its data directory owned by that
user. Durability settings are left at PostgreSQL's defaults (``fsync=on``,
``synchronous_commit=on``) unless asked otherwise, so commit latencies measured against it are
real durable commits.
"""

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from grodt.core.errors import GrodtError
from grodt.test_kit.ports import free_port

__all__ = ["TemporaryPostgres", "find_pg_bin_dir"]

_BIN_CANDIDATES = ("/usr/lib/postgresql", "/usr/local/pgsql/bin", "/opt/homebrew/bin")


def find_pg_bin_dir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``.

    Looked up in order: env ``GRODT_PG_BIN``, ``initdb`` on ``PATH``, the highest version under
    ``/usr/lib/postgresql/<version>/bin`` (Debian/Ubuntu packages).
    """
    env = os.environ.get("GRODT_PG_BIN")
    if env:
        path = Path(env)
        if not (path / "initdb").exists():
            raise GrodtError(f"GRODT_PG_BIN={env}: no initdb there")
        return path
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    debian = Path(_BIN_CANDIDATES[0])
    if debian.is_dir():
        versions = sorted(
            (p for p in debian.iterdir() if (p / "bin" / "initdb").exists()),
            key=lambda p: int(p.name) if p.name.isdigit() else 0,
        )
        if versions:
            return versions[-1] / "bin"
    for candidate in _BIN_CANDIDATES[1:]:
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise GrodtError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install PostgreSQL or set "
        "GRODT_PG_BIN to their directory",
    )


class TemporaryPostgres:
    """A PostgreSQL cluster in a temporary directory, deleted on :meth:`stop`.

    Parameters
    ----------
    port : int, optional
        TCP port on 127.0.0.1 (default: a free one).
    max_connections : int, default 300
        Server connection limit; MLflow opens a small pool per process.
    fsync : bool, default True
        Keep PostgreSQL's durable commits. ``False`` only for throw-away speed.
    extra_settings : dict[str, str], optional
        More ``postgresql.conf`` settings (``-c name=value``).
    bin_dir : Path, optional
        PostgreSQL binaries (default: :func:`find_pg_bin_dir`).

    Examples
    --------
    >>> with TemporaryPostgres() as pg:  # doctest: +SKIP
    ...     uri = pg.create_database("mlflow")  # postgresql+psycopg://postgres@127.0.0.1:…/mlflow
    """

    def __init__(
        self,
        port: int | None = None,
        max_connections: int = 300,
        fsync: bool = True,
        extra_settings: dict[str, str] | None = None,
        bin_dir: Path | None = None,
    ) -> None:
        self.bin_dir = bin_dir or find_pg_bin_dir()
        self.port = port or free_port()
        self.max_connections = max_connections
        self.fsync = fsync
        self.extra_settings = dict(extra_settings or {})
        self.root: Path | None = None
        self._run_as: str | None = "postgres" if os.geteuid() == 0 else None
        self._started = False

    @property
    def data_dir(self) -> Path:
        if self.root is None:
            raise GrodtError("TemporaryPostgres is not started")
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / "server.log"

    def _command(self, args: list[str]) -> list[str]:
        if self._run_as is None:
            return args
        runuser = shutil.which("runuser")
        if runuser:
            return [runuser, "-u", self._run_as, "--", *args]
        return ["su", self._run_as, "-s", "/bin/sh", "-c", " ".join(args)]

    def _run(self, args: list[str], timeout: float = 120.0) -> None:
        result = subprocess.run(
            self._command(args),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            log = self.log_file.read_text() if self.root and self.log_file.exists() else ""
            raise GrodtError(
                f"{Path(args[0]).name} failed ({result.returncode}): "
                f"{result.stderr.strip() or result.stdout.strip()}\n{log[-2000:]}",
            )

    def start(self) -> "TemporaryPostgres":
        """initdb + start; returns self once the server accepts connections."""
        if self._started:
            return self
        self.root = Path(tempfile.mkdtemp(prefix="grodt-pg-"))
        if self._run_as is not None:
            user = pwd.getpwnam(self._run_as)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        os.chmod(self.root, 0o700)
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ],
        )
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
            "max_connections": str(self.max_connections),
            "fsync": "on" if self.fsync else "off",
            "shared_buffers": "64MB",
            **self.extra_settings,
        }
        options = " ".join(f"-c {name}={value}" for name, value in settings.items())
        self._run(
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
        self._started = True
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq connection string (for psycopg)."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def uri(self, dbname: str = "postgres") -> str:
        """A SQLAlchemy URL with the psycopg (3) driver, as MLflow's tracking URI wants."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, dbname: str, template: str | None = None) -> str:
        """Create ``dbname`` (if missing), optionally as a copy of database ``template`` (which
        must have no open connections), and return its SQLAlchemy URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s",
                (dbname,),
            ).fetchone()
            if not exists:
                statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
                if template is not None:
                    statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(dbname),
                        sql.Identifier(template),
                    )
                conn.execute(statement)
        return self.uri(dbname)

    def stop(self) -> None:
        """Stop the server and delete its directory (immediate shutdown: the data is thrown
        away, so the shutdown checkpoint would only cost seconds of fsync)."""
        if self.root is None:
            return
        if self._started:
            with contextlib.suppress(GrodtError, subprocess.TimeoutExpired):
                self._run(
                    [
                        str(self.bin_dir / "pg_ctl"),
                        "-D",
                        str(self.data_dir),
                        "-m",
                        "immediate",
                        "stop",
                    ],
                    timeout=60,
                )
            self._started = False
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> "TemporaryPostgres":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
