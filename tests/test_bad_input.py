"""Bad input: a generated corpus of broken, hostile and odd files (tests/support/faultkit.py) plus the shared camera
samples, given to a real daemon subprocess with a real model, without the capabilities that let root read
any file. Each bad photo ends as a `failed` row whose message names it; every good photo around them is
indexed; non-files are never catalogued; memory stays bounded. Also malformed config and label files."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from photod.store.catalog import Catalog
from tests.conftest import SAMPLES
from tests.support import faultkit
from tests.support.daemonkit import make_photos, photod_cmd, wait_for

pytest.importorskip("onnx", reason="the tiny test model is built with onnx")

# Bound on the daemon's peak resident memory over the whole corpus. Measured: about 150 MiB (Python,
# Pillow, onnxruntime, faiss, a decode pool of two). The corpus holds a 12000x12000 PNG (432 MB if it were
# decoded) and headers claiming 100000x100000 pixels (30 GB): staying under 400 MiB shows none of them was
# decoded, and no file was read whole into memory more than a batch at a time.
RSS_BOUND_MIB = 400


def _start_without_dac(config: Path, data_dir: Path, log: Path) -> subprocess.Popen:
    """The daemon as root but without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH, so file modes apply to it."""
    env = {**os.environ, "PHOTOD_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    cmd = photod_cmd(config, "run")
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root and setpriv is not available to drop CAP_DAC_OVERRIDE")
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", *cmd]
    return subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=faultkit.REPO)


def test_bad_input_corpus_fails_alone_with_clear_messages_in_bounded_memory(tmp_path, data_dir):
    rng = faultkit.seeded("bad-input corpus")
    root = tmp_path / "library"
    samples = SAMPLES if SAMPLES.is_dir() else None
    expect = faultkit.write_bad_corpus(root, rng, samples)
    good = make_photos(root / "good", 20)
    expect.update({str(p.relative_to(root)): "staged" for p in good})
    secret = make_photos(root / "private", 1, prefix="secret")[0]
    secret.chmod(0)
    expect["private/secret_0000.jpg"] = "failed"
    locked = root / "locked"
    make_photos(locked, 2, prefix="locked")
    locked.chmod(0)  # a folder that cannot be listed: its photos cannot be seen, so none is catalogued
    expect.update({"locked/locked_0000.jpg": "absent", "locked/locked_0001.jpg": "absent"})
    faultkit.install_tiny(data_dir, "alpha", seed=1)
    config = faultkit.write_config(tmp_path, [root])
    log = tmp_path / "daemon.log"
    proc = _start_without_dac(config, data_dir, log)
    try:

        def done() -> bool:
            c = faultkit.counts_of(data_dir)
            return (
                c["total"] > 0
                and c["new"] == 0
                and c["staged"] == 0
                and "search uses model" in log.read_text(errors="replace")
            )

        wait_for(done, timeout=240, what="every file to be indexed or failed")
        time.sleep(1.5)  # a presence check and a poll pass later: still alive, nothing changed
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        peak = faultkit.peak_rss_mib(proc.pid)
    finally:
        locked.chmod(0o755)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 0, log.read_text(errors="replace")[-3000:]
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[text.find("Traceback") - 500 :][:3000]
    with Catalog.in_data_dir(data_dir) as cat:
        rows = {r["rel_path"]: r for r in cat.query("SELECT * FROM photos")}
    problems = []
    for rel, want in expect.items():
        row = rows.get(rel)
        if want == "absent":
            if row is not None:
                problems.append(f"{rel}: catalogued ({row['state']}) but is not a regular photo file")
            continue
        if rel.encode("utf-8", "surrogateescape") != rel.encode("utf-8", "replace"):
            # Not valid UTF-8: the row's key has the bad bytes escaped, and it holds the exact bytes.
            row = rows.get(rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))
            if row is None or row["state"] != "indexed" or row["rel_bytes"] != os.fsencode(rel):
                problems.append(f"{rel!r}: not indexed under its exact name ({row and row['state']})")
            continue
        if row is None:
            problems.append(f"{rel}: not catalogued")
        elif want == "failed" and row["state"] != "failed":
            problems.append(f"{rel}: {row['state']}, expected failed")
        elif want == "staged" and row["state"] != "indexed":
            problems.append(f"{rel}: {row['state']} ({row['error']}), expected indexed")
        elif row["state"] == "failed" and Path(rel).name not in (row["error"] or ""):
            problems.append(f"{rel}: failed with a message that does not name it: {row['error']!r}")
        elif row["state"] not in ("failed", "indexed"):
            problems.append(f"{rel}: left {row['state']}")
    assert not problems, "\n".join(problems)
    secret_error = rows["private/secret_0000.jpg"]["error"]
    assert "permission denied" in secret_error
    assert "cannot read" in text and "locked" in text  # the unlistable folder is named in the log
    bomb = rows["bad/claims_100000x100000.png"]["error"]
    assert "decompression-bomb" in bomb or "exceeds" in bomb, bomb
    faultkit.check_data_dir(data_dir, settled=True)
    print(
        f"bad-input corpus: {len(expect)} files, {sum(r['state'] == 'failed' for r in rows.values())} failed, "
        f"daemon peak RSS {peak:.0f} MiB"
    )
    assert peak < RSS_BOUND_MIB, f"daemon peak memory {peak:.0f} MiB over {RSS_BOUND_MIB}"
    faultkit.record(bad_files=sum(w != "staged" for w in expect.values()), peak_rss_mib=peak)


@pytest.mark.parametrize(
    "text, named",
    [
        ("[daemon\nsettle_seconds = 1\n", "config.toml"),  # not TOML
        ("[daemon]\nsettle_seconds = 'soon'\n", "daemon.settle_seconds"),  # wrong type
        ("[daemon]\nsettle_secs = 1\n", "settle_secs"),  # unknown key
        ("[workers]\nbatch_size = 100000000\n", "workers.batch_size"),  # out of range
        ("roots = 'D:/photos'\n", "roots"),  # not an array of tables
        ("[[roots]]\nlabel = 'no path'\n", "path"),  # root without a path
        ("[[roots]]\npath = '/a'\n[[roots]]\npath = '/a'\n", "/a"),  # the same root twice
        ("[stage]\nsize = nan\n", "stage.size"),
        ("\x00\x01\x02 binary junk \xff", "config.toml"),
    ],
)
def test_malformed_config_is_refused_with_a_message_naming_it(tmp_path, text, named):
    cfg = tmp_path / "config.toml"
    cfg.write_bytes(text.encode("utf-8", "surrogateescape") if "\xff" not in text else text.encode("latin-1"))
    done = subprocess.run(
        photod_cmd(cfg, "status"),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PHOTOD_DATA_DIR": str(tmp_path / "data")},
    )
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert named in done.stderr and "Traceback" not in done.stderr, done.stderr
    faultkit.record(bad_files=1)


LABEL_FILES = {
    "captions.csv": b'path,caption\n"unclosed quote,\xe7\x8c\xab\n',
    "flickr.json": b'[{"image": "a.jpg", "caption": ["ok"]}, {"image": 3}',
    "not_utf8.csv": b"a.jpg,\xff\xfe caption\n",
    "train_texts.jsonl": b'{"text_id": 1, "text": "\xe7\x8c\xab"}\nnot json at all\n',
    "empty_caption.csv": b"a.jpg,\n",
}


@pytest.mark.parametrize("name", sorted(LABEL_FILES))
def test_malformed_label_files_raise_label_error_and_add_nothing(tmp_path, catalog, name):
    from photod.errors import LabelError, PhotodError
    from photod.labels import imports as labels

    root = tmp_path / "root"
    make_photos(root, 1, prefix="a")
    (root / "a_0000.jpg").rename(root / "a.jpg")
    path = tmp_path / name
    path.write_bytes(LABEL_FILES[name])
    with pytest.raises(PhotodError) as err:
        labels.import_labels(catalog, path)
    assert isinstance(err.value, LabelError) or "label" in type(err.value).__name__.lower() or name in err.value.message
    assert name in err.value.message, err.value.message
    assert catalog.captions() == []
    faultkit.record(bad_files=1)


def test_shared_samples_all_end_indexed_or_failed_with_a_reason(samples, tmp_path, data_dir):
    """Every file of ../shared/photos/exif-samples through the one-shot path (`photod scan`): none is
    left pending, none crashes the command, each failure names its file."""
    root = tmp_path / "samples"
    shutil.copytree(samples, root)
    faultkit.install_tiny(data_dir, "alpha", seed=1)
    config = faultkit.write_config(tmp_path, [root])
    done = faultkit.photod(config, data_dir, "scan", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    with Catalog.in_data_dir(data_dir) as cat:
        rows = cat.query("SELECT rel_path, state, error FROM photos")
    assert rows and all(r["state"] in ("indexed", "failed") for r in rows), [
        r for r in rows if r["state"] not in ("indexed", "failed")
    ][:5]
    for r in rows:
        if r["state"] == "failed":
            assert Path(r["rel_path"]).name in r["error"], r
    print(f"shared samples: {len(rows)} files, {sum(r['state'] == 'failed' for r in rows)} failed")
    faultkit.record(bad_files=sum(r["state"] == "failed" for r in rows))
