"""Charged particles (the NRI / EGNN "charged" system) and its seeded data generator.

The generator reproduces ``ChargedParticlesSim`` of Kipf et al., "Neural Relational Inference
for Interacting Systems" (ICML 2018; github.com/ethanfetaya/NRI, data/synthetic_sim.py) in the
3D form that Satorras et al., "E(n) Equivariant Graph Neural Networks" (ICML 2021;
github.com/vgsatorras/egnn, n_body_system/dataset/synthetic_sim.py and generate_dataset.py)
used. What that code does, read from its source:

* 5 particles in 3D, unit masses; charges drawn from {-1, 0, +1} with probabilities
  (1/2, 0, 1/2), i.e. +-1; interaction matrix ``q_i q_j``.
* Positions ``N(0, loc_std^2)`` per coordinate with ``loc_std = 1 * (n / 5)^(1/3)`` (1 for 5
  particles; 0.5 is the springs simulation's value); velocities ``N(0, I)`` rescaled per
  particle to norm 0.5. The initial state is reflected once into the box ``[-5, 5]^3``
  (velocity sign flipped where reflected); during the run there are no walls.
* Force ``F_i = sum_j q_i q_j (x_i - x_j) / |x_i - x_j|^3`` (like charges repel), each component
  of the net force clipped to ``[-0.1/dt, 0.1/dt] = [-100, 100]``.
* ``dt = 1e-3``. The loop the code calls "leapfrog" is symplectic Euler, kick then drift:
  ``v += dt F(x)`` once before the loop, then per step ``x += dt v; record; v += dt F(x)``; a
  recorded frame holds ``x_s`` and the velocity ``v_s`` that moved it there.
* Trajectories of 5,000 steps saved every 100 steps; the initial frame is overwritten, so frame
  ``k`` is step ``100 (k + 1)``. EGNN's "nbody_small" set (seed 43, the first 3,000 of 10,000
  training trajectories, 2,000 validation, 2,000 test) maps frame 30 (step 3,100) to frame 40
  (step 4,100): 1,000 steps, after a burn-in of 3,100 steps (``burn_in=3100`` here).
* numpy float64 with the global numpy RNG; distances from ``|a|^2 + |b|^2 - 2 a.b``.

Differences here: a ``torch.Generator`` (same statistics, different numbers), batched over
trajectories, distances from differences ``x_i - x_j`` (less round-off), and the state is only
kept at the times asked for. Because of the force clipping trajectories are sensitive to
round-off: compare statistics, not trajectories.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from scidl.numerics.symplectic import symplectic_euler
from scidl.sims.base import MechanicalSystem, as_constant, register_constant


class ChargedParticles(MechanicalSystem):
    """Point charges with the NRI force law, ``q'' = clip(F) / m``.

    ``F_i = c sum_{j != i} q_i q_j (x_i - x_j) / |x_i - x_j|^3`` derives from the Coulomb
    potential ``V = c sum_{i<j} q_i q_j / |x_i - x_j|`` (like charges repel). With ``max_force``
    each component of ``F_i`` is clipped to ``[-max_force, max_force]`` as in NRI; then
    :meth:`acceleration` equals ``-grad V / m`` only while no component exceeds it. ``None``
    turns clipping off.

    Args:
        charges: ``[..., N]``; leading dims broadcast against those of the positions.
        masses: ``[N]`` or a number (default 1, as in NRI).
        interaction_strength: ``c``.
        max_force: clipping bound (NRI: ``0.1 / dt = 100``), or None.
        dim: spatial dimension.
        learnable: charges, masses and ``c`` are ``nn.Parameter`` s (else buffers).

    Shapes:
        q, v: ``[..., N, dim]``; potential ``[...]``.
    """

    def __init__(self, charges: torch.Tensor, masses: float | torch.Tensor = 1.0,
                 interaction_strength: float | torch.Tensor = 1.0,
                 max_force: float | None = 100.0, dim: int = 3, *, learnable: bool = True):
        super().__init__()
        charges = as_constant(charges)
        register_constant(self, "charges", charges, learnable)
        register_constant(self, "masses", as_constant(masses).expand(charges.shape[-1]),
                          learnable)
        register_constant(self, "interaction_strength", interaction_strength, learnable)
        self.max_force = max_force
        self.dim = dim

    @property
    def config_shape(self) -> tuple[int, ...]:
        return (self.charges.shape[-1], self.dim)

    def _pairs(self, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x_i - x_j [..., N, N, dim]``, ``1/r_ij`` and ``c q_i q_j`` ``[..., N, N]``."""
        self.check_positions(q)
        d = q.unsqueeze(-2) - q.unsqueeze(-3)
        eye = torch.eye(q.shape[-2], dtype=q.dtype, device=q.device)
        inv_r = torch.rsqrt(d.square().sum(-1) + eye) * (1 - eye)
        charges = self.charges.to(q)
        coupling = self.interaction_strength.to(q) * charges.unsqueeze(-1) * charges.unsqueeze(-2)
        return d, inv_r, coupling

    def potential(self, q: torch.Tensor) -> torch.Tensor:
        _, inv_r, coupling = self._pairs(q)
        return 0.5 * (coupling * inv_r).sum((-2, -1))

    def acceleration(self, q: torch.Tensor) -> torch.Tensor:
        d, inv_r, coupling = self._pairs(q)
        force = ((coupling * inv_r**3).unsqueeze(-1) * d).sum(-2)
        if self.max_force is not None:
            force = force.clamp(-self.max_force, self.max_force)
        return force / self.coordinate_masses(q)


