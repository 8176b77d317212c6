"""The commit journal: a catalog commit that a killed process leaves is finished or undone.

A commit (see :mod:`catalogs.transaction`) is a list of file renames inside the catalog
directory. Before the first rename, the whole list is written to
``<catalog>/_staging/<id>/_journal.json`` (atomically: a temp file renamed into place); after
the last, the journal is marked ``committed``. A process killed in between leaves a journal in
``committing`` state, and the next catalog write (or ``grodt catalog recover``) **rolls it
forward**: each rename whose source is still there is done, in order (every rename is atomic, so
a step is either done or not). If a source has vanished (someone deleted staged files), it
**rolls back** instead: every done rename is undone in reverse order and the directories the
commit created are removed. Either way the catalog ends exactly as the commit would have left it,
or exactly as it was.

This protects against a killed process (``kill -9``, the OOM killer, Ctrl-C), not against power
loss or a kernel crash: nothing is fsynced (fsyncing the staged files doubled the wall time of a
one-million-bar ingest on the development machine), so after a power cut renamed files may be
empty.

Staging directories also carry ``_owner.json`` (pid, host): one whose process is alive on this
host is a commit in progress and is left alone; any other without a journal is stale (nothing of
it reached the catalog) and is deleted.
"""

import json
import logging
import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Literal

from grodt.core.errors import GrodtError

logger = logging.getLogger("grodt.catalogs")

STAGING_DIR = "_staging"
JOURNAL_FILE = "_journal.json"
OWNER_FILE = "_owner.json"
JOURNAL_FORMAT = 1

State = Literal["committing", "committed"]

commit_step_hook: Callable[[int], None] | None = None
"""Called with the step number at each point of a commit (-1: files staged, no journal yet;
0: journal written; k: k-th rename done; renames + 1: journal marked committed). Crash tests set
it to call ``os._exit`` at one step; it is None otherwise."""


class CatalogRecoveryError(GrodtError):
    """A journal cannot be read or applied; the message names the file."""


@dataclass(frozen=True)
class Rename:
    """One step of a commit: ``<catalog>/<source>`` → ``<catalog>/<target>`` (relative paths)."""

    source: str
    target: str


@dataclass
class Journal:
    """What a commit is about to do (``committing``) or has done (``committed``).

    Attributes
    ----------
    renames : list[Rename]
        In the order they are applied.
    created_dirs : list[str]
        Catalog-relative directories that did not exist before the commit (outermost first).
    state : {"committing", "committed"}
    """

    renames: list[Rename]
    created_dirs: list[str] = field(default_factory=list)
    state: State = "committing"

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": JOURNAL_FORMAT,
                "state": self.state,
                "renames": [[step.source, step.target] for step in self.renames],
                "created_dirs": self.created_dirs,
            },
            indent=1,
        )

    @classmethod
    def read(cls, path: Path) -> "Journal":
        """Read a journal file.

        Raises
        ------
        CatalogRecoveryError
            Naming the file when it is not a journal of this format.
        """
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != JOURNAL_FORMAT or data["state"] not in (
                "committing",
                "committed",
            ):
                raise ValueError(f"format {data.get('format')!r}, state {data.get('state')!r}")
            renames = [Rename(str(source), str(target)) for source, target in data["renames"]]
            created = [str(directory) for directory in data["created_dirs"]]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise CatalogRecoveryError(
                f"{path}: not a readable commit journal ({e}); the catalog may hold a partial "
                f"commit: check it against its source data, then delete {path.parent} (writes "
                "to this catalog stop until then)"
            ) from None
        return cls(renames=renames, created_dirs=created, state=data["state"])

    def write(self, path: Path) -> None:
        """Replace ``path`` atomically (a temp file renamed into place)."""
        partial = path.with_name(path.name + ".partial")
        partial.write_text(self.to_json(), encoding="utf-8")
        os.replace(partial, path)


def notify_step(step: int) -> None:
    """Report a durable commit step to :data:`commit_step_hook` (crash tests)."""
    if commit_step_hook is not None:
        commit_step_hook(step)


def apply_rename(root: Path, step: Rename) -> None:
    """Do one rename, creating the target's parent directories."""
    target = root / step.target
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(root / step.source, target)


def done_count(root: Path, journal: Journal) -> int:
    """How many renames (a prefix: they run in order) are done.

    A rename is done when its source is gone and its target is there. A later rename may reuse
    an earlier one's source as its target (a replaced file: ``X`` → backup, then staged → ``X``),
    so only the LAST done rename is trusted: every rename before it is done too.
    """
    for index in range(len(journal.renames) - 1, -1, -1):
        step = journal.renames[index]
        if not (root / step.source).exists() and (root / step.target).exists():
            return index + 1
    return 0


