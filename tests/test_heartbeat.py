"""Whether a daemon runs on a data dir: a real daemon, a real kill -9, a real `photod status`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from photod.cli import main
from photod.service import heartbeat
from tests.support.daemonkit import DaemonThread, load, make_photos, start_daemon_process, wait_for, write_config


def test_a_running_daemon_is_seen_and_a_clean_stop_clears_it(tmp_path, data_dir, capsys):
    root = tmp_path / "photos"
    make_photos(root, 2)
    config = write_config(tmp_path, [root])
    with DaemonThread(load(config)):
        wait_for(lambda: heartbeat.read(data_dir).get("running"), what="the daemon's heartbeat")
        info = heartbeat.read(data_dir)
        assert info["pid"] == os.getpid() and info["seconds_since"] < 30
        assert main(["--config", str(config), "status"]) == 0
        assert f"daemon: running (pid {os.getpid()}" in capsys.readouterr().out
    assert not (data_dir / heartbeat.FILENAME).exists()
    assert heartbeat.read(data_dir) == {"running": False}
    assert main(["--config", str(config), "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["daemon"] == {"running": False}


def test_a_daemon_killed_hard_reads_as_not_running(tmp_path, data_dir):
    root = tmp_path / "photos"
    root.mkdir()
    config = write_config(tmp_path, [root])
    proc = start_daemon_process(config, data_dir, tmp_path / "daemon.log")
    try:
        wait_for(lambda: heartbeat.read(data_dir).get("running"), what="the daemon's heartbeat")
        assert heartbeat.read(data_dir)["pid"] == proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    info = heartbeat.read(data_dir)
    assert info["running"] is False and info["pid"] == proc.pid
    assert "stopped without cleaning up; last seen" in heartbeat.describe(info)


def test_a_pid_reused_by_another_process_is_not_the_daemon(data_dir):
    """After a crash and a reboot the stale pid may belong to anything: the start time tells them apart."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        beat = heartbeat.Heartbeat(data_dir)
        beat.pid = other.pid  # the file names a live process that did not write it
        beat.beat()
        assert heartbeat.read(data_dir)["running"] is True  # same start time: it is that process
        stale = json.loads((data_dir / heartbeat.FILENAME).read_text())
        stale["start_ticks"] -= 1
        (data_dir / heartbeat.FILENAME).write_text(json.dumps(stale))
        assert heartbeat.read(data_dir)["running"] is False
    finally:
        other.kill()
        other.wait()


def test_a_heartbeat_that_cannot_be_written_is_not_an_error(tmp_path):
    beat = heartbeat.Heartbeat(tmp_path / "gone")  # the data dir's disk unmounted, or full
    beat.beat("watching")
    beat.close()
    assert heartbeat.read(tmp_path / "gone") == {"running": False}
