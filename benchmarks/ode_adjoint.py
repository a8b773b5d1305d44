"""ODE gradients side by side with torchdiffeq: DOPRI5 forward, backprop and adjoint on Lorenz-63.

Setup, the same for both libraries: ``scidl.sims.Lorenz63`` with sigma, rho, beta trainable
``nn.Parameter`` s; a batch of 256 initial states (seed 0: ``N((0, 0, 25), 5^2 I)`` run for 2
time units onto the attractor); 101 equally spaced output times on ``[0, T]``; DOPRI5 with
``rtol = atol = 1e-7``; float64 unless stated; loss = mean of ``y^2`` over every output time and
state, so the adjoint gets a jump at each output time. Single-threaded torch by default.

1. Timing at T = 10, best of --repeats, the methods interleaved in one process: forward solve
   (no grad); backprop gradient (forward + backward through the steps); adjoint gradient (scidl
   ``odeint_adjoint``; torchdiffeq ``odeint_adjoint`` with its default norm and with
   ``adjoint_options={"norm": "seminorm"}``). Function evaluations are counted by a wrapper
   module, forward and backward separately. Ratios are scidl time / torchdiffeq time.
2. Gradient agreement (relative L2 of each tensor's gradient): at T = 10, where the flow is
   chaotic (gradients grow like ``e^{0.9 T}`` and depend on the discretisation), and at T = 1
   against a tight reference (scidl backprop at ``rtol = atol = 1e-12``).
3. Memory at T = 100 and float32 at T = 10 and 100: each configuration runs in a fresh
   subprocess. After a warm-up gradient at T = 0.1 and ``malloc_trim(0)`` (glibc: freed heap
   back to the OS, else the run reuses it unseen) the kernel's peak-RSS mark is reset
   (``/proc/self/clear_refs``, Linux >= 4.0), the gradient is computed, and the peak RSS increase
   is ``VmHWM - VmRSS before`` from ``/proc/self/status`` (without clear_refs: ``ru_maxrss``
   after minus RSS before, an upper bound). This counts every allocation (torch's CPU allocator
   returns large blocks to the OS), unlike an allocator counter.
4. scidl's adjoint and backprop peak memory at T = 1, 10, 100: about 100, 1,000 and 10,000 steps
   (with 101 output times a step never spans two of them, so T = 0.1 takes as many as T = 1).

Usage: python benchmarks/ode_adjoint.py [--quick] [--repeats K] [--threads T] [--out FILE]
Writes benchmarks/results/ode_adjoint.json (--quick: ode_adjoint_quick.json; T = 2 for timing,
memory at T = 10, float32 at T = 2 and 10, horizons 1 and 10).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from _results import machine_info, utc_now, write_result
from torch import nn

from scidl.numerics.adjoint import odeint_adjoint
from scidl.numerics.dopri5 import odeint_adaptive

try:
    import torchdiffeq
except ImportError:  # the side-by-side needs the bench extra
    torchdiffeq = None

HERE = Path(__file__).resolve().parent
BATCH, N_TIMES, TOL = 256, 101, 1e-7
METHODS = [("scidl", "forward"), ("torchdiffeq", "forward"), ("scidl", "backprop"),
           ("torchdiffeq", "backprop"), ("scidl", "adjoint"), ("torchdiffeq", "adjoint"),
           ("torchdiffeq", "adjoint-seminorm")]


class _Lorenz63(nn.Module):
    """Fallback when scidl.sims is absent: Lorenz (1963), Eq. (25)-(27)."""

    def __init__(self):
        super().__init__()
        self.sigma, self.rho, self.beta = (nn.Parameter(torch.tensor(v, dtype=torch.float64))
                                           for v in (10.0, 28.0, 8 / 3))

    def forward(self, t, y):
        x, u, z = y.unbind(-1)
        return torch.stack([self.sigma * (u - x), x * (self.rho - z) - u,
                            x * u - self.beta * z], dim=-1)


class Counted(nn.Module):
    """Counts the calls of the wrapped vector field (its parameters stay its own)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, t, y):
        self.calls += 1
        return self.inner(t, y)


def lorenz(dtype: torch.dtype) -> Counted:
    try:
        from scidl.sims import Lorenz63
    except ImportError:
        Lorenz63 = _Lorenz63
    return Counted(Lorenz63().to(dtype))


def initial_states(dtype: torch.dtype) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    y0 = torch.randn(BATCH, 3, generator=generator, dtype=torch.float64) * 5
    y0 += torch.tensor([0.0, 0.0, 25.0], dtype=torch.float64)
    with torch.no_grad():
        return odeint_adaptive(lorenz(torch.float64), y0, [0.0, 2.0], rtol=1e-8,
                               atol=1e-8).ys[-1].to(dtype)


