"""The study's code. Importing ``src`` (every entry point is ``python -m src.<stage>``) first pins the CPU
numerics, so that the same run gives the same weights and metrics to the last digit, whatever else runs
on the machine, on the same CPU model.

Why: oneDNN (the convolutions), MKL (the matrix products of batch-1 convolutions, as in evaluation) and
PyTorch's own vectorised kernels (ATen) pick their code by the CPU's instruction set, and other code sums in
another order. Training turns those last-bit differences into other models. Pinned, every CPU of one class
runs code of the same instruction set, which is not the same arithmetic on every model of the class (oneDNN,
for one, also sizes its blocks by the CPU's caches): an Intel Xeon and an AMD EPYC gave other numbers
(docs/reproducibility.md).
``CPU_NUMERICS`` chooses the setting:

* ``native`` (the default): the machine's own class, the fastest code that is still pinned to one
  instruction set. ``avx512_core`` on CPUs with AVX-512 (F, BW, VL, DQ; with or without VNNI, BF16 or AMX, which
  fp32 convolutions do not need): ``ONEDNN_MAX_CPU_ISA=AVX512_CORE``, ``ATEN_CPU_CAPABILITY=avx512``.
  ``avx2`` on CPUs with AVX2 and FMA but no AVX-512: as ``portable``.
* ``portable``: ``avx2`` everywhere, ``ONEDNN_MAX_CPU_ISA=AVX2``, ``ATEN_CPU_CAPABILITY=avx2``: one
  instruction set on any x86-64 CPU with AVX2, AVX-512 machines included, at about half their speed (see
  docs/reproducibility.md and ``python -m benchmarks.limits``).
* ``off``: the libraries choose (the fastest code for the CPU; results differ between CPU models).

Both pinned settings also set ``MKL_CBWR=COMPATIBLE``: MKL's conditional numerical reproducibility, on Intel
and AMD CPUs alike; it costs nothing measurable here. The thread count is part of the numerics too
(``training.threads``). ``CPU_REPRODUCIBLE=0`` is read as ``CPU_NUMERICS=off``.

The class in force (:func:`numerics_class`) is tagged on every run (``cpu_numerics.class``) and is part of
every model's identity (``model_key``), so a model trained under one class is never reused under another.
A variable already set in the environment always wins (e.g. ``ONEDNN_MAX_CPU_ISA=ALL``), and the class then
says so. The libraries read the variables when torch first computes (not when it is imported), so they are
set here, before any module of the project uses torch; child processes (DVC stages, sweep jobs) inherit
them. Code that computes with torch before importing ``src`` is not pinned. GPUs are not affected.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

SETTING = "CPU_NUMERICS"  # native | portable | off
SETTINGS = ("native", "portable", "off")
LEGACY_SWITCH = "CPU_REPRODUCIBLE"  # "0", "false", "no" or "off": the same as CPU_NUMERICS=off

# The pins of each instruction-set class; each is set only where the environment does not set it already.
CLASSES = {
    "avx512_core": {
        "ONEDNN_MAX_CPU_ISA": "AVX512_CORE",
        "MKL_CBWR": "COMPATIBLE",
        "ATEN_CPU_CAPABILITY": "avx512",
    },
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "avx2"},
}
PINNED = ("ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "ATEN_CPU_CAPABILITY")
# The CPU flags (/proc/cpuinfo) a class needs.
CLASS_FLAGS = {
    "avx512_core": {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx2", "fma"},
    "avx2": {"avx2", "fma"},
}


def setting() -> str:
    """The numerics setting asked for: ``CPU_NUMERICS``, or ``off`` from ``CPU_REPRODUCIBLE=0``."""
    if os.environ.get(LEGACY_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return "off"
    value = os.environ.get(SETTING, "native").strip().lower()
    if value not in SETTINGS:
        raise SystemExit(
            f"error: {SETTING}={value!r}: unknown CPU numerics setting; choose one of: "
            f"{', '.join(SETTINGS)} (docs/reproducibility.md)"
        )
    return value


@functools.cache
def cpu_class() -> str | None:
    """The best instruction-set class of this CPU (``avx512_core``, ``avx2``), None when it has neither."""
    cpuinfo = Path("/proc/cpuinfo")
    flags: set[str] = set()
    if platform.machine().lower() in ("x86_64", "amd64") and cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    return next((name for name, needs in CLASS_FLAGS.items() if needs <= flags), None)


def pins() -> dict[str, str]:
    """The variables the current setting pins on this CPU (empty for ``off`` or a CPU without AVX2)."""
    wanted = setting()
    if wanted == "off" or cpu_class() is None:
        return {}
    return CLASSES["avx2" if wanted == "portable" else cpu_class()]


def pin_cpu_numerics() -> None:
    """Set the variables of :func:`pins` that the environment leaves unset."""
    for name, value in pins().items():
        if name == "ONEDNN_MAX_CPU_ISA" and "DNNL_MAX_CPU_ISA" in os.environ:
            continue  # the user's cap under oneDNN's older name; ours would take precedence over it
        os.environ.setdefault(name, value)


def numerics_class() -> str:
    """The instruction-set class this process computes with, from the variables in force: ``avx512_core``
    or ``avx2`` when they are one class's pins (and the CPU has it), else ``unpinned-<cpu class>``."""
    in_force = {name: os.environ.get(name, "") for name in PINNED}
    if not os.environ.get("ONEDNN_MAX_CPU_ISA") and os.environ.get("DNNL_MAX_CPU_ISA"):
        in_force["ONEDNN_MAX_CPU_ISA"] = os.environ["DNNL_MAX_CPU_ISA"]
    for name, values in CLASSES.items():
        if (
            in_force == values
            and name in CLASS_FLAGS
            and CLASS_FLAGS[name] <= _flags_of(cpu_class())
        ):
            return name
    return f"unpinned-{cpu_class() or platform.machine().lower()}"


def _flags_of(name: str | None) -> set[str]:
    return CLASS_FLAGS.get(name, set()) if name else set()


def cpu_numerics() -> dict[str, str]:
    """The settings in force, for the record (MLflow tags ``cpu_numerics.*``): the class, the setting and
    each variable's value ('' when unset)."""
    return {"class": numerics_class(), "setting": setting()} | {
        name: os.environ.get(name, "") for name in (*PINNED, "DNNL_MAX_CPU_ISA")
    }


pin_cpu_numerics()
