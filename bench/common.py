"""What every benchmark script shares: a description of the machine, and writing its own
section of BENCHMARKS.md without touching the sections other scripts wrote."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

from app.settings import REPO_ROOT

BENCHMARKS = REPO_ROOT / "BENCHMARKS.md"
_HEADER = (
    "# Benchmarks\n\n"
    "Each section below is written by the script it names (`python -m bench.NAME`); a re-run\n"
    "replaces its own section and leaves the others alone. Numbers are from the machine named\n"
    "in each section.\n"
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return None


def machine() -> str:
    """One line naming the CPU, the cores this process may use, the RAM, and how busy the
    machine was (other work on shared cores slows every number down)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    ram = _ram_gib()
    ram_text = f"{ram:.0f} GiB RAM" if ram is not None else "RAM unknown"
    load = (
        f", load average {os.getloadavg()[0]:.1f} (cores shared)"
        if hasattr(os, "getloadavg")
        else ""
    )
    return f"{_cpu_model()}, {cores} cores, {ram_text}, Python {platform.python_version()}{load}"


def write_section(name: str, body: str, path: Path = BENCHMARKS) -> None:
    """Put ``body`` between this script's markers in BENCHMARKS.md, replacing what was
    there, appending the section when it is new."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.is_file() else _HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text, encoding="utf-8")
