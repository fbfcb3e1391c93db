import os
import socket

from photod.config import load_config
from photod.service.systemd import Notifier, install_unit, render_unit


def test_unit_is_notify_with_hardening(tmp_path):
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text(
        '[daemon]\ndata_dir = "/var/lib/photod"\n[[roots]]\npath = "/mnt/usb photos"\n[[roots]]\npath = "/mnt/nas"\n'
    )
    os.environ.pop("PHOTOD_DATA_DIR", None)
    cfg = load_config(cfg_file)
    unit = install_unit(cfg, user=False, config_path=cfg_file, target=tmp_path / "photod.service")
    text = unit.read_text()
    lines = set(text.splitlines())
    assert "Type=notify" in lines and "Restart=on-failure" in lines
    assert "NoNewPrivileges=yes" in lines and "ProtectSystem=strict" in lines
    assert "ReadWritePaths=/var/lib/photod" in lines
    assert r"ReadOnlyPaths=-/mnt/usb\x20photos -/mnt/nas" in lines
    assert any(line.startswith("WatchdogSec=") for line in lines)
    exec_line = next(line for line in lines if line.startswith("ExecStart="))
    assert exec_line.endswith(f"--config {cfg_file} run") and "-m photod" in exec_line
    assert "WantedBy=multi-user.target" in lines
    assert "WantedBy=default.target" in render_unit(cfg, ["photod"], user=True, config_path=None)


def test_notify_messages_reach_a_real_datagram_socket(tmp_path, monkeypatch):
    path = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    n = Notifier()
    assert n.watchdog_interval == 15
    assert n.ready("12 photos")
    assert server.recv(4096).decode().split("\n") == ["READY=1", "STATUS=12 photos"]
    n.watchdog()
    assert server.recv(4096) == b"WATCHDOG=1"
    n.stopping()
    assert server.recv(4096) == b"STOPPING=1"
    server.close()


def test_notify_abstract_socket(monkeypatch):
    name = f"photod-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name)
    server.settimeout(2)
    assert Notifier("@" + name).status("scanning")
    assert server.recv(4096) == b"STATUS=scanning"
    server.close()


def test_notifier_without_socket_is_silent(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not Notifier().ready()
