"""Hit a target by optimising the launch velocity through a differentiable simulation.

A projectile under gravity with quadratic drag (no closed form) must land on a target 30 m away
at ground level after 2.5 s; :func:`scidl.sims.hit_target` finds the launch velocity by L-BFGS
through an RK4 rollout. Then, with the arrival time free, the slowest launch that hits (without
drag the answer is 45 degrees and |v0|^2 = g R). Runs in one to two minutes on a CPU.

Usage: python examples/projectile_target.py
"""

from __future__ import annotations

import math

import torch

from scidl.numerics import odeint
from scidl.sims import Projectile, hit_target


def main() -> None:
    torch.set_num_threads(1)
    q0 = torch.zeros(2, dtype=torch.float64)
    target = torch.tensor([30.0, 0.0], dtype=torch.float64)
    guess = torch.tensor([5.0, 5.0], dtype=torch.float64)

    with_drag = Projectile(drag=0.02)
    shot = hit_target(with_drag, q0, guess, target, t_final=2.5)
    # check with an independent adaptive solve
    y = odeint(with_drag, with_drag.pack(q0, shot.v0.detach()), [0.0, 2.5], method="dopri5",
               rtol=1e-10, atol=1e-12)
    landed = with_drag.unpack(y[-1])[0]
    print(f"with drag: launch v0 = {shot.v0.tolist()} m/s, miss {shot.miss:.2e} m "
          f"(dopri5 check: lands at {landed.tolist()})")

    slowest = hit_target(Projectile(), q0, guess, target, t_final=2.0, free_time=True)
    vx, vy = slowest.v0.tolist()
    print(f"slowest launch without drag: {math.degrees(math.atan2(vy, vx)):.4f} deg, "
          f"|v0|^2 / (g R) = {(vx * vx + vy * vy) / (9.81 * 30.0):.6f}, "
          f"arrival after {slowest.t_final:.4f} s, miss {slowest.miss:.2e} m")


if __name__ == "__main__":
    main()
