"""How fast are a PINN's derivatives? One training step (loss + backward) of the Burgers PINN
with each derivative engine, side by side in one process.

Engines: nested reverse-mode ``autograd.grad`` (what DeepXDE and most PINN codes do), forward-mode
Taylor jets (:mod:`scidl.pinn.jet`), the same compiled with ``torch.compile``, and ``torch.func``
(nested ``jvp``, for reference). Networks: DeepXDE's Burgers example (3 x 20 tanh, 2,540 + 240
points) and Raissi et al.'s (8 x 20 tanh, 10,000 points).

Times are CPU time (median per step; the first three steps, which include compilation, are
reported apart), so that other jobs on a shared machine do not distort them.

    python benchmarks/pinn_derivatives.py [--repeats 200] [--threads 1]
"""

from __future__ import annotations

import os

os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")  # compile in-process: counted

import argparse
import math
import statistics
import time
from pathlib import Path

import torch
from _results import cpu_seconds, machine_info, utc_now, write_result

from scidl.models.mlp import MLP
from scidl.pdes import Burgers
from scidl.pinn import (
    DirichletBC,
    FieldNetwork,
    InitialCondition,
    Interval,
    PINNProblem,
    SpaceTime,
    TimeDomain,
)

NU = 0.01 / math.pi
RESULTS = Path(__file__).parent / "results" / "pinn_derivatives.json"


def problem(derivatives: str, compile: bool, collocation: int, dtype):
    domain = SpaceTime(Interval(-1, 1), TimeDomain(0, 0.99))
    conditions = [DirichletBC(n=80, value=0.0),
                  InitialCondition(n=160, value=lambda X: -torch.sin(math.pi * X[:, :1]))]
    return PINNProblem(Burgers(NU), domain, conditions, collocation=collocation,
                       method="uniform", derivatives=derivatives, compile=compile, dtype=dtype)


def func_step(model, prob, batch):
    """Residual by torch.func: nested jvp along x and one along t (for reference)."""
    from torch.func import jvp

    X = batch["residual"]
    net = model.net
    ex = torch.zeros_like(X)
    ex[:, 0] = 1
    et = torch.zeros_like(X)
    et[:, 1] = 1

    def ux_of(Y):
        return jvp(net, (Y,), (ex,))

    (u, ux), (_, uxx) = jvp(ux_of, (X,), (ex,))
    _, ut = jvp(net, (X,), (et,))
    residual = (ut + u * ux - NU * uxx).pow(2).mean()
    total = residual
    for c in prob.conditions:
        Xc = batch[c.name]
        total = total + c.residual(Xc, net(Xc), None, prob.domain).pow(2).mean()
    return total


def time_engine(engine: str, width: int, layers: int, collocation: int, repeats: int, dtype):
    torch.manual_seed(0)
    derivatives = "autograd" if engine in ("autograd", "torch.func") else "forward"
    prob = problem(derivatives, engine == "forward+compile", collocation, dtype)
    model = prob.model(FieldNetwork(MLP(2, 1, width, layers, "tanh"))).to(dtype)
    batch = prob.batch(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = func_step(model, prob, batch) if engine == "torch.func" else \
            prob.loss(model, batch)[0]
        loss.backward()
        optimizer.step()

    started = cpu_seconds()
    for _ in range(3):
        step()
    warmup = cpu_seconds() - started
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        step()
        times.append(time.process_time() - t0)
    return {"engine": engine, "cpu_ms_per_step": 1e3 * statistics.median(times),
            "warmup_cpu_s": warmup}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for label, width, layers, points in [("deepxde-example 3x20, 2540 pts", 20, 3, 2540),
                                         ("raissi 8x20, 10000 pts", 20, 8, 10000)]:
        for engine in ["autograd", "forward", "forward+compile", "torch.func"]:
            row = {"setting": label, **time_engine(engine, width, layers, points, args.repeats,
                                                   torch.float32)}
            rows.append(row)
            print(f"{label:34s} {engine:16s} {row['cpu_ms_per_step']:7.2f} ms/step "
                  f"(first 3 steps {row['warmup_cpu_s']:.1f} CPU s)", flush=True)
    for label in {r["setting"] for r in rows}:
        base = next(r for r in rows if r["setting"] == label and r["engine"] == "autograd")
        for r in rows:
            if r["setting"] == label:
                r["speedup_vs_autograd"] = base["cpu_ms_per_step"] / r["cpu_ms_per_step"]
    out = write_result(RESULTS, {"benchmark": "pinn_derivatives", "date": utc_now(),
                                 "machine": machine_info(), "repeats": args.repeats,
                                 "rows": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
