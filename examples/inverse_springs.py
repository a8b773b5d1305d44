"""Recover the spring constants, then the masses, of a small spring network from one trajectory.

A triangle of three unequal masses joined by three springs of unequal stiffness is simulated
noise-free (dopri5, tight tolerance) for 2 time units; :func:`scidl.sims.inverse.fit_parameters`
then starts from a wrong guess and differentiates an RK4 rollout to recover the stiffnesses
(masses known) and, separately, the masses (stiffnesses known): the dynamics depend only on
``k / m``, so the two are not identifiable together. Runs in a few seconds on a CPU.

Usage: python examples/inverse_springs.py
"""

from __future__ import annotations

import torch

from scidl.numerics.odeint import odeint
from scidl.sims.inverse import fit_parameters
from scidl.sims.springs import SpringNetwork


def main() -> None:
    torch.set_num_threads(1)
    stiffness = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    masses = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    system = SpringNetwork(torch.tensor([[0, 1], [1, 2], [2, 0]]), stiffness=stiffness,
                           rest_length=1.0, masses=masses, dim=2)
    q0 = torch.tensor([[0.0, 0.0], [1.3, 0.0], [0.5, 0.7]], dtype=torch.float64)
    v0 = torch.tensor([[0.0, 0.1], [0.0, -0.2], [0.3, 0.0]], dtype=torch.float64)
    y0, t = system.pack(q0, v0), torch.linspace(0, 2, 21, dtype=torch.float64)
    with torch.no_grad():
        observed = odeint(system, y0, t, method="dopri5", rtol=1e-12, atol=1e-12)

    guesses = torch.tensor([[1.4, 1.4, 0.65], [0.7, 2.8, 0.65]], dtype=torch.float64)
    for name, truth, guess in (("stiffness", stiffness, guesses[0]),
                               ("masses", masses, guesses[1])):
        fit = fit_parameters(system, [name], y0, t, observed, step_size=0.02, steps=50,
                             initial={name: guess}, tolerance=1e-16)
        history = fit.history[name]
        print(f"{name}: true {truth.tolist()}  initial guess {guess.tolist()}")
        for i in range(0, len(history), max(1, len(history) // 6)):
            print(f"  iteration {i:3d}: {[round(x, 6) for x in history[i].tolist()]}  "
                  f"loss {float(fit.log.losses[i]):.2e}")
        error = float(((fit.estimates[name] - truth).abs() / truth).max())
        print(f"  final {[round(x, 8) for x in fit.estimates[name].tolist()]}  max relative "
              f"error {error:.1e} after {fit.log.iterations} L-BFGS iterations "
              f"({fit.log.message})")


if __name__ == "__main__":
    main()
