"""`photod doctor`: it survives native libraries that crash, checks every watched root, names the CPU's
instruction sets and times the installed encoder."""

from __future__ import annotations

import os

import pytest

from photod.cli import main
from photod.config import load_config
from photod.model import registry
from photod.service import doctor
from photod.service.cpu import read_cpu
from tests.support.daemonkit import write_config
from tests.support.modelkit import tiny_bundle

CRASHERS = {
    # a signal sent by the module itself, and a real invalid read in native code (ctypes reads address 0)
    "crash_by_kill": "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
    "crash_by_null_read": "import ctypes\nctypes.string_at(0)\n",
    "hangs_at_import": "import time\ntime.sleep(60)\n",
}


@pytest.fixture
def crashing_modules(tmp_path, monkeypatch):
    folder = tmp_path / "crashers"
    folder.mkdir()
    for name, code in CRASHERS.items():
        (folder / f"{name}.py").write_text(code)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])))
    return folder


def test_a_probe_that_segfaults_fails_alone_and_the_rest_still_run(crashing_modules):
    results = doctor.probe(["numpy", "crash_by_kill", "lmdb", "crash_by_null_read", "walker"])
    assert list(results) == ["numpy", "crash_by_kill", "lmdb", "crash_by_null_read", "walker"]
    for name in ("crash_by_kill", "crash_by_null_read"):
        assert not results[name]["ok"]
        assert results[name]["detail"] == "the probe crashed with signal 11 (SIGSEGV)"
        assert "ARM /proc/cpuinfo" in results[name]["hint"] and name in results[name]["hint"]
    # each crash cost only its own probe: a new child ran the ones after it
    assert results["numpy"]["ok"] and results["lmdb"]["ok"] and results["walker"]["ok"]


def test_a_probe_that_hangs_is_stopped(crashing_modules):
    results = doctor.probe(["hangs_at_import", "numpy"], timeout=3)
    assert results["hangs_at_import"] == {
        "ok": False,
        "detail": "the probe did not finish in 3 s",
        "hint": results["hangs_at_import"]["hint"],
    }
    assert results["numpy"]["ok"]


def test_doctor_reports_a_crashing_dependency_and_goes_on(crashing_modules, tmp_path):
    cfg = load_config(write_config(tmp_path, [tmp_path]))
    probes = ("numpy", "crash_by_null_read", "onnxruntime", "walker")
    checks = {c.name: c for c in doctor.run_checks(cfg, probes=probes)}
    crashed = checks["import crash_by_null_read"]
    assert (crashed.level, crashed.detail) == ("fail", "the probe crashed with signal 11 (SIGSEGV)")
    assert checks["import onnxruntime"].level == "ok" and checks["folder walker"].level == "ok"
    # the checks after it ran
    assert f"root {tmp_path}" in checks
    assert checks["model"].level == "warn" and checks["model"].detail.startswith("none installed")
    assert "encoder speed" not in checks  # no model: nothing is timed


def test_doctor_checks_roots_added_with_roots_add_and_only_warns_when_there_are_none(tmp_path, capsys):
    config = write_config(tmp_path, [])
    added, removed = tmp_path / "added", tmp_path / "removed"
    added.mkdir()
    removed.mkdir()
    data = tmp_path / "data"
    main(["--config", str(config), "doctor"])
    assert "[warn] roots: none: the config names none and none were added" in capsys.readouterr().out
    assert not data.exists()  # the doctor reads the catalog; it creates nothing

    for path in (added, removed):
        assert main(["--config", str(config), "roots", "add", str(path)]) == 0
    assert main(["--config", str(config), "roots", "remove", str(removed)]) == 0
    capsys.readouterr()
    main(["--config", str(config), "doctor"])
    out = capsys.readouterr().out
    assert f"[ok  ] root {added}: inotify" in out or f"[ok  ] root {added}: poll" in out
    assert "added with `photod roots add`" in out
    assert f"root {removed}" not in out and "roots: none" not in out


def test_a_catalog_root_that_went_missing_is_reported_offline(tmp_path, capsys):
    config = write_config(tmp_path, [])
    drive = tmp_path / "drive"
    drive.mkdir()
    assert main(["--config", str(config), "roots", "add", str(drive)]) == 0
    drive.rmdir()
    capsys.readouterr()
    main(["--config", str(config), "doctor"])
    assert f"[warn] root {drive}: missing (offline)" in capsys.readouterr().out


def test_doctor_times_the_installed_encoder(tmp_path, data_dir, capsys):
    bundle = tiny_bundle(tmp_path / "tiny")
    registry.install_bundle(bundle.path, data_dir, bundle.name)
    registry.use_bundle(data_dir, bundle.name)
    config = write_config(tmp_path, [tmp_path])
    main(["--config", str(config), "doctor"])
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "encoder speed" in ln)
    assert line.startswith("[ok  ] encoder speed: ") and "images/s" in line, line
    assert float(line.split(": ", 1)[1].split()[0]) > 0
    assert "at batch 4, 2 threads" in line


CPUINFO_A72 = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n\n"
CPUINFO_A76 = (
    "processor\t: 0\nFeatures\t: fp asimd aes crc32 atomics asimdrdm lrcpc dcpop asimddp\n"
    "CPU implementer\t: 0x41\nCPU part\t: 0xd0b\n\n"
)
CPUINFO_X86 = "processor\t: 0\nmodel name\t: Some Xeon\nflags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni\n\n"


@pytest.mark.parametrize(
    "text, model, has, lacks, dot",
    [
        (CPUINFO_A72, "Cortex-A72", [], ["asimddp", "sve", "i8mm"], False),
        (CPUINFO_A76, "Cortex-A76", ["asimddp"], ["sve", "i8mm"], True),
        (CPUINFO_X86, "Some Xeon", ["avx2", "fma", "avx512f", "avx512_vnni"], ["avx_vnni", "amx_int8"], True),
    ],
)
def test_the_cpu_and_its_instruction_sets_are_read_from_cpuinfo(tmp_path, text, model, has, lacks, dot):
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    cpu = read_cpu(path)
    assert (cpu.model, cpu.features(), cpu.lacking()) == (model, has, lacks)
    assert cpu.int8_kind().startswith("int8 kernels can use") == dot


def test_a_damaged_model_fails_its_timing_and_the_doctor_goes_on(tmp_path, data_dir, capsys):
    bundle = tiny_bundle(tmp_path / "tiny")
    registry.install_bundle(bundle.path, data_dir, bundle.name)
    installed = registry.use_bundle(data_dir, bundle.name)
    installed.image_path.write_bytes(b"not an onnx graph")
    config = write_config(tmp_path, [tmp_path])
    assert main(["--config", str(config), "doctor"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] encoder speed: timing the image encoder exited with status 1: " in out
    assert "import the model again" in out and "[ok  ] places: on" in out


def test_an_x86_cpuinfo_on_an_arm_machine_is_named_as_an_emulator_s(tmp_path, monkeypatch):
    """qemu-user shows an arm64 guest the host's /proc/cpuinfo; onnxruntime crashes on it."""
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO_X86)
    monkeypatch.setattr("platform.machine", lambda: "aarch64")
    cpu = read_cpu(path)
    assert cpu.foreign and cpu.arm and cpu.features() == []
    monkeypatch.setattr("photod.service.doctor.read_cpu", lambda: cpu)
    check = doctor._cpu()
    assert check.level == "warn" and "emulator" in check.detail and "ARM /proc/cpuinfo" in check.hint
    path.write_text(CPUINFO_A76)
    assert not read_cpu(path).foreign