def roll_forward(root: Path, journal: Journal) -> bool:
    """Do the renames not done yet; False, changing nothing, if a source has vanished."""
    pending = journal.renames[done_count(root, journal) :]
    if not all((root / step.source).exists() for step in pending):
        return False
    for step in pending:
        apply_rename(root, step)
    return True


def roll_back(root: Path, journal: Journal) -> None:
    """Undo the done renames (in reverse order) and remove the directories the commit made."""
    for step in reversed(journal.renames[: done_count(root, journal)]):
        source = root / step.source
        source.parent.mkdir(parents=True, exist_ok=True)
        os.replace(root / step.target, source)
    for rel_dir in sorted(journal.created_dirs, key=lambda d: d.count("/"), reverse=True):
        directory = root / rel_dir
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()


@dataclass(frozen=True)
class Recovered:
    """What recovery did with one staging directory.

    ``action``: ``rolled forward``, ``rolled back``, ``finished`` (the commit was complete, its
    staging directory is removed), ``cleared`` (stale, nothing had reached the catalog), or
    ``in progress`` (its process is alive: left alone).
    """

    staging: str
    action: str
    detail: str = ""


def write_owner(staging: Path, created_root: bool) -> None:
    """Record which process owns a staging directory (and whether it created the catalog)."""
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "created_root": created_root}
    (staging / OWNER_FILE).write_text(json.dumps(owner), encoding="utf-8")


def recover_catalog(root: str | Path, live: frozenset[Path] = frozenset()) -> list[Recovered]:
    """Finish or undo interrupted commits and remove stale staging directories.

    Parameters
    ----------
    root : str | Path
        The catalog directory.
    live : frozenset[Path]
        Staging directories of this process's open transactions (never touched).

    Raises
    ------
    CatalogRecoveryError
        When a journal cannot be read (naming it); other staging directories are still handled.
    """
    root = Path(root).absolute()
    staging_root = root / STAGING_DIR
    if not staging_root.is_dir():
        return []
    report: list[Recovered] = []
    errors: list[str] = []
    created_root = False
    for staging in sorted(path for path in staging_root.iterdir() if path.is_dir()):
        if staging in live:
            continue
        owner = _read_owner(staging)
        if _is_alive(owner):
            report.append(Recovered(staging.name, "in progress", f"pid {owner.get('pid')}"))
            continue
        created_root |= bool(owner.get("created_root"))
        try:
            report.append(_recover_one(root, staging))
        except CatalogRecoveryError as e:
            errors.append(str(e))
    for entry in report:
        if entry.action != "in progress":
            logger.warning(
                "catalog %s: staging %s %s %s", root, entry.staging, entry.action, entry.detail
            )
    if staging_root.is_dir() and not any(staging_root.iterdir()):
        staging_root.rmdir()
    if created_root and root.is_dir() and not any(root.iterdir()):
        root.rmdir()  # a first commit into a new directory that never happened
    if errors:
        raise CatalogRecoveryError("; ".join(errors))
    return report


def _recover_one(root: Path, staging: Path) -> Recovered:
    journal_path = staging / JOURNAL_FILE
    if not journal_path.exists():
        shutil.rmtree(staging)
        return Recovered(staging.name, "cleared", "no journal: nothing had reached the catalog")
    journal = Journal.read(journal_path)
    if journal.state == "committed":
        shutil.rmtree(staging)
        return Recovered(staging.name, "finished", "the commit was complete")
    if roll_forward(root, journal):
        action, detail = "rolled forward", f"{len(journal.renames)} renames completed"
    else:
        roll_back(root, journal)
        action, detail = "rolled back", "staged files were missing: the old state is restored"
    journal.state = "committed"
    journal.write(journal_path)
    shutil.rmtree(staging)
    return Recovered(staging.name, action, detail)


def _read_owner(staging: Path) -> dict[str, Any]:
    try:
        owner = json.loads((staging / OWNER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def _is_alive(owner: dict[str, Any]) -> bool:
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return False  # no owner record: left by a version without journals, or half-created
    if owner.get("host") != socket.gethostname():
        return True  # another machine's process (a shared filesystem): recover it there
    if pid == os.getpid():
        return False  # this process: its transactions are passed as `live`
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


__all__ = [
    "JOURNAL_FILE",
    "OWNER_FILE",
    "STAGING_DIR",
    "CatalogRecoveryError",
    "Journal",
    "Recovered",
    "Rename",
    "apply_rename",
    "commit_step_hook",
    "done_count",
    "notify_step",
    "recover_catalog",
    "roll_back",
    "roll_forward",
    "write_owner",
]