@dataclass(frozen=True)
class ChargedParticlesData:
    """Start and end states of ``n`` charged-particle trajectories.

    Attributes:
        positions0, velocities0: ``[n, N, dim]`` after the burn-in (the input frame).
        charges: ``[n, N]``, +-1.
        positions, velocities: ``[n, N, dim]``, ``steps`` steps later (the target frame).
        metadata: generator, reference and every parameter, seed included.
    """

    positions0: torch.Tensor
    velocities0: torch.Tensor
    charges: torch.Tensor
    positions: torch.Tensor
    velocities: torch.Tensor
    metadata: dict = field(default_factory=dict)


_BOX = 5.0  # NRI's box half-width: only the initial state is reflected into it


def charged_particles_dataset(
    n: int, steps: int = 1000, *, seed: int = 0, n_particles: int = 5, dim: int = 3,
    burn_in: int = 0, dt: float = 1e-3, loc_std: float = 1.0, vel_norm: float = 0.5,
    interaction_strength: float = 1.0, dtype: torch.dtype = torch.float64, device=None,
) -> ChargedParticlesData:
    """``n`` seeded trajectories of the NRI / EGNN charged system (see the module docstring).

    Draws charges, positions (std ``loc_std (n_particles / 5)^(1/3)``) and velocities (norm
    ``vel_norm``) with ``torch.Generator().manual_seed(seed)`` on the CPU, runs ``burn_in``
    steps and then ``steps`` more of symplectic Euler with ``dt`` and force clipping at
    ``0.1 / dt``, and returns the states after ``burn_in`` and after ``burn_in + steps``
    steps. EGNN's "nbody_small" task is ``burn_in=3100, steps=1000``.

    Shapes:
        every tensor of the result is ``[n, n_particles, dim]`` (charges ``[n, n_particles]``).
    """
    if n < 1 or steps < 1 or burn_in < 0 or n_particles < 2:
        raise ValueError(f"need n >= 1, steps >= 1, burn_in >= 0 and n_particles >= 2, got "
                         f"n={n}, steps={steps}, burn_in={burn_in}, n_particles={n_particles}")
    generator = torch.Generator().manual_seed(seed)
    shape = (n, n_particles, dim)
    charges = torch.randint(0, 2, (n, n_particles), generator=generator).to(dtype) * 2 - 1
    spread = loc_std * (n_particles / 5) ** (1 / 3)
    q0 = torch.randn(shape, generator=generator, dtype=dtype) * spread
    v0 = torch.randn(shape, generator=generator, dtype=dtype)
    v0 = v0 * (vel_norm / torch.linalg.vector_norm(v0, dim=-1, keepdim=True))
    q0, v0 = _reflect_into_box(q0, v0)
    charges, q0, v0 = (x.to(device) for x in (charges, q0, v0))
    system = ChargedParticles(charges, interaction_strength=interaction_strength,
                              max_force=0.1 / dt, dim=dim, learnable=False)
    times = [0.0, burn_in * dt, (burn_in + steps) * dt] if burn_in else [0.0, steps * dt]
    with torch.no_grad():
        q, v = symplectic_euler(system.acceleration, q0, v0, times, dt)
    metadata = {
        "generator": "scidl.sims.charged_particles_dataset",
        "reference": "Kipf et al. 2018 (NRI) ChargedParticlesSim, 3D as in Satorras et al. 2021",
        "n": n, "steps": steps, "burn_in": burn_in, "seed": seed, "n_particles": n_particles,
        "dim": dim, "dt": dt, "loc_std": loc_std, "vel_norm": vel_norm,
        "interaction_strength": interaction_strength, "max_force": 0.1 / dt,
        "integrator": "symplectic Euler (kick, drift)", "dtype": str(dtype),
    }
    return ChargedParticlesData(q[-2], v[-2], charges, q[-1], v[-1], metadata)


def _reflect_into_box(q: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """NRI's ``_clamp``: reflect coordinates beyond +-5 back inside, velocity pointing inward."""
    over, under = q > _BOX, q < -_BOX
    q = torch.where(over, 2 * _BOX - q, torch.where(under, -2 * _BOX - q, q))
    v = torch.where(over, -v.abs(), torch.where(under, v.abs(), v))
    return q, v
