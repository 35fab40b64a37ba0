"""What machine a benchmark ran on: CPU model, cores and the ISA features that decide inference speed.

The same code runs 3.65x `yolo track` on an Intel CPU with AMX and bf16 and 2.46x on an AMD with AVX2 only,
so every benchmark prints this line first; a number without it means little.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

# /proc/cpuinfo flag -> the name people know it by
FEATURES = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_vnni": "AVX512-VNNI", "avx_vnni": "AVX-VNNI",
            "avx512_bf16": "AVX512-BF16", "amx_tile": "AMX", "amx_bf16": "AMX-BF16", "amx_int8": "AMX-INT8"}


def describe() -> str:
    """`CPU: <model>, N cores; AVX2 yes, AVX-512 no, ...` (and the GPU, where torch sees one)."""
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    features = ", ".join(f"{name} {'yes' if flag in flags else 'no'}" for flag, name in FEATURES.items())
    return f"CPU: {model}, {os.cpu_count()} cores; {features}"


def tool(name: str) -> str:
    """A console script installed beside the running interpreter (works without the venv on PATH)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.is_file() else name