def solve(lib: str, method: str, system: Counted, y0: torch.Tensor, t: torch.Tensor,
          tol: float = TOL) -> torch.Tensor:
    if lib == "scidl":
        if method == "adjoint":
            return odeint_adjoint(system, y0, t, rtol=tol, atol=tol)
        return odeint_adaptive(system, y0, t, rtol=tol, atol=tol).ys
    options = {"norm": "seminorm"} if method == "adjoint-seminorm" else None
    if method.startswith("adjoint"):
        return torchdiffeq.odeint_adjoint(system, y0, t, rtol=tol, atol=tol, method="dopri5",
                                          adjoint_options=options)
    return torchdiffeq.odeint(system, y0, t, rtol=tol, atol=tol, method="dopri5")


def run(lib: str, method: str, system: Counted, y0: torch.Tensor, horizon: float,
        tol: float = TOL) -> dict:
    """One forward solve or gradient: seconds, evaluation counts, gradients."""
    t = torch.linspace(0.0, horizon, N_TIMES, dtype=y0.dtype)
    system.calls = 0
    started = time.perf_counter()
    if method == "forward":
        with torch.no_grad():
            solve(lib, method, system, y0, t, tol)
        return {"seconds": time.perf_counter() - started, "nfe_forward": system.calls}
    y0 = y0.clone().requires_grad_(True)
    ys = solve(lib, method, system, y0, t, tol)
    forward_calls = system.calls
    grads = torch.autograd.grad(ys.pow(2).mean(), [y0, *system.parameters()])
    return {"seconds": time.perf_counter() - started, "nfe_forward": forward_calls,
            "nfe_backward": system.calls - forward_calls, "grads": [g.detach() for g in grads]}


def relative(a: list[torch.Tensor], b: list[torch.Tensor]) -> dict:
    names = ["y0", "sigma", "rho", "beta"]
    return {n: float((x.double() - y.double()).norm() / y.double().norm())
            for n, x, y in zip(names, a, b)}


def timing(horizon: float, repeats: int) -> dict:
    system, y0 = lorenz(torch.float64), initial_states(torch.float64)
    for lib, method in METHODS:  # warm-up
        run(lib, method, system, y0, min(horizon, 0.5))
    rows: dict[str, dict] = {}
    for _ in range(repeats):
        for lib, method in METHODS:
            out = run(lib, method, system, y0, horizon)
            key = f"{lib} {method}"
            if key not in rows or out["seconds"] < rows[key]["seconds"]:
                rows[key] = out
    grads = {key: row.pop("grads") for key, row in rows.items() if "grads" in row}
    ratios = {m: rows[f"scidl {m}"]["seconds"] / rows[f"torchdiffeq {m}"]["seconds"]
              for m in ("forward", "backprop", "adjoint")}
    ratios["adjoint vs torchdiffeq adjoint-seminorm"] = (
        rows["scidl adjoint"]["seconds"] / rows["torchdiffeq adjoint-seminorm"]["seconds"])
    agreement = {f"{a} vs {b}": relative(grads[a], grads[b]) for a, b in (
        ("scidl adjoint", "scidl backprop"), ("torchdiffeq adjoint", "torchdiffeq backprop"),
        ("scidl backprop", "torchdiffeq backprop"), ("scidl adjoint", "torchdiffeq adjoint"))}
    return {"horizon": horizon, "rows": rows, "ratios_scidl_over_torchdiffeq": ratios,
            "gradient_agreement": agreement}


