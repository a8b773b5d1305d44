"""Swing a pendulum up with a bounded torque, found by differentiating through the simulation.

The pendulum (l = 1, g = 9.81, m = 1) starts hanging at rest; the torque is held constant on
each of 20 intervals of a 4-second horizon and bounded by 5 N m, about half of ``m g l``, so it
cannot lift the mass directly and must pump energy over a swing.
:func:`scidl.sims.control.swing_up` optimises the torques with L-BFGS through an RK4 rollout.
Runs in about ten seconds on a CPU.

Usage: python examples/pendulum_swing_up.py
"""

from __future__ import annotations

import math

import torch

from scidl.sims.control import swing_up
from scidl.sims.pendulum import Pendulum


def main() -> None:
    torch.set_num_threads(1)
    max_torque = 5.0
    result = swing_up(Pendulum(), horizon=4.0, n_controls=20, max_torque=max_torque,
                      step_size=0.05, steps=60)
    print("torques (N m):", [round(u, 2) for u in result.controls.tolist()])
    print(f"largest |torque| {float(result.controls.abs().max()):.3f} <= bound {max_torque}")
    every = len(result.times) // 8
    for time, (angle, rate) in zip(result.times[::every].tolist(),
                                   result.states[::every].tolist()):
        print(f"  t = {time:4.2f} s   theta = {math.degrees(angle):7.1f} deg   "
              f"theta' = {rate:6.2f} rad/s")
    print(f"final: theta - pi = {result.angle_error:.2e} rad, theta' = "
          f"{result.rate_error:.2e} rad/s after {result.log.iterations} iterations "
          f"({result.log.message})")


if __name__ == "__main__":
    main()
