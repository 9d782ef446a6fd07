"""The study's code. Importing ``src`` (every entry point is ``python -m src.<stage>``) first pins the CPU
numerics: the same run then gives the same weights and metrics, to the last digit, whatever else runs on the
machine and, by design, whichever x86-64 CPU with AVX2 it runs on, with or without AVX-512 or AMX (checked
on one CPU model so far: an AMD EPYC with AVX-512).

Why: oneDNN (the convolutions), MKL (the matrix products of batch-1 convolutions, as in evaluation) and
PyTorch's own vectorised kernels (ATen) pick their code by the CPU's instruction set, and other code sums in
another order. Training turns those last-bit differences into other models: 58.63 px instead of 57.81 px for
condition 0 on a CPU with AVX-512 and AMX. Pinned, they run the same code on every such CPU:

* ``ONEDNN_MAX_CPU_ISA=AVX2``: oneDNN's AVX2 kernels (not set when the older ``DNNL_MAX_CPU_ISA`` is);
* ``MKL_CBWR=COMPATIBLE``: MKL's conditional numerical reproducibility, on Intel and AMD CPUs alike
  (with ``AVX2`` MKL falls back to choosing its code itself on AMD CPUs);
* ``ATEN_CPU_CAPABILITY=avx2``: PyTorch's AVX2 kernels rather than its AVX-512 ones.

The thread count is part of the numerics too (``training.threads``: 2 in ``conf/training/cpu_demo.yaml``;
0 takes the machine's core count). Cost, measured on a 2-core AMD EPYC with AVX-512: a training iteration
takes about 1.1-1.3x as long (oneDNN's AVX2 kernels; MKL's and ATen's pins cost nothing measurable), a
single-image evaluation 1.0-1.15x (benchmarks/results/reproducibility.md, ``python -m
benchmarks.reproducibility``). tests/test_reproducibility.py trains a condition twice and compares the bits.

Switching it off: ``CPU_REPRODUCIBLE=0`` (or false, no, off) leaves the three to the libraries (the
fastest code for the CPU, results that differ between CPU models). A variable already set in the
environment always wins, e.g. ``ONEDNN_MAX_CPU_ISA=ALL`` lifts oneDNN's cap alone. The libraries read
them when torch first computes (not when it is imported), so they are set here, before any module of the
project uses torch; child processes (DVC stages, sweep jobs) inherit them. Code that computes with torch
before importing ``src`` is not pinned. GPUs are not affected.
"""

from __future__ import annotations

import os

# What pins the CPU numerics (see above); each is set only where the environment does not set it already.
REPRODUCIBLE_CPU = {
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "COMPATIBLE",
    "ATEN_CPU_CAPABILITY": "avx2",
}
# "0" (or "false", "no", "off") in the environment: leave the instruction sets to the libraries.
SWITCH = "CPU_REPRODUCIBLE"


def reproducible_cpu() -> bool:
    """Whether the project pins the CPU numerics in this process (``CPU_REPRODUCIBLE`` not switched off)."""
    return os.environ.get(SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


def cpu_numerics() -> dict[str, str]:
    """The settings in force, for the record (e.g. MLflow tags): each variable's value, '' when unset."""
    return {
        name: os.environ.get(name, "") for name in (*REPRODUCIBLE_CPU, "DNNL_MAX_CPU_ISA", SWITCH)
    }


def pin_cpu_numerics() -> None:
    """Set the variables of ``REPRODUCIBLE_CPU`` that the environment leaves unset (unless switched off)."""
    if not reproducible_cpu():
        return
    for name, value in REPRODUCIBLE_CPU.items():
        if name == "ONEDNN_MAX_CPU_ISA" and "DNNL_MAX_CPU_ISA" in os.environ:
            continue  # the user's cap under oneDNN's older name; ours would take precedence over it
        os.environ.setdefault(name, value)


pin_cpu_numerics()