def short_horizon_agreement(horizon: float) -> dict:
    system, y0 = lorenz(torch.float64), initial_states(torch.float64)
    reference = run("scidl", "backprop", system, y0, horizon, tol=1e-12)["grads"]
    return {"horizon": horizon, "reference": "scidl backprop, rtol = atol = 1e-12",
            "relative_error": {f"{lib} {method}": relative(
                run(lib, method, system, y0, horizon)["grads"], reference)
                for lib, method in METHODS if method != "forward"}}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def probe(config: dict) -> dict:
    """Run in a fresh subprocess: one gradient, its peak RSS increase and its outcome."""
    dtype = getattr(torch, config["dtype"])
    system, y0 = lorenz(dtype), initial_states(dtype)
    run(config["lib"], config["method"], system, y0, 0.1)  # warm-up
    try:  # hand the warm-up's freed heap back, or the run reuses it unseen
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    rss_before = _status_kib("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark
        mark = "VmHWM after clear_refs"
    except OSError:
        mark = "ru_maxrss (upper bound)"
    result = {"peak_measure": mark}
    try:
        out = run(config["lib"], config["method"], system, y0, config["horizon"])
        grads = out.pop("grads")
        result.update(out, finite=all(bool(torch.isfinite(g).all()) for g in grads),
                      max_abs_grad={n: float(g.abs().max()) for n, g in
                                    zip(["y0", "sigma", "rho", "beta"], grads)})
    except Exception as error:  # noqa: BLE001 - the outcome is the measurement
        result.update(finite=False, error=f"{type(error).__name__}: {str(error)[:300]}")
    peak = (_status_kib("VmHWM") if mark.startswith("VmHWM")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    result["peak_rss_increase_mib"] = max(peak - rss_before, 0) / 1024
    return result


def in_subprocess(threads: int, **config) -> dict:
    command = [sys.executable, __file__, "--threads", str(threads), "--probe", json.dumps(config)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        return {**config, "error": done.stderr.strip().splitlines()[-1:]}
    return {**config, **json.loads(done.stdout.strip().splitlines()[-1])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (about a minute)")
    parser.add_argument("--repeats", type=int, help="timing repeats, best taken (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", help="result file (default benchmarks/results/ode_adjoint.json)")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.probe:
        print(json.dumps(probe(json.loads(args.probe))))
        return 0
    if torchdiffeq is None:
        print("torchdiffeq is not installed; install the benchmark extra: "
              "pip install -e '.[bench]' (or pip install torchdiffeq)", file=sys.stderr)
        return 2
    quick = args.quick
    repeats = args.repeats or (1 if quick else 3)
    horizon, long_horizon = (2.0, 10.0) if quick else (10.0, 100.0)
    out_path = Path(args.out or HERE / "results" /
                    ("ode_adjoint_quick.json" if quick else "ode_adjoint.json"))
    load_before, started = os.getloadavg(), time.perf_counter()

    speed = timing(horizon, repeats)
    print(f"T = {horizon}: best of {repeats}, seconds (nfe forward / backward)")
    for key, row in speed["rows"].items():
        print(f"  {key:<32} {row['seconds']:7.3f}  ({row['nfe_forward']} / "
              f"{row.get('nfe_backward', 0)})")
    for key, ratio in speed["ratios_scidl_over_torchdiffeq"].items():
        print(f"  scidl / torchdiffeq {key}: {ratio:.2f} (speed-up {1 / ratio:.2f}x)")
    agreement = short_horizon_agreement(1.0)
    print("  gradient agreement:", json.dumps(speed["gradient_agreement"]))
    print("  T = 1 vs tight reference:", json.dumps(agreement["relative_error"]))

    memory = [in_subprocess(args.threads, lib=lib, method=method, horizon=long_horizon,
                            dtype=dtype)
              for dtype in ("float64", "float32")
              for lib, method in METHODS[2:6]
              if dtype == "float64" or method == "adjoint"]
    memory += [in_subprocess(args.threads, lib=lib, method="adjoint", horizon=horizon,
                             dtype="float32") for lib in ("scidl", "torchdiffeq")]
    done = {(r["lib"], r["method"], r["horizon"], r["dtype"]): r for r in memory}
    scan = [done.get(("scidl", method, h, "float64")) or
            in_subprocess(args.threads, lib="scidl", method=method, horizon=h, dtype="float64")
            for method in ("adjoint", "backprop") for h in sorted({1.0, 10.0, long_horizon})]
    for row in memory + [r for r in scan if r not in memory]:
        print(f"  {row['lib']:<11} {row['method']:<8} T={row['horizon']:<5g} {row['dtype']}: "
              f"peak +{row.get('peak_rss_increase_mib', float('nan')):8.1f} MiB, "
              f"nfe {row.get('nfe_forward')}/{row.get('nfe_backward')}, "
              f"finite {row.get('finite')} {row.get('error', '')}")

    result = {
        "benchmark": "ode_adjoint",
        "mode": "quick" if quick else "default",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "setup": {"system": "Lorenz-63 (sigma, rho, beta trainable)", "batch": BATCH,
                  "output_times": N_TIMES, "rtol": TOL, "atol": TOL, "method": "dopri5",
                  "loss": "mean of y^2 over all output times", "seed": 0,
                  "torchdiffeq": getattr(torchdiffeq, "__version__", "?")},
        "timing": speed,
        "short_horizon_agreement": agreement,
        "memory_and_float32": memory,
        "memory_vs_horizon": scan,
        "note": ("ratios are scidl / torchdiffeq seconds from one process, best of repeats, "
                 "on a shared machine; peak memory from fresh subprocesses (see docstring)"),
        "machine": machine_info(load_average_before=load_before,
                                load_average_after=os.getloadavg()),
        "seconds": time.perf_counter() - started,
        "date": utc_now(),
    }
    print(f"wrote {write_result(out_path, result)} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
