"""A process killed (os._exit) at every step of a catalog commit: after recovery the catalog is
byte-for-byte either the old one or the new one, and no staging directory is left."""

import json
import shutil
import subprocess
import sys
import textwrap

import pytest
from catalogs_kit import EQUITY_YAML
from catalogs_kit import bars_csv
from catalogs_kit import clean_bars
from catalogs_kit import snapshot
from click.testing import CliRunner

from catalogs import journal
from catalogs.ingest import ingest_files
from catalogs.ingest import ingest_frame
from catalogs.journal import JOURNAL_FILE
from catalogs.journal import STAGING_DIR
from catalogs.journal import recover_catalog
from catalogs.reader import read_bars_frame
from catalogs.validation import ValidationConfig
from grodt.cli import main

BAR_TYPE = "TEST.XNAS-1-MINUTE-LAST-EXTERNAL"
CRASHED = 99

# Replaces the bar type (old file removed, new file placed) and rewrites the instrument: the
# commit has a rename of every kind.
COMMIT_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from catalogs import journal
    from catalogs.ingest import ingest_files
    from catalogs.validation import ValidationConfig

    crash_at = int(sys.argv[1])

    def crash(step):
        if step == crash_at:
            os._exit(99)

    journal.commit_step_hook = crash
    ingest_files([sys.argv[2]], sys.argv[3], sys.argv[4], replace=True,
                 config=ValidationConfig(label="close"))
    """
)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """The old catalog, the new data, the new catalog, and the commit's step numbers."""
    root = tmp_path_factory.mktemp("crash")
    spec = root / "spec.yaml"
    spec.write_text(EQUITY_YAML)
    old = root / "old"
    ingest_frame(clean_bars(20), str(spec), old)
    data = root / "new.csv"
    data.write_text(bars_csv(clean_bars(30, start="2024-01-03 14:31", seed=1)))
    new = root / "new"
    shutil.copytree(old, new)
    steps: list[int] = []
    journal.commit_step_hook = steps.append
    try:
        ingest_files([data], spec, new, replace=True, config=ValidationConfig(label="close"))
    finally:
        journal.commit_step_hook = None
    assert snapshot(new) != snapshot(old)
    return {"root": root, "spec": spec, "data": data, "old": old, "new": new, "steps": steps}


def _crash_at(scene, step, name):
    catalog = scene["root"] / name
    shutil.copytree(scene["old"], catalog)
    command = [sys.executable, "-c", COMMIT_SCRIPT, str(step), str(scene["data"])]
    done = subprocess.run(
        [*command, str(scene["spec"]), str(catalog)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == CRASHED, done.stderr
    return catalog


def test_the_commit_has_a_step_per_rename(scene):
    # -1 staged, 0 journal, 1-6 renames (old bars out, instrument out and in, new bars in, the
    # raw file's bronze copy in, its lineage table in), 7 committed.
    assert scene["steps"] == list(range(-1, 8))


@pytest.mark.parametrize("step", range(-1, 8))
def test_a_kill_at_each_step_then_recover_gives_the_old_or_the_new_catalog(scene, step):
    catalog = _crash_at(scene, step, f"k{step}")
    crashed = snapshot(catalog)
    assert any(path.startswith(f"{STAGING_DIR}/") for path in crashed)
    listed = CliRunner().invoke(main, ["catalog", "list", "--catalog", str(catalog)])
    assert "note: 1 staging directory" in listed.stdout
    assert snapshot(catalog) == crashed  # listing never writes
    result = CliRunner().invoke(main, ["catalog", "recover", "--catalog", str(catalog)])
    assert result.exit_code == 0, result.output
    expected = scene["old"] if step == -1 else scene["new"]
    assert snapshot(catalog) == snapshot(expected)
    action = {-1: "cleared", 7: "finished"}.get(step, "rolled forward")
    assert f" {action}" in result.stdout
    again = CliRunner().invoke(main, ["catalog", "recover", "--catalog", str(catalog)])
    assert "nothing to recover" in again.stdout


def test_without_recovery_a_kill_mid_commit_leaves_a_broken_catalog(scene):
    # What the journal exists for: after the instrument was moved out (step 2), the catalog
    # has no instrument and no bars of the bar type.
    catalog = _crash_at(scene, 2, "broken")
    data = {p for p in snapshot(catalog) if p.startswith("data/") and p.endswith(".parquet")}
    assert data == set()


def test_the_next_ingest_rolls_forward_first(scene, equity_spec):
    catalog = _crash_at(scene, 3, "next")
    later = clean_bars(5, start="2024-01-04 14:31", seed=2)
    ingest_frame(later, equity_spec, catalog)
    frame = read_bars_frame(catalog, BAR_TYPE)
    assert len(frame) == 30 + 5
    assert not (catalog / STAGING_DIR).exists()


def test_lost_staged_files_roll_back_to_the_old_catalog(scene):
    catalog = _crash_at(scene, 2, "lost")
    (staging,) = (catalog / STAGING_DIR).iterdir()
    for path in (staging / "data").rglob("*.parquet"):
        path.unlink()  # the new bars that were about to move in
    report = recover_catalog(catalog)
    assert [entry.action for entry in report] == ["rolled back"]
    assert snapshot(catalog) == snapshot(scene["old"])


def test_a_commit_in_progress_is_left_alone(scene):
    catalog = _crash_at(scene, 1, "live")
    (staging,) = (catalog / STAGING_DIR).iterdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        owner_file = staging / journal.OWNER_FILE
        owner = json.loads(owner_file.read_text())
        owner_file.write_text(json.dumps({**owner, "pid": sleeper.pid}))  # a live process
        before = snapshot(catalog)
        report = recover_catalog(catalog)
        assert [entry.action for entry in report] == ["in progress"]
        assert snapshot(catalog) == before
    finally:
        sleeper.kill()
        sleeper.wait()
    assert [entry.action for entry in recover_catalog(catalog)] == ["rolled forward"]
    assert snapshot(catalog) == snapshot(scene["new"])


def test_a_corrupt_journal_is_an_error_naming_it(scene):
    catalog = _crash_at(scene, 2, "corrupt")
    (staging,) = (catalog / STAGING_DIR).iterdir()
    (staging / JOURNAL_FILE).write_text("{not json")
    result = CliRunner().invoke(main, ["catalog", "recover", "--catalog", str(catalog)])
    assert result.exit_code == 2
    assert f"{staging / JOURNAL_FILE}: not a readable commit journal" in result.stderr
    assert (staging / JOURNAL_FILE).exists()  # nothing deleted: a person must look


def test_a_first_ingest_killed_before_its_journal_leaves_no_directory(scene, tmp_path):
    catalog = tmp_path / "fresh"
    command = [sys.executable, "-c", COMMIT_SCRIPT, "-1", str(scene["data"])]
    done = subprocess.run([*command, str(scene["spec"]), str(catalog)], capture_output=True)
    assert done.returncode == CRASHED
    assert catalog.exists()
    recover_catalog(catalog)
    assert not catalog.exists()
