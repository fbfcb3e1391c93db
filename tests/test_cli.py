"""The `photod` command line on real data dirs."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from photod.cli import main
from photod.index.vectorindex import VectorIndex, index_paths
from photod.model import registry
from photod.store import names, vectors
from photod.store.catalog import Catalog
from tests.support.daemonkit import make_photos, photod_cmd, write_config
from tests.support.modelkit import tiny_bundle
from tests.support.onnxkit import unit_vectors


@pytest.fixture
def library(tmp_path, data_dir):
    root = tmp_path / "photos"
    make_photos(root / "2019 三亚 婚礼", 3, prefix="DSC")
    make_photos(root / "pets", 2, prefix="小白")
    (root / "pets" / "broken.jpg").write_text("not a photo")
    config = write_config(tmp_path, [root])
    assert main(["--config", str(config), "scan"]) == 0
    return config, root


def run_json(capsys, *args):
    capsys.readouterr()
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def test_status_json_has_the_documented_shape(library, capsys):
    config, root = library
    status = run_json(capsys, "--config", str(config), "status", "--json")
    assert status["photos"] == {
        "total": 6,
        "new": 0,
        "staged": 5,
        "indexed": 0,
        "failed": 1,
        "offline": 0,
        "deleted": 0,
        "photos": 6,
        "videos": 0,
    }
    (r,) = status["roots"]
    assert r["path"] == str(root) and r["online"] is True and r["photos"] == 6
    assert set(r) >= {"path", "online", "watch_mode", "photos"}


def test_search_by_name_json(library, capsys):
    config, root = library
    rows = run_json(capsys, "--config", str(config), "search", "--name", "三亚", "--json")
    assert len(rows) == 3 and all(r["path"].startswith(str(root / "2019 三亚 婚礼")) for r in rows)
    assert all(isinstance(r["id"], int) and r["score"] is None for r in rows)
    rows = run_json(capsys, "--config", str(config), "search", "--name", "小白", "--folder", "pets", "--json")
    assert len(rows) == 2
    assert (
        run_json(capsys, "--config", str(config), "search", "--name", "小白", "--after", "2999-01-01", "--json") == []
    )


def test_text_search_without_a_model_says_so_and_falls_back_to_filenames(library, capsys):
    config, _ = library
    capsys.readouterr()
    assert main(["--config", str(config), "search", "婚礼", "--json"]) == 0
    out = capsys.readouterr()
    assert "no model is installed" in out.err and "photod model pull" in out.err and "model import" in out.err
    assert len(json.loads(out.out)) == 3


def test_a_filename_search_loads_neither_faiss_nor_the_model_runtime(library):
    """`photod search --name` answers from the catalog alone, so it starts as fast as `photod status`."""
    config, _ = library
    cmd = photod_cmd(config, "search", "--name", "DSC")
    result = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "DSC" in result.stdout
    imported = {
        line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")
    }
    assert "photod.search.finder" in imported
    assert not imported & {"faiss", "onnxruntime", "photod.search.searcher", "photod.model.encoder"}


def test_failed_lists_the_reason(library, capsys):
    config, _ = library
    rows = run_json(capsys, "--config", str(config), "failed", "--json")
    assert len(rows) == 1 and rows[0]["path"].endswith("pets/broken.jpg") and "broken.jpg" in rows[0]["error"]


def test_failed_shows_a_gbk_name_decoded(tmp_path, capsys):
    """A file named in GBK on disk (an old Windows PC's) that cannot be read: `photod failed` names it as a
    person reads it, decoded and marked with its encoding, as search results do; --json keeps the \\xNN `path`
    beside it."""
    root = tmp_path / "photos"
    folder, name = "三亚".encode("gbk"), "海边日落.jpg".encode("gbk")
    os.makedirs(os.path.join(os.fsencode(root), folder))
    with open(os.path.join(os.fsencode(root), folder, name), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 a JPEG cut short")
    config = write_config(tmp_path, [root])
    assert main(["--config", str(config), "scan"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "failed"]) == 0
    shown, error = capsys.readouterr().out.splitlines()
    assert shown == f"{root}/三亚/海边日落.jpg [GB18030]" and error.startswith("    ") and "truncated" in error
    (row,) = run_json(capsys, "--config", str(config), "failed", "--json")
    assert row["shown"] == f"{root}/三亚/海边日落.jpg [GB18030]"
    assert row["path"] == f"{root}/{names.key(os.fsdecode(folder + b'/' + name))}" and "\\x" in row["path"]
    assert row["error"] == error.strip()


def test_roots_add_list_remove(tmp_path, capsys):
    extra = tmp_path / "usb"
    extra.mkdir()
    config = write_config(tmp_path, [])
    assert main(["--config", str(config), "roots", "add", str(extra), "--label", "USB", "--watch", "poll"]) == 0
    roots = run_json(capsys, "--config", str(config), "roots", "list", "--json")
    assert [(r["path"], r["label"], r["watch"], r["source"]) for r in roots] == [(str(extra), "USB", "poll", "cli")]
    assert main(["--config", str(config), "roots", "remove", "USB"]) == 0
    assert run_json(capsys, "--config", str(config), "roots", "list", "--json") == []


def test_errors_are_one_friendly_line(tmp_path):
    config = write_config(tmp_path, [])
    result = subprocess.run(photod_cmd(config, "roots", "add", str(tmp_path / "nope")), capture_output=True, text=True)
    assert result.returncode == 1
    assert "is not a folder" in result.stderr and "hint:" in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run(photod_cmd(config, "roots", "remove", "nothing-like-it"), capture_output=True, text=True)
    assert result.returncode == 1 and "no root named 'nothing-like-it'" in result.stderr


def test_migrate_and_service_print(tmp_path, capsys):
    config = write_config(tmp_path, [tmp_path])
    assert main(["--config", str(config), "migrate"]) == 0
    assert "applied 0001_catalog.sql" in capsys.readouterr().out
    assert main(["--config", str(config), "migrate"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["--config", str(config), "service", "install", "--print"]) == 0
    assert "Type=notify" in capsys.readouterr().out


def test_doctor_reports_each_root(tmp_path, capsys):
    config = write_config(tmp_path, [tmp_path, tmp_path / "missing"])
    main(["--config", str(config), "doctor"])
    out = capsys.readouterr().out
    assert f"root {tmp_path}: inotify" in out or f"root {tmp_path}: poll" in out
    assert "missing (offline)" in out
    from photod.roots.listing import BACKEND

    assert "folder walker" in out and BACKEND.split()[0] in out


def test_a_read_only_command_with_another_config_deletes_nothing(library, tmp_path, capsys):
    """`photod status --config other.toml` on the daemon's data dir must not retire the daemon's roots;
    only a command that owns the configuration (run, scan) does."""
    config, root = library
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = write_config(other_dir, [tmp_path / "elsewhere"])
    for args in (["status"], ["search", "--name", "DSC"], ["roots", "list"], ["failed"]):
        capsys.readouterr()
        main(["--config", str(other), *args])
    status = run_json(capsys, "--config", str(config), "status", "--json")
    assert status["photos"]["deleted"] == 0 and status["photos"]["total"] == 6
    assert main(["--config", str(other), "scan"]) == 0  # the owner of `other` retires the first root
    assert run_json(capsys, "--config", str(config), "status", "--json")["photos"]["deleted"] == 6


def test_model_remove_deletes_the_vectors_only_with_the_last_bundle_of_their_image_tower(
    library, data_dir, tmp_path, capsys
):
    """A `lit` fine-tune keeps its base's image tower, so the vectors stored for one are the other's too:
    removing either keeps them, removing the second deletes them and their index."""
    config, _ = library
    base = tiny_bundle(tmp_path / "base", name="base")
    lit = tiny_bundle(tmp_path / "lit", name="lit", text_seed=7)
    other = tiny_bundle(tmp_path / "other", name="other", seed=3)
    assert base.image_id == lit.image_id != other.image_id and base.model_id != lit.model_id
    for b in (base, lit, other):
        registry.install_bundle(b.path, data_dir, b.name)
    with Catalog.in_data_dir(data_dir) as cat:
        ids = vectors.pending_encode(cat, base.image_id)
        for tower in (base.image_id, other.image_id):
            vectors.store_vectors(cat, tower, ids, unit_vectors(len(ids), 8))
            VectorIndex.open(data_dir, tower, cat).save()

    def remove(name: str) -> str:
        capsys.readouterr()
        assert main(["--config", str(config), "model", "remove", name]) == 0
        return capsys.readouterr().out

    def left(tower: str) -> tuple[int, bool]:
        with Catalog.in_data_dir(data_dir) as cat:
            return vectors.count_vectors(cat, tower), index_paths(data_dir, tower)[0].exists()

    assert len(ids) == 5
    assert remove("base") == "removed base\n"
    assert left(base.image_id) == (5, True)
    assert remove("lit") == "removed lit and the 5 photo vectors of its image model\n"
    assert left(base.image_id) == (0, False) and left(other.image_id) == (5, True)
    assert not any(p.name.startswith(base.image_id) for p in (data_dir / "index").iterdir())
