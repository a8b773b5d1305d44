"""scidl.models.dynamics: neural ODEs and Hamiltonian neural networks (Greydanus et al. 2019).

Checks: the HNN field is the symplectic gradient of its H (against central finite differences,
float64) and conserves H exactly along the field; the separable Stormer-Verlet step is
symplectic (its Jacobian M satisfies M^T J M = J) and second-order, and with unit mass equals
scidl's leapfrog on ``acceleration``; finite-difference derivative pairs are second-order; the
objectives batch deterministically; a NeuralODE fitted by rollout recovers the oscillator's
field; and an HNN trained on the mass-spring conserves the true energy over a long rollout far
better than a NeuralODE of the same size trained the same way (the paper's central claim).
"""

from __future__ import annotations

import math

import pytest
import torch

from scidl.errors import ShapeError
from scidl.models.dynamics import (
    DerivativeMatching,
    HamiltonianNN,
    NeuralODE,
    TrajectoryMatching,
    finite_difference_pairs,
)
from scidl.numerics.odeint import odeint
from scidl.numerics.symplectic import leapfrog
from scidl.train.loop import Stage, TrainOptions, train

F64 = torch.float64
QUIET = TrainOptions(progress=False, log_every=1000)


def spring_pairs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """States on the mass-spring H = (q^2 + p^2) / 2 with radii in [0.2, 1] and dy/dt = (p, -q)."""
    generator = torch.Generator().manual_seed(seed)
    direction = torch.randn(n, 2, generator=generator, dtype=F64)
    radius = 0.2 + 0.8 * torch.rand(n, 1, generator=generator, dtype=F64)
    states = direction / direction.norm(dim=-1, keepdim=True) * radius
    return states, torch.stack([states[:, 1], -states[:, 0]], dim=-1)


