"""systemd integration: the unit file `photod service install` writes, and sd_notify over a datagram socket.

The notify protocol is a few lines of socket code, so photod needs no python-systemd dependency.
"""

from __future__ import annotations

import logging
import os
import shlex
import socket
import sys
from pathlib import Path

from photod import durable
from photod.config import Config
from photod.errors import PhotodError

log = logging.getLogger(__name__)


class Notifier:
    """Sends READY/STATUS/WATCHDOG/STOPPING to $NOTIFY_SOCKET; a no-op when not run by systemd."""

    def __init__(self, address: str | None = None):
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        usec = os.environ.get("WATCHDOG_USEC")
        # systemd kills the service if no WATCHDOG=1 arrives within WATCHDOG_USEC; ping at half of it.
        self.watchdog_interval = int(usec) / 2e6 if usec and usec.isdigit() else None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *fields: str) -> bool:
        if not self.address:
            return False
        addr = self.address
        if addr.startswith("@"):  # abstract namespace socket
            addr = "\0" + addr[1:]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(addr)
                sock.sendall("\n".join(fields).encode())
            return True
        except OSError as exc:
            log.debug("sd_notify to %s failed: %s", self.address, exc)
            return False

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", f"STATUS={status}") if status else self.send("READY=1")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")


def render_unit(cfg: Config, exe: list[str], user: bool, config_path: Path | None) -> str:
    """The unit text. Roots are read-only to the service: photod never writes inside a root."""
    cmd = " ".join(shlex.quote(part) for part in exe)
    if config_path is not None:
        cmd += f" --config {shlex.quote(str(config_path))}"
    read_only = " ".join(_unit_path(r.path) for r in cfg.roots)
    lines = [
        "[Unit]",
        "Description=photod photo library daemon (catalog, stage, index)",
        "Documentation=man:photod(1)",
        "After=local-fs.target remote-fs.target network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={cmd} run",
        "Restart=on-failure",
        "RestartSec=10",
        "WatchdogSec=300",  # generous: one staging or encoding step on a Pi can take half a minute
        "TimeoutStopSec=60",
        f"Environment=PHOTOD_DATA_DIR={_unit_path(cfg.data_dir)}",
        "Environment=PYTHONUNBUFFERED=1",
        "Nice=10",
        "IOSchedulingClass=idle",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectControlGroups=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "RestrictRealtime=yes",
        "RestrictAddressFamilies=AF_UNIX",
        "SystemCallArchitectures=native",
        "UMask=0077",
        f"ReadWritePaths={_unit_path(cfg.data_dir)}",
    ]
    if read_only:
        lines.append(f"ReadOnlyPaths=-{read_only.replace(' ', ' -')}")
    lines += ["", "[Install]", f"WantedBy={'default.target' if user else 'multi-user.target'}", ""]
    return "\n".join(lines)


def _unit_path(path: Path) -> str:
    # systemd unit syntax: spaces must be escaped in path lists.
    return str(path).replace("\\", "\\\\").replace(" ", "\\x20")


def unit_path(user: bool) -> Path:
    if user:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        return base / "systemd" / "user" / "photod.service"
    return Path("/etc/systemd/system/photod.service")


def photod_command() -> list[str]:
    """How systemd should start this same photod: the interpreter and module, immune to PATH differences."""
    return [sys.executable, "-m", "photod"]


def install_unit(cfg: Config, user: bool, config_path: Path | None, target: Path | None = None) -> Path:
    target = target or unit_path(user)
    text = render_unit(cfg, photod_command(), user, config_path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        durable.write_text(target, text)
    except PermissionError:
        raise PhotodError(
            f"cannot write {target}: permission denied", "run with sudo for a system unit, or use --user"
        ) from None
    return target
