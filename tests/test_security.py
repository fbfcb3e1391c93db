"""Security properties of photod, checked on real processes and real files: no network listener, photod
never writes inside a root, checkpoints and bundles are validated before use, the systemd unit's sandbox.

Pickled code in a checkpoint is refused and never runs: tests/test_model_import.py::
test_weights_only_refuses_pickled_code runs that payload for real; here every torch.load in the source is
read back to make sure none can unpickle arbitrary objects.
"""

from __future__ import annotations

import ast
import json
import signal
import subprocess
from pathlib import Path

import pytest

from photod.config import load_config
from photod.errors import ModelError
from photod.model import bundle as bundles
from photod.model import registry
from photod.service.systemd import install_unit
from tests.support import faultkit
from tests.support.daemonkit import make_photos, start_daemon_process, wait_for

pytest.importorskip("onnx", reason="the tiny test model is built with onnx")


def test_daemon_opens_no_network_socket_and_never_writes_inside_a_root(tmp_path, data_dir):
    root = tmp_path / "library"
    make_photos(root / "2024", 12)
    make_photos(root / "2025", 6, prefix="b")
    (root / "notes.jpg").write_text("not a photo")  # a failure must not leave a marker file either
    before = faultkit.snapshot_tree(root)
    faultkit.install_tiny(data_dir, "alpha", seed=1)
    config = faultkit.write_config(tmp_path, [root])
    log = tmp_path / "daemon.log"
    proc = start_daemon_process(config, data_dir, log)
    try:
        wait_for(
            lambda: (
                faultkit.counts_of(data_dir)["indexed"] == 18
                and faultkit.counts_of(data_dir)["failed"] == 1
                and "search uses model" in log.read_text()
            ),
            timeout=120,
            what="indexing",
        )
        inet = faultkit.inet_sockets(proc.pid)
        sockets = faultkit.socket_inodes(proc.pid)
        # Everything a user does besides the daemon, run while it is up.
        for args in (
            ("search", "海边的日落", "--json"),
            ("search", "--name", "img"),
            ("status", "--json"),
            ("failed",),
            ("scan",),
            ("reindex",),
        ):
            done = faultkit.photod(config, data_dir, *args)
            assert done.returncode == 0, (args, done.stderr[-2000:])
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 0, log.read_text()[-3000:]
    assert inet == [], f"the daemon has network sockets open: {inet}"
    print(f"daemon sockets: {len(sockets)} open, none of them TCP/UDP/raw")
    after = faultkit.snapshot_tree(root)
    assert after == before, {
        k: (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)
    }


def test_daemon_indexes_a_read_only_root(tmp_path, data_dir):
    """The real check that photod needs no write access to a root: a read-only bind mount."""
    src = tmp_path / "src"
    make_photos(src, 8)
    root = tmp_path / "ro"
    root.mkdir()
    mounted = subprocess.run(["mount", "--bind", str(src), str(root)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {mounted.stderr.strip()}")
    try:
        ro = subprocess.run(["mount", "-o", "remount,bind,ro", str(root)], capture_output=True, text=True)
        if ro.returncode != 0:
            pytest.skip(f"cannot remount read-only: {ro.stderr.strip()}")
        with pytest.raises(OSError):
            (root / "probe").write_text("x")
        faultkit.install_tiny(data_dir, "alpha", seed=1)
        config = faultkit.write_config(tmp_path, [root])
        done = faultkit.photod(config, data_dir, "scan", timeout=180)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Read-only" not in done.stderr and "EROFS" not in done.stderr
        assert faultkit.counts_of(data_dir)["indexed"] == 8
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


def _torch_load_calls(folder: Path):
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "torch"
            ):
                yield path, node


def test_every_torch_load_is_weights_only():
    calls = [c for folder in ("photod",) for c in _torch_load_calls(faultkit.REPO / folder)]
    assert calls, "no torch.load found: the checkpoint reader moved; update this test"
    for path, node in calls:
        kw = {k.arg: k.value for k in node.keywords}
        assert (
            "weights_only" in kw and isinstance(kw["weights_only"], ast.Constant) and kw["weights_only"].value is True
        ), f"{path}:{node.lineno}: torch.load without weights_only=True"


@pytest.mark.parametrize(
    "change, field",
    [
        ({"files": {"../../etc/passwd": "0" * 64}}, "files"),
        ({"embed_dim": "512; rm -rf /"}, "embed_dim"),
        ({"image_size": 10**9}, "image_size"),
        ({"mean": [0.5, 0.5]}, "mean"),
        ({"format": 99}, "format"),
    ],
)
def test_bundle_manifests_are_validated_before_use(tmp_path, data_dir, change, field):
    from tests.support.modelkit import tiny_bundle

    src = tmp_path / "bundle"
    tiny_bundle(src, name="evil")
    manifest = json.loads((src / bundles.MANIFEST).read_text())
    manifest.update(change)
    (src / bundles.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelError) as err:
        bundles.Bundle.load(src)
    assert field in str(err.value), str(err.value)
    with pytest.raises(ModelError):
        registry.install_bundle(src, data_dir, "evil")
    assert not (registry.models_dir(data_dir) / "evil").exists()


def test_systemd_unit_sandbox_read_back(tmp_path, monkeypatch):
    """Beyond tests/test_systemd.py: no network address family, roots read-only, only the data dir writable."""
    monkeypatch.delenv("PHOTOD_DATA_DIR", raising=False)
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text('[daemon]\ndata_dir = "/var/lib/photod"\n[[roots]]\npath = "/mnt/usb"\n')
    unit = install_unit(load_config(cfg_file), user=False, config_path=cfg_file, target=tmp_path / "photod.service")
    lines = unit.read_text().splitlines()
    settings = {}
    for line in lines:
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    assert settings["RestrictAddressFamilies"] == ["AF_UNIX"]  # notify socket only: no TCP/UDP at all
    for key in (
        "NoNewPrivileges",
        "PrivateTmp",
        "PrivateDevices",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectControlGroups",
        "RestrictSUIDSGID",
        "RestrictRealtime",
    ):
        assert settings.get(key) == ["yes"], key
    assert settings["ProtectSystem"] == ["strict"] and settings["ProtectHome"] == ["read-only"]
    assert settings["ReadWritePaths"] == ["/var/lib/photod"]
    assert settings["ReadOnlyPaths"] == ["-/mnt/usb"]
