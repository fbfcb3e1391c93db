"""File names that are not UTF-8 (GBK, Big5, Shift_JIS), real ones on disk: cataloged with their exact bytes,
staged, found by their decoded name, shown marked with the encoding, and followed through the watcher's
creates, renames, folder moves and deletes; the TUI opens and copies them by their bytes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from photod.cli import main
from photod.store import names
from photod.store.catalog import Catalog
from photod.tui.data import full_path, open_with_system
from tests.support.daemonkit import DaemonThread, load, wait_for, write_config

SANYA_GBK = "三亚".encode("gbk")  # b'\xc8\xfd\xd1\xc7'
BEACH_GBK = "海边日落.jpg".encode("gbk")
TAIPEI_BIG5 = "台北.jpg".encode("big5")


def jpeg(color=(200, 120, 40)) -> bytes:
    from io import BytesIO

    buf = BytesIO()
    Image.new("RGB", (80, 60), color).save(buf, "JPEG")
    return buf.getvalue()


def put(folder: Path, raw: bytes, data: bytes) -> bytes:
    path = os.path.join(os.fsencode(folder), raw)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def test_the_names_module_round_trips_and_decodes():
    rel = os.fsdecode(SANYA_GBK + b"/" + BEACH_GBK)
    key, raw = names.storable(rel)
    assert raw == SANYA_GBK + b"/" + BEACH_GBK and key.isascii() and "\\x" in key
    assert names.fs_rel(key, raw) == rel and os.fsencode(names.fs_rel(key, raw)) == raw
    assert names.shown(key, raw) == "三亚/海边日落.jpg [GB18030]"
    # Big5 and Shift_JIS pairs are valid GB18030 too, and GB18030 is tried first: they are shown as GB18030
    # reads them. Big5 wins only for bytes GB18030 refuses (0x80 or 0xFF, a lone lead byte).
    assert names.decoded(TAIPEI_BIG5)[1] == "gb18030"
    assert (
        names.decoded("台北".encode("big5") + b"\x80.jpg") is None
        or names.decoded("台北".encode("big5") + b"\x80.jpg")[1] != "gb18030"
    )
    assert names.storable("三亚/ok.jpg") == ("三亚/ok.jpg", None)
    assert (
        names.decoded(b"\xff\xfe\xff.jpg") is None
        and names.shown("\\xff\\xfe\\xff.jpg", b"\xff\xfe\xff.jpg") == "\\xff\\xfe\\xff.jpg"
    )


def test_a_shell_turns_the_copied_path_back_into_the_exact_file(tmp_path):
    path = put(tmp_path, SANYA_GBK + b" 'x'.jpg", b"the bytes")
    quoted = names.shell_quoted(os.fsdecode(path))
    assert quoted.startswith("$'") and quoted.isascii()
    out = subprocess.run(["bash", "-c", f"cat {quoted}"], capture_output=True, check=True).stdout
    assert out == b"the bytes"


def test_the_tui_opens_the_exact_bytes(tmp_path, monkeypatch):
    path = put(tmp_path / "lib", SANYA_GBK + b".jpg", jpeg())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "argv"
    (bin_dir / "xdg-open").write_text(f"#!/bin/sh\nprintf '%s' \"$1\" > {record}\n")
    (bin_dir / "xdg-open").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    open_with_system(Path(os.fsdecode(path)))
    wait_for(lambda: record.exists() and record.stat().st_size > 0, timeout=10, what="the viewer to start")
    assert record.read_bytes() == path


def test_gbk_names_are_staged_searchable_and_followed_by_the_watcher(tmp_path, data_dir, capsys):
    root = tmp_path / "old_drive"
    put(root, SANYA_GBK + b"/" + BEACH_GBK, jpeg())
    put(root, b"plain.jpg", jpeg((10, 10, 10)))
    config = write_config(tmp_path, [root])
    cfg = load(config)

    def row(where: str, *args) -> dict | None:
        with Catalog.in_data_dir(data_dir) as cat:
            found = cat.query(f"SELECT * FROM photos WHERE {where}", args)
            return found[0] if found else None

    with DaemonThread(cfg):
        wait_for(
            lambda: (r := row("rel_bytes IS NOT NULL")) is not None and r["state"] == "staged",
            what="the GBK-named photo to be staged",
        )
        first = row("rel_bytes IS NOT NULL")
        assert first["rel_bytes"] == SANYA_GBK + b"/" + BEACH_GBK and first["error"] is None
        # A new file with a GBK name, seen by the watcher.
        put(root, SANYA_GBK + b"/" + "椰子树.jpg".encode("gbk"), jpeg((0, 160, 0)))
        wait_for(
            lambda: (
                (r := row("rel_bytes = ?", SANYA_GBK + b"/" + "椰子树.jpg".encode("gbk"))) is not None
                and r["state"] == "staged"
            ),
            what="the watcher's new GBK file",
        )
        # A rename of the GBK folder to another GBK name: same ids, new bytes.
        new_folder = "海南".encode("gbk")
        os.rename(os.path.join(os.fsencode(root), SANYA_GBK), os.path.join(os.fsencode(root), new_folder))
        wait_for(
            lambda: (r := row("id = ?", first["id"])) is not None and r["rel_bytes"] == new_folder + b"/" + BEACH_GBK,
            what="the folder rename",
        )
        assert row("id = ?", first["id"])["state"] == "staged"
        # A file renamed within it, then deleted.
        os.rename(
            os.path.join(os.fsencode(root), new_folder, BEACH_GBK),
            os.path.join(os.fsencode(root), new_folder, "日落.jpg".encode("gbk")),
        )
        wait_for(
            lambda: row("id = ?", first["id"])["rel_bytes"] == new_folder + b"/" + "日落.jpg".encode("gbk"),
            what="the file rename",
        )
        os.unlink(os.path.join(os.fsencode(root), new_folder, "日落.jpg".encode("gbk")))
        wait_for(lambda: row("id = ?", first["id"])["state"] == "deleted", what="the delete")
    # Found by the decoded name, shown marked; the path opens the right file.
    capsys.readouterr()
    assert main(["--config", str(config), "search", "--name", "椰子树", "--json"]) == 0
    (hit,) = json.loads(capsys.readouterr().out)
    assert hit["filename"] == "椰子树.jpg" and hit["folder"] == "海南" and hit["name_encoding"] == "gb18030"
    assert hit["shown"].endswith("海南/椰子树.jpg [GB18030]")
    assert main(["--config", str(config), "search", "--name", "椰子树"]) == 0
    assert "海南/椰子树.jpg [GB18030]" in capsys.readouterr().out
    with Catalog.in_data_dir(data_dir) as cat:
        photo = cat.photo(hit["id"])
        assert full_path(photo).read_bytes()[:2] == b"\xff\xd8"
        assert not cat.failed()


@pytest.mark.parametrize("raw", [TAIPEI_BIG5, "東京.jpg".encode("shift_jis"), b"\xff\xfe caf\xe9.jpg"])
def test_other_encodings_and_undecodable_bytes_are_cataloged_too(tmp_path, data_dir, raw):
    root = tmp_path / "r"
    put(root, raw, jpeg())
    config = write_config(tmp_path, [root])
    assert main(["--config", str(config), "scan"]) == 0
    with Catalog.in_data_dir(data_dir) as cat:
        (r,) = cat.query("SELECT * FROM photos")
        assert r["state"] == "staged" and r["rel_bytes"] == raw


def test_a_video_and_a_raw_with_gbk_names_are_staged(tmp_path, data_dir):
    prism = Path(__file__).resolve().parent.parent.parent / "shared" / "photos" / "photoprism-samples"
    if not prism.is_dir():
        pytest.skip(f"samples not found at {prism}")
    root = tmp_path / "r"
    put(root, "地球.mov".encode("gbk"), (prism / "earth.mov").read_bytes())
    put(root, "相机.dng".encode("gbk"), (prism / "canon_eos_6d.dng").read_bytes())
    config = write_config(tmp_path, [root])
    assert main(["--config", str(config), "scan"]) == 0
    with Catalog.in_data_dir(data_dir) as cat:
        got = {r["rel_bytes"]: r for r in cat.query("SELECT * FROM photos WHERE kind != 'frame'")}
    assert got["地球.mov".encode("gbk")]["state"] == "staged" and got["地球.mov".encode("gbk")]["kind"] == "video"
    assert got["相机.dng".encode("gbk")]["state"] == "staged" and got["相机.dng".encode("gbk")]["format"] == "RAW DNG"