def central_difference(func, y: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """d func / dy ``[P, D]`` of a scalar-per-row function by central differences."""
    columns = []
    for i in range(y.shape[-1]):
        shift = torch.zeros_like(y)
        shift[:, i] = eps
        columns.append((func(y + shift) - func(y - shift)) / (2 * eps))
    return torch.stack(columns, dim=-1)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_hnn_field_is_the_symplectic_gradient_and_conserves_h(dtype):
    torch.manual_seed(0)
    model = HamiltonianNN(2, width=16).to(dtype)
    y = torch.randn(7, 4, dtype=dtype)
    field = model(torch.zeros((), dtype=dtype), y)
    assert field.dtype == dtype and field.shape == (7, 4)
    with torch.no_grad():
        grad = central_difference(model.hamiltonian, y.double() if dtype == F64 else y,
                                  1e-6 if dtype == F64 else 1e-2)
    expected = torch.cat([grad[:, 2:], -grad[:, :2]], dim=-1).to(dtype)
    tol = 1e-7 if dtype == F64 else 2e-3
    torch.testing.assert_close(field, expected, rtol=tol, atol=tol)
    # dH/dt = grad H . J grad H = 0 along the learned field
    rate = (grad.to(dtype) * field).sum(-1)
    assert rate.abs().max() < (1e-7 if dtype == F64 else 1e-3)


def test_separable_hnn_field_and_unit_mass_acceleration():
    torch.manual_seed(1)
    model = HamiltonianNN(1, width=16, separable=True, kinetic="unit_mass").double()
    y = torch.randn(5, 2, dtype=F64)
    field = model(torch.zeros((), dtype=F64), y)
    with torch.no_grad():
        dv = central_difference(model.potential, y[:, :1])
    torch.testing.assert_close(field[:, :1], y[:, 1:], rtol=0, atol=1e-14)  # q' = p
    torch.testing.assert_close(field[:, 1:], -dv, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(model.acceleration(y[:, :1]), field[:, 1:])
    torch.testing.assert_close(model.hamiltonian(y), 0.5 * y[:, 1].square()
                               + model.potential(y[:, :1]))
    with pytest.raises(ValueError, match="unit_mass"):
        HamiltonianNN(1, width=4, separable=True).acceleration(y[:, :1].float())
    with pytest.raises(ValueError, match="separable"):
        HamiltonianNN(1, width=4, kinetic="unit_mass")


def test_separable_leapfrog_is_symplectic_and_second_order():
    torch.manual_seed(2)
    model = HamiltonianNN(2, width=16, separable=True).double()
    y0 = 0.5 * torch.randn(4, dtype=F64)
    step = torch.func.jacrev(lambda y: model.leapfrog(y, [0.0, 0.3], 0.1)[-1])
    jacobian = step(y0)
    eye, zero = torch.eye(2, dtype=F64), torch.zeros(2, 2, dtype=F64)
    j_form = torch.cat([torch.cat([zero, eye], 1), torch.cat([-eye, zero], 1)], 0)
    torch.testing.assert_close(jacobian.T @ j_form @ jacobian, j_form, rtol=0, atol=1e-12)
    with torch.no_grad():
        reference = odeint(model, y0, [0.0, 1.0], method="rk4", step_size=1e-3)[-1]
        errors = [(model.leapfrog(y0, [0.0, 1.0], h)[-1] - reference).norm() for h in (0.1, 0.05)]
    assert 3.6 < float(errors[0] / errors[1]) < 4.4  # order 2


def test_unit_mass_leapfrog_equals_scidl_leapfrog_on_acceleration():
    torch.manual_seed(3)
    model = HamiltonianNN(1, width=8, separable=True, kinetic="unit_mass").double()
    y0 = torch.tensor([[0.4, -0.2], [1.0, 0.3]], dtype=F64)
    t = [0.0, 0.5, 1.0]
    with torch.no_grad():
        mine = model.leapfrog(y0, t, 0.05)
        q, v = leapfrog(model.acceleration, y0[:, :1], y0[:, 1:], t, 0.05)
    torch.testing.assert_close(mine, torch.cat([q, v], dim=-1), rtol=0, atol=1e-13)


def test_fields_under_no_grad_keep_no_graph_and_time_input():
    hnn = HamiltonianNN(1, width=8)
    with torch.no_grad():
        assert not hnn(torch.zeros(()), torch.randn(3, 2)).requires_grad
    node = NeuralODE(2, width=8, time_dependent=True)
    y = torch.randn(3, 2)
    assert not torch.allclose(node(torch.tensor(0.0), y), node(torch.tensor(1.0), y))
    with pytest.raises(ShapeError, match=r"\[\.\.\., 2\]"):
        node(torch.zeros(()), torch.randn(3, 3))


def test_time_dependent_neural_ode_learns_a_forcing_from_timed_pairs():
    """dy/dt = cos(t) - y / 2: the field depends on t, which only ``times`` can tell it."""
    generator = torch.Generator().manual_seed(0)
    times = 3 * torch.rand(256, generator=generator, dtype=F64)
    states = torch.randn(256, 1, generator=generator, dtype=F64)
    rates = torch.cos(times)[:, None] - states / 2
    torch.manual_seed(0)
    model = NeuralODE(1, width=32, time_dependent=True).double()
    train(model, DerivativeMatching(states, rates, times=times),
          [Stage("adam", 400, 1e-2)], options=QUIET)
    with torch.no_grad():
        error = (model(times, states) - rates).norm() / rates.norm()
        blind = (rates + states / 2).norm() / rates.norm()  # the part only t explains
    assert error < 0.1 and blind > 0.5, (error, blind)


def test_finite_difference_pairs_are_second_order():
    errors = []
    for n in (21, 41):
        t = torch.linspace(0, 2, n, dtype=F64)
        y = torch.stack([torch.sin(t), torch.cos(t)], -1)[:, None]  # [T, 1, 2]
        states, rates = finite_difference_pairs(y, t)
        exact = torch.stack([torch.cos(t), -torch.sin(t)], -1)
        torch.testing.assert_close(states, y[:, 0])
        errors.append((rates - exact).abs().max())
    assert 3.5 < float(errors[0] / errors[1]) < 4.5


def test_objectives_batch_deterministically():
    states, rates = spring_pairs(12, 0)
    objective = DerivativeMatching(states, rates, batch_size=4, seed=3)
    first, again = objective.batch(5), objective.batch(5)
    torch.testing.assert_close(first[0], again[0])
    epoch = torch.cat([objective.batch(k)[0] for k in range(3)])
    assert torch.unique(epoch, dim=0).shape[0] == 12  # one epoch sees every pair once
    trajectories = torch.randn(10, 3, 2, dtype=F64)
    windows = TrajectoryMatching(trajectories, torch.arange(10.0), horizon=4, batch_size=5)
    frames = windows.batch(0)
    assert frames.shape == (5, 5, 2)
    with pytest.raises(ValueError, match="uniformly"):
        TrajectoryMatching(trajectories, torch.arange(10.0) ** 2, horizon=4)


def test_neural_ode_fitted_by_rollout_recovers_the_oscillator_field():
    t = torch.linspace(0, 3, 31, dtype=F64)
    y0, _ = spring_pairs(16, 1)
    y0 = y0 * 1.5
    cos, sin = torch.cos(t)[:, None], torch.sin(t)[:, None]
    # exact: q = q0 cos t + p0 sin t, p = p0 cos t - q0 sin t
    trajectories = torch.stack([y0[:, 0] * cos + y0[:, 1] * sin, y0[:, 1] * cos - y0[:, 0] * sin],
                               dim=-1)
    torch.manual_seed(0)
    model = NeuralODE(2, width=32).double()
    objective = TrajectoryMatching(trajectories, t, horizon=5, batch_size=64, seed=0)
    result = train(model, objective, [Stage("adam", 300, 1e-2)], options=QUIET)
    states, rates = spring_pairs(200, 2)
    with torch.no_grad():
        error = (model(torch.zeros((), dtype=F64), states) - rates).norm() / rates.norm()
    assert result.history[-1]["loss"] < 1e-4
    assert error < 0.08  # untrained: about 1


def test_hnn_conserves_energy_far_better_than_a_neural_ode():
    """Greydanus et al. 2019, Fig. 2 / Table 1 (mass-spring): same MLP size, data and Adam
    schedule; RK4 rollout of t = 300 (about 48 periods). The NODE's true energy drifts
    (its field has a small, unconstrained divergence), the HNN's stays in a band."""
    states, rates = spring_pairs(256, 0)
    y0 = torch.tensor([[1.0, 0.0], [0.0, 0.5]], dtype=F64)
    t = torch.linspace(0, 300, 31, dtype=F64)
    drift = {}
    for name, build in (("hnn", lambda: HamiltonianNN(1, width=32)),
                        ("node", lambda: NeuralODE(2, width=32))):
        torch.manual_seed(0)
        model = build().double()
        result = train(model, DerivativeMatching(states, rates), [Stage("adam", 400, 1e-2)],
                       options=QUIET)
        assert result.history[-1]["loss"] < 1e-3
        with torch.no_grad():
            energy = 0.5 * odeint(model, y0, t, method="rk4", step_size=0.1).square().sum(-1)
        drift[name] = float(((energy - energy[0]).abs() / energy[0]).max())
    assert drift["hnn"] < 0.05
    assert drift["node"] > 10 * drift["hnn"], drift


def test_hnn_integrates_as_a_module_with_odeint_in_float32():
    model = HamiltonianNN(1, width=8)
    y = odeint(model, torch.tensor([1.0, 0.0]), torch.linspace(0, 1, 5), method="rk4",
               step_size=0.1)
    assert y.dtype == torch.float32 and y.shape == (5, 2) and bool(torch.isfinite(y).all())
    assert math.isfinite(float(model.hamiltonian(y).sum().detach()))
