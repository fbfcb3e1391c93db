"""The CPU photod runs on: its model and the instruction sets that decide how fast int8 and fp32 encode.

Read from /proc/cpuinfo, so `photod doctor` and the benchmarks name the same features. ONNX Runtime's int8
matrix products use VNNI (or AVX-VNNI, or AMX) on x86 where present and plain AVX2 otherwise; on ARM the
dot-product instructions (asimddp: Cortex-A76 and later, the Raspberry Pi 5) or i8mm, else plain NEON (the
Pi 4's Cortex-A72).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

# flag in /proc/cpuinfo -> the name people know it by, in the order they are printed
FEATURES = {
    "avx2": "AVX2",
    "fma": "FMA",
    "avx512f": "AVX-512",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "amx_int8": "AMX",
    "asimddp": "dot-product (asimddp)",
    "sve": "SVE",
    "i8mm": "i8mm",
}
X86_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
ARM_FLAGS = ("asimddp", "sve", "i8mm")
INT8_DOT = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")
# "CPU part" of Arm's own cores, as an ARM /proc/cpuinfo names them (it has no "model name")
ARM_PARTS = {
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse N1",
    "0xd0d": "Cortex-A77",
    "0xd40": "Neoverse V1",
    "0xd41": "Cortex-A78",
    "0xd46": "Cortex-A510",
    "0xd47": "Cortex-A710",
    "0xd49": "Neoverse N2",
    "0xd4b": "Cortex-A78C",
}


@dataclass(frozen=True)
class Cpu:
    model: str
    cores: int
    flags: frozenset[str]
    arm: bool
    # an ARM machine whose /proc/cpuinfo is in x86 form: qemu-user shows the guest the host's
    foreign: bool = False

    def features(self) -> list[str]:
        """The flags that matter on this CPU's architecture which it has, in FEATURES order."""
        return [f for f in (ARM_FLAGS if self.arm else X86_FLAGS) if f in self.flags]

    def lacking(self) -> list[str]:
        """The flags that matter on this CPU's architecture which it lacks."""
        return [f for f in (ARM_FLAGS if self.arm else X86_FLAGS) if f not in self.flags]

    def int8_kind(self) -> str:
        """What ONNX Runtime's int8 kernels can use here, in words."""
        dots = [FEATURES[f] for f in INT8_DOT if f in self.flags]
        if dots:
            return f"int8 kernels can use {', '.join(dots)}"
        return "no int8 dot-product instructions (int8 still beats fp32, by less)"


def read_cpu(path: str | os.PathLike[str] = "/proc/cpuinfo") -> Cpu:
    model, part, flags, x86_form = "", "", set(), False
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "model name" and not model:
            model = value
        elif key == "cpu part" and not part:
            part = value.lower()
        elif key in ("flags", "features"):
            flags |= set(value.split())
            x86_form = x86_form or key == "flags"
    machine = platform.machine()
    arm_machine = machine.startswith(("aarch64", "arm"))
    if not model:
        model = ARM_PARTS.get(part, f"{machine} CPU part {part}" if part else machine or "unknown CPU")
    return Cpu(model, os.cpu_count() or 1, frozenset(flags), arm_machine or bool(part), arm_machine and x86_form)
