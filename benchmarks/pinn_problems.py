"""Four PINN problems through scidl's PINN layer, each against an exact or reference solution.

* ``poisson`` -- ``-Laplacian u = f`` on ``[0, 1]^2`` with the manufactured multi-scale solution
  ``u = sin(2 pi x) sin(2 pi y) + 0.1 sin(8 pi x) sin(8 pi y)`` (Dirichlet data from it, zero),
  soft ``DirichletBC`` against a ``HardConstraint`` with ``Rectangle.distance``.
* ``poisson_lshape`` -- ``-Laplacian u = 1`` on DeepXDE's L-shaped polygon, ``u = 0`` on the
  boundary, against DeepXDE's reference ``$SCIDL_DATA/pinn/Poisson_Lshape.npz`` and against a
  converged 5-point finite-difference solve (the two differ by 9% relative L2: the npz maximum
  is 0.134, the finite-difference one 0.149 at h = 1/40, 1/80 and 1/160 alike); soft, hard with
  ``Polygon.distance`` (the distance to the nearest edge: a min, kinked on the medial axis) and
  hard with a smooth R-function factor ``(1 - x^2)(1 - y^2)(sqrt(x^2 + y^2) - x - y)``.
* ``heat`` -- ``u_t = nu u_xx`` on ``[0, 1] x [0, 1]``, ``nu = 0.05``, exact
  ``u = sin(pi x) e^{-nu pi^2 t} + 0.5 sin(3 pi x) e^{-9 nu pi^2 t}``; soft and hard conditions.
* ``wave`` -- PINNacle's Wave1d-C: ``u_tt = 4 u_xx`` on ``[0, 1]^2``, ``u(0, t) = u(1, t) = 0``,
  ``u(x, 0) = sin(pi x) + 0.5 sin(4 pi x)``, ``u_t(x, 0) = 0``, exact standing waves
  ``u = sin(pi x) cos(2 pi t) + 0.5 sin(4 pi x) cos(8 pi t)``. scidl's ``Wave`` is the first-order
  system ``(u, v = u_t)``, so the network has two outputs; soft and hard conditions, in the
  original units and (``-nondim``) in the units ``x' = 4 pi x, t' = 4 pi t``, where ``v`` and
  ``c^2 u_xx`` are O(1) rather than O(10) and O(300) (scidl has no per-channel residual weights).
* ``allen_cahn`` -- DeepXDE's setting, ``u_t = 0.001 u_xx + 5 (u - u^3)`` on ``[-1, 1] x [0, 1]``,
  ``u_0 = x^2 cos(pi x)``, ``u(+-1, t) = -1``, against ``$SCIDL_DATA/pinn/Allen_Cahn.mat``, with
  an ablation of the adaptive tricks: soft conditions, + gradient-norm balancing, hard
  constraint ``u = x^2 cos(pi x) + t (1 - x^2) N``, + residual-based adaptive refinement (RAR),
  + float64, + Fourier features.

Every run is Adam (cosine) then L-BFGS on one CPU thread, with a budget of a few minutes;
reported: relative L2 error on a dense grid, seconds, optimiser steps, the settings, and
PINNacle's (Hao et al., NeurIPS 2024) vanilla-PINN L2RE where PINNacle has the same problem.

    python benchmarks/pinn_problems.py [--problems poisson heat wave allen_cahn ...] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import torch
from _results import machine_info, utc_now, write_result
from pinn_setups import (
    A2,
    K1,
    K2,
    NU,
    C,
    allen_cahn_setup,
    heat_exact,
    heat_setup,
    lshape_finite_differences,
    lshape_reference,
    lshape_setup,
    poisson_exact,
    poisson_setup,
    wave_exact,
    wave_setup,
)

from scidl.data.pinn_reference import load_pinn_reference
from scidl.models.mlp import MLP
from scidl.pinn import (
    Balancing,
    CoordinateFeatures,
    FieldNetwork,
    PINNProblem,
    Refinement,
)
from scidl.train import Stage, TrainOptions, train

RESULTS = Path(__file__).parent / "results"
PI = math.pi

#: PINNacle (Hao et al., NeurIPS 2024) -- which of its problems each case corresponds to.
PINNACLE = {
    "poisson": {"same_problem": False, "note": "PINNacle's 2D Poisson cases (Poisson2d-C: "
                "Laplace on a square with four disk holes; 2d-CG, 2d-MS) are other problems; "
                "no manufactured-solution square case"},
    "poisson_lshape": {"same_problem": False, "note": "no L-shaped Poisson case in PINNacle"},
    "heat": {"same_problem": False, "note": "PINNacle has no 1D heat case (only Heat2d-VC, "
             "2d-MS, 2d-CG, 2d-LT and HNd)"},
    "wave": {"same_problem": True, "problem": "Wave1d-C",
             "note": "same PDE, domain, conditions and exact solution (PINNacle src/pde/wave.py, "
                     "Wave1D with C=2, a=4); PINNacle trains u directly with a second-order "
                     "residual, 5 x 100 tanh, 20,000 Adam steps (lr 1e-3), on a GPU",
             "vanilla_pinn_l2re": 5.88e-1,
             "best_method_l2re": 9.79e-2, "best_method": "PINN-NTK",
             "source": "PINNacle Table 3 (L2RE, mean of runs); the vanilla-PINN value is "
                       "quoted from memory of the paper and could not be re-read here; the "
                       "best-method value is from a third-party summary of Table 3"},
    "allen_cahn": {"same_problem": False, "note": "PINNacle has no Allen-Cahn case"},
}


# ----------------------------------------------------------------------------------- helpers

def budget(args, adam: int, lbfgs: int, collocation: int) -> tuple[int, int, int]:
    if args.quick:
        return 40, 10, 256
    return adam, lbfgs, collocation


def selected(args, variants):
    """The variants to run: all, or those named by ``--variants``."""
    wanted = getattr(args, "variants", None)
    return [v for v in variants if not wanted or v in wanted]


def stages(adam: int, lbfgs: int, lr: float = 1e-3) -> list[Stage]:
    return [Stage("adam", adam, lr, "cosine"), Stage("lbfgs", lbfgs, 1.0)]


def network(in_dim: int, out_dim: int, lo, hi, width: int, depth: int, constraint=None,
            fourier: int = 0, sigma: float = 1.0, dtype=torch.float32, seed: int = 0):
    torch.manual_seed(seed)
    features = CoordinateFeatures(lo, hi, fourier_features=fourier, fourier_sigma=sigma,
                                  seed=seed)
    body = MLP(features.out_features, out_dim, width, depth, "tanh")
    return FieldNetwork(body, features=features, constraint=constraint).to(dtype)


def fit(problem: PINNProblem, net, adam: int, lbfgs: int, X: torch.Tensor, u: torch.Tensor,
        seed: int, lr: float = 1e-3, settings: dict | None = None):
    """Train ``net`` on ``problem`` and score channel 0 against ``u`` at ``X``."""
    model = problem.model(net)
    t0 = time.perf_counter()
    result = train(model, problem, stages(adam, lbfgs, lr), seed=seed,
                   options=TrainOptions(progress=False, log_every=max((adam + lbfgs) // 20, 1),
                                        divergence_factor=1e12))
    seconds = time.perf_counter() - t0
    pred = problem.predict(model, X)[:, 0].double()
    rel = float((pred - u).norm() / u.norm())
    last = result.history[-1] if result.history else {}
    return model, {
        "rel_l2": rel, "seconds": seconds, "steps": result.steps,
        "adam_steps": result.optimizer_iterations.get("0:adam"),
        "lbfgs_steps": result.optimizer_iterations.get("1:lbfgs"),
        "final_loss": last.get("loss"),
        "final_terms": {k: v for k, v in last.items() if k not in ("step", "stage", "lr")},
        "refinement_points": int(len(model.added_points)),
        "test_points": int(len(X)),
        "settings": {"adam": adam, "lbfgs": lbfgs, "lr": lr, "seed": seed,
                     "collocation": problem.collocation, "method": problem.method,
                     "dtype": str(problem.dtype).replace("torch.", ""),
                     "derivatives": problem.derivatives, **(settings or {})},
    }


def describe(net: FieldNetwork) -> dict:
    linear = [m for m in net.body.modules() if isinstance(m, torch.nn.Linear)]
    fourier = net.features.fourier if net.features is not None else None
    return {"network": f"{len(linear) - 1} x {linear[0].out_features} tanh MLP",
            "parameters": sum(p.numel() for p in net.parameters()),
            "fourier_features": 0 if fourier is None else int(fourier.B.shape[0]),
            "hard_constraint": net.constraint is not None}


# ------------------------------------------------------------------------------------ Poisson



def run_poisson(args) -> list[dict]:
    adam, lbfgs, n = budget(args, 2500, 1000, 2048)
    g = torch.linspace(0, 1, 201 if not args.quick else 41, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    X = torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)
    u = poisson_exact(X[:, 0], X[:, 1])
    rows = []
    for variant in selected(args, ("soft", "hard")):
        problem, constraint = poisson_setup(variant, n, seed=args.seed)
        net = network(2, 1, [0, 0], [1, 1], 48, 4, constraint, fourier=32, sigma=1.0,
                      seed=args.seed)
        _, row = fit(problem, net, adam, lbfgs, X, u, args.seed, settings={
            **describe(net), "conditions": "DirichletBC (weight 100)" if variant == "soft"
            else "u = Rectangle.distance(x, y) * N", "fourier_sigma": 1.0})
        rows.append({"problem": "poisson", "variant": variant,
                     "reference": f"exact: sin({K1}pi x) sin({K1}pi y) + {A2} sin({K2}pi x) "
                                  f"sin({K2}pi y) on [0,1]^2, 201^2 grid", **row})
        report(rows[-1])
    return rows


# --------------------------------------------------------------------------- Poisson L-shape

def run_poisson_lshape(args) -> list[dict]:
    adam, lbfgs, n = budget(args, 2000, 700, 2048)
    X, u = lshape_reference()
    if args.quick:
        X, u = X[::20], u[::20]
    u_fd = lshape_finite_differences(X, 161 if args.quick else 321)
    rows = []
    for variant in selected(args, ("soft", "hard-distance", "hard-rfunction")):
        problem, constraint = lshape_setup(variant, n, seed=args.seed)
        net = network(2, 1, [-1, -1], [1, 1], 32, 4, constraint, seed=args.seed)
        how = {"soft": "DirichletBC (weight 100)",
               "hard-distance": "u = Polygon.distance(x, y) * N",
               "hard-rfunction": "u = (1-x^2)(1-y^2)(sqrt(x^2+y^2)-x-y) * N"}[variant]
        model, row = fit(problem, net, adam, lbfgs, X, u, args.seed,
                         settings={**describe(net), "conditions": how})
        pred = problem.predict(model, X)[:, 0].double()
        row["rel_l2_vs_fd"] = float((pred - u_fd).norm() / u_fd.norm())
        row["npz_vs_fd_rel_l2"] = float((u - u_fd).norm() / u_fd.norm())
        rows.append({"problem": "poisson_lshape", "variant": variant,
                     "reference": "DeepXDE Poisson_Lshape.npz (X_test, y_ref), "
                                  f"{len(X)} points; rel_l2_vs_fd: against a 5-point finite-"
                                  "difference solve, h = 1/160", **row})
        report(rows[-1])
    return rows


# --------------------------------------------------------------------------------------- Heat

def space_time_grid(x0, x1, t0, t1, nx, nt):
    xx, tt = torch.meshgrid(torch.linspace(x0, x1, nx, dtype=torch.float64),
                            torch.linspace(t0, t1, nt, dtype=torch.float64), indexing="ij")
    return torch.stack([xx.reshape(-1), tt.reshape(-1)], 1)


def run_heat(args) -> list[dict]:
    adam, lbfgs, n = budget(args, 2000, 500, 2048)
    X = space_time_grid(0, 1, 0, 1, 201 if not args.quick else 41, 101 if not args.quick else 21)
    u = heat_exact(X)
    rows = []
    for variant in selected(args, ("soft", "hard")):
        problem, constraint = heat_setup(variant, n, seed=args.seed)
        net = network(2, 1, [0, 0], [1, 1], 32, 4, constraint, seed=args.seed)
        how = ("InitialCondition + DirichletBC (weights 10)" if variant == "soft"
               else "u = u0(x) + t x (1-x) N")
        _, row = fit(problem, net, adam, lbfgs, X, u, args.seed,
                  settings={**describe(net), "conditions": how, "nu": NU})
        rows.append({"problem": "heat", "variant": variant,
                     "reference": "exact: sin(pi x) e^(-nu pi^2 t) + 0.5 sin(3 pi x) "
                                  "e^(-9 nu pi^2 t), 201 x 101 grid", **row})
        report(rows[-1])
    return rows


# --------------------------------------------------------------------------------------- Wave

def run_wave(args) -> list[dict]:
    adam, lbfgs, n = budget(args, 2500, 1000, 2048)
    X = space_time_grid(0, 1, 0, 1, 201 if not args.quick else 41, 201 if not args.quick else 41)
    u = wave_exact(X)[:, 0]
    rows = []
    for variant in selected(args, ("soft", "hard", "soft-nondim", "hard-nondim",
                                   "soft-weighted")):
        problem, constraint, L = wave_setup(variant, n, seed=args.seed)
        net = network(2, 2, [0, 0], [L, L], 48, 4, constraint, fourier=32, sigma=1.0,
                      seed=args.seed)
        how = ("InitialCondition (u, v) + DirichletBC (u, v) (weights 10)"
               if variant.startswith("soft") else "(u, v) = (u0(x), 0) + t x (1-x) N")
        if L != 1.0:
            how += f"; units x' = L x, t' = L t, L = {L:.4f}"
        if problem.channel_weights is not None:
            how += "; residual channel weights (1, 1/(4 pi))"
        _, row = fit(problem, net, adam, lbfgs, X * L, u, args.seed,
                     settings={**describe(net), "conditions": how, "fourier_sigma": 1.0,
                               "c": C, "units": L})
        rows.append({"problem": "wave", "variant": variant,
                     "reference": "exact: sin(pi x) cos(2 pi t) + 0.5 sin(4 pi x) cos(8 pi t), "
                                  "201^2 grid, displacement only", **row})
        report(rows[-1])
    return rows


# -------------------------------------------------------------------------------- Allen-Cahn

AC_VARIANTS = {
    # name: (hard, balancing, rar, fourier features, float64)
    "soft": (False, False, False, False, False),
    "soft+balancing": (False, True, False, False, False),
    "hard": (True, False, False, False, False),
    "hard+rar": (True, False, True, False, False),
    "hard+rar+f64": (True, False, True, False, True),
    "hard+rar+fourier": (True, False, True, True, False),
    "hard+rar+fourier+f64": (True, False, True, True, True),
    "hard+rar-long": (True, False, True, False, False),  # twice the steps (~3.5 min)
}


def run_allen_cahn(args, variants=None) -> list[dict]:
    adam0, lbfgs0, n = budget(args, 2000, 500, 2048)
    X, u = load_pinn_reference("allen_cahn").points()
    rows = []
    for name in selected(args, variants or AC_VARIANTS):
        hard, balance, refine, fourier, f64 = AC_VARIANTS[name]
        longer = 2 if name.endswith("-long") else 1
        adam, lbfgs = adam0 * longer, lbfgs0 * longer
        dtype = torch.float64 if f64 else torch.float32
        rar = (Refinement(every=max(adam // 6, 1), candidates=20000 if not args.quick else 500,
                          add=200 if not args.quick else 20, until=adam) if refine else None)
        bal = Balancing(every=100 if not args.quick else 10, alpha=0.1, until=adam) \
            if balance else None
        problem, constraint = allen_cahn_setup(hard, n, rar, bal, seed=args.seed, dtype=dtype)
        net = network(2, 1, [-1, 0], [1, 1], 40, 4, constraint, fourier=32 if fourier else 0,
                      sigma=1.0, dtype=dtype, seed=args.seed)
        how = ("u = x^2 cos(pi x) + t (1 - x^2) N" if hard
               else "InitialCondition + DirichletBC (weights 1)")
        model, row = fit(problem, net, adam, lbfgs, X, u, args.seed, settings={
            **describe(net), "conditions": how,
            "refinement": None if rar is None else dataclasses.asdict(rar),
            "balancing": None if bal is None else {"every": bal.every, "alpha": bal.alpha,
                                                   "until": bal.until}})
        if not hard and len(problem.conditions):
            row["final_term_weights"] = [float(w) for w in model.term_weights]
        rows.append({"problem": "allen_cahn", "variant": name,
                     "reference": "DeepXDE Allen_Cahn.mat, 201 x 101 grid", **row})
        report(rows[-1])
    return rows


# ---------------------------------------------------------------------------------- reporting

def report(row: dict) -> None:
    print(f"{row['problem']:15s} {row['variant']:22s} rel L2 {row['rel_l2']:.3e}  "
          f"{row['seconds']:6.1f} s  adam {row['adam_steps']} lbfgs {row['lbfgs_steps']}",
          flush=True)


def markdown(rows: list[dict], commands: list[str], machine: dict) -> str:
    lines = [
        "# PINN problems (`benchmarks/pinn_problems.py`)", "",
        "Commands (OMP_NUM_THREADS=1; a later `--update` run replaces the rows of the "
        "problems it names): " + "; ".join(f"`{c}`" for c in commands) + "  ",
        f"Machine: {machine['processor']}, torch {machine['torch']}, "
        f"{machine['torch_threads']} thread(s). Timings are wall-clock on a shared machine.", "",
        "| problem | variant | rel. L2 | seconds | Adam + L-BFGS steps | network | dtype | "
        "PINNacle vanilla PINN L2RE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = PINNACLE[r["problem"]]
        pin = (f"{p['vanilla_pinn_l2re']:.2e} ({p['problem']})†" if p.get("same_problem")
               else "n/a (no such problem)")
        s = r["settings"]
        rel = f"{r['rel_l2']:.2e}"
        if "rel_l2_vs_fd" in r:
            rel += f" (npz); {r['rel_l2_vs_fd']:.2e} (FD)"
        lines.append(
            f"| {r['problem']} | {r['variant']} | {rel} | {r['seconds']:.0f} | "
            f"{r['adam_steps']} + {r['lbfgs_steps']} | {s['network']}"
            f"{' + ' + str(s['fourier_features']) + ' Fourier' if s['fourier_features'] else ''}"
            f" | {s['dtype']} | {pin} |")
    lines += ["", "Settings: collocation points drawn once (Sobol), forward-mode (jet) "
              "derivatives, Adam lr 1e-3 with cosine decay, then L-BFGS (strong Wolfe). "
              "Conditions per variant:", ""]
    seen = set()
    for r in rows:
        key = (r["problem"], r["variant"])
        if key in seen:
            continue
        seen.add(key)
        s = r["settings"]
        extra = ""
        if s.get("refinement"):
            extra += f"; RAR {s['refinement']}"
        if s.get("balancing"):
            extra += f"; balancing {s['balancing']}"
        lines.append(f"* {r['problem']} / {r['variant']}: {s['conditions']}; "
                     f"{s['collocation']} collocation points{extra}. Reference: {r['reference']}.")
    ac = [r for r in rows if r["problem"] == "allen_cahn"]
    if ac:
        lines += ["", "Allen-Cahn ablation (2000 Adam + 500 L-BFGS steps each, `-long` twice that; "
                  "rel. L2 against Allen_Cahn.mat): "
                  + ", ".join(f"{r['variant']} {r['rel_l2']:.2e}" for r in ac) + "."]
    lines += ["", "PINNacle comparison:", ""]
    for name in dict.fromkeys(r["problem"] for r in rows):
        p = PINNACLE[name]
        lines.append(f"* {name}: {p['note']}" + (f". † {p['source']}." if "source" in p
                                                  else "."))
    return "\n".join(lines) + "\n"


VARIANT_ORDER = ["soft", "soft+balancing", "hard", "hard-distance", "hard-rfunction",
                 "soft-nondim", "hard-nondim", "soft-weighted", *AC_VARIANTS]


def variant_rank(row: dict) -> int:
    v = row["variant"]
    return VARIANT_ORDER.index(v) if v in VARIANT_ORDER else len(VARIANT_ORDER)


RUNNERS = {
    "poisson": run_poisson,
    "poisson_lshape": run_poisson_lshape,
    "heat": run_heat,
    "wave": run_wave,
    "allen_cahn": run_allen_cahn,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", default=list(RUNNERS), choices=list(RUNNERS))
    parser.add_argument("--variants", nargs="+", default=None,
                        help="run only these variants (e.g. soft hard-nondim hard+rar)")
    parser.add_argument("--quick", action="store_true", help="tiny budget, for smoke tests")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--update", action="store_true",
                        help="keep the other problems' rows of an existing results file")
    parser.add_argument("--out", default=None, help="results stem (default pinn_problems"
                                                    "[_quick])")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    stem = args.out or ("pinn_problems_quick" if args.quick else "pinn_problems")
    command = " ".join(["python benchmarks/pinn_problems.py"] + sys.argv[1:])
    rows, kept, commands = [], [], [command]
    machine = machine_info()
    path = RESULTS / f"{stem}.json"
    if args.update and path.exists():
        old = json.loads(path.read_text())
        redo = [(r["problem"], r["variant"]) for r in old["rows"]
                if r["problem"] in args.problems
                and (not args.variants or r["variant"] in args.variants)]
        kept = [r for r in old["rows"] if (r["problem"], r["variant"]) not in redo]
        commands = old.get("commands", [old.get("command")]) + commands
    order = {name: i for i, name in enumerate(RUNNERS)}
    for name in args.problems:
        rows += RUNNERS[name](args)
        every = sorted(kept + rows, key=lambda r: (order[r["problem"]], variant_rank(r)))
        result = {"benchmark": "pinn_problems", "date": utc_now(), "machine": machine,
                  "args": vars(args), "commands": commands, "pinnacle": PINNACLE,
                  "rows": every}
        write_result(path, result)
        (RESULTS / f"{stem}.md").write_text(markdown(every, commands, machine))


if __name__ == "__main__":
    main()
