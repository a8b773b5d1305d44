"""The 1D PDE families and coupled systems, against exact solutions and known mathematics.

Advection against the exact shift, KdV against its soliton and invariants, spectral (exponential)
convergence in space at the rate set by the solution's analyticity strip, ETDRK4's fourth order on
Kuramoto-Sivashinsky, KS chaos on L = 22, the Fisher-KPP front speed with Bramson's correction,
Allen-Cahn's maximum principle and metastable tanh interfaces, the wave equation as a
two-channel system (d'Alembert, energy, exact matrix ETDRK4 coefficients), and gradients with
respect to initial conditions and PDE parameters against central finite differences.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scidl.errors import ShapeError
from scidl.numerics.derivatives import SpectralDerivatives
from scidl.numerics.etdrk4 import ETDRK4
from scidl.numerics.grids import PeriodicGrid
from scidl.numerics.interpolation import fourier_interpolate
from scidl.numerics.rk4 import RK4
from scidl.numerics.simulate import simulate
from scidl.numerics.steppers import BlockSymbol
from scidl.pdes.advection import Advection
from scidl.pdes.allen_cahn import AllenCahn
from scidl.pdes.burgers import Burgers
from scidl.pdes.fisher_kpp import FisherKPP
from scidl.pdes.kdv import KdV
from scidl.pdes.kuramoto_sivashinsky import KuramotoSivashinsky
from scidl.pdes.wave import Wave

TWO_PI = 2 * math.pi


def max_error(approx: torch.Tensor, exact: torch.Tensor) -> float:
    return float((approx - exact).abs().max())


def fitted_slope(x: list[float], y: list[float]) -> float:
    """Least-squares slope of log(y) against log(x)."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def angular_wavenumbers(n: int, length: float) -> torch.Tensor:
    return TWO_PI / length * torch.arange(n // 2 + 1, dtype=torch.float64)


# --------------------------------------------------------------------- symbols and definitions


def test_linear_symbols_are_derived_from_the_right_hand_sides():
    n, length = 32, 7.0
    grid = PeriodicGrid(n, length)
    k = angular_wavenumbers(n, length)
    odd = torch.ones_like(k)
    odd[-1] = 0.0  # odd derivatives zero the Nyquist mode
    expected = {
        Advection(0.7): -0.7j * k * odd,
        KdV(): 1j * k**3 * odd,  # -u_xxx -> -(i k)^3
        KuramotoSivashinsky(): k**2 - k**4,
        AllenCahn(1e-3, 5.0): 5.0 - 1e-3 * k**2,
        FisherKPP(0.5, 2.0): 2.0 - 0.5 * k**2,
    }
    for pde, symbol in expected.items():
        derived = pde.linear_symbol(grid)
        assert derived.shape == (n // 2 + 1,)
        assert max_error(derived, symbol) < 1e-12 * float(symbol.abs().max()), pde

    block = Wave(1.5).linear_symbol(grid)
    assert block.shape == (2, 2, n // 2 + 1) and block.dtype == torch.complex128
    assert max_error(block[0, 0], 0 * k) == 0 and max_error(block[1, 1], 0 * k) == 0
    assert max_error(block[0, 1], torch.ones_like(k)) < 1e-14
    assert max_error(block[1, 0], -(1.5**2) * k**2) < 1e-12 * 1.5**2 * float(k.max() ** 2)
    grid2 = PeriodicGrid((8, 6), (1.0, 2.0))
    kx = TWO_PI * torch.fft.fftfreq(8, 1 / 8).double()[:, None]
    ky = math.pi * torch.arange(4).double()[None, :]
    block2 = Wave(2.0).linear_symbol(grid2, torch.float32)
    assert block2.shape == (2, 2, 8, 4) and block2.dtype == torch.complex64
    assert max_error(block2[1, 0].to(torch.complex128), -4.0 * (kx**2 + ky**2)) < 1e-3


def test_names_channels_parameters_and_validation():
    names = {cls.name for cls in (Advection, KdV, KuramotoSivashinsky, AllenCahn, FisherKPP, Wave)}
    assert names == {"advection", "kdv", "kuramoto_sivashinsky", "allen_cahn", "fisher_kpp",
                     "wave"}
    assert Wave.channels == 2 and KdV.channels == 1 and Advection.channels == 1
    assert AllenCahn().parameters() == {"diffusivity": 1e-3, "reaction": 5.0}  # DeepXDE's
    assert FisherKPP(2.0, 0.5).parameters() == {"diffusivity": 2.0, "rate": 0.5}
    assert KdV().parameters() == {} and Wave(3.0) == Wave(3.0)
    for make, match in [
        (lambda: Advection(float("nan")), "finite speed"),
        (lambda: AllenCahn(diffusivity=0.0), "diffusivity"),
        (lambda: AllenCahn(reaction=-1.0), "reaction"),
        (lambda: FisherKPP(diffusivity=-1.0), "diffusivity"),
        (lambda: FisherKPP(rate=0.0), "growth rate"),
        (lambda: Wave(0.0), "positive speed"),
    ]:
        with pytest.raises(ValueError, match=match):
            make()


# -------------------------------------------------------------------------------- advection


@pytest.mark.parametrize("c", [0.7, -1.3])
def test_advection_with_etdrk4_is_the_exact_shift_at_any_step(c):
    # u_t = -c u_x has the purely imaginary symbol -i c k; ETDRK4 integrates a linear PDE
    # exactly, so even dt = 1 (many grid cells per step) reproduces u0(x - c t).
    grid = PeriodicGrid(64)
    (x,) = grid.meshgrid()

    def profile(s):
        return torch.exp(torch.sin(TWO_PI * s)) + 0.2 * torch.cos(3 * TWO_PI * s)

    times = [0.0, 0.3, 1.7, 5.0]
    trajectory = simulate(Advection(c), torch.stack([profile(x), profile(x)]), times,
                          grid=grid, dt=1.0)
    for u, t in zip(trajectory.unbind(1), times, strict=True):
        assert max_error(u, profile(x - c * t).expand(2, -1)) < 1e-12


# -------------------------------------------------------------------------------------- KdV


def kdv_soliton(x: torch.Tensor, t: float, c: float, x0: float, length: float) -> torch.Tensor:
    """``(c/2) sech^2(sqrt(c)/2 (x - c t - x0))``, nearest periodic image (tails ~ 1e-11 here)."""
    s = torch.remainder(x - c * t - x0 + length / 2, length) - length / 2
    return c / 2 / torch.cosh(math.sqrt(c) / 2 * s) ** 2


def test_kdv_soliton_travels_unchanged_and_invariants_are_conserved():
    # c = 1: width ~ 2, moves 10 = five widths. Measured max error 1.3e-7 at dt = 0.02
    # (7.6e-9 at dt = 0.01); mass exact to 1e-13, int u^2 drifts 3e-8, int (u^3 - u_x^2/2) 3e-8.
    length, c = 50.0, 1.0
    grid = PeriodicGrid(256, length)
    (x,) = grid.meshgrid()
    times = [0.0, 2.5, 5.0, 7.5, 10.0]
    trajectory = simulate(KdV(), kdv_soliton(x, 0.0, c, length / 4, length), times, grid=grid,
                          dt=0.02)
    for u, t in zip(trajectory, times, strict=True):
        assert max_error(u, kdv_soliton(x, t, c, length / 4, length)) < 1e-6
    d = SpectralDerivatives(grid)
    h = length / 256
    mass = trajectory.sum(-1) * h  # exact value: int (c/2) sech^2 = 2 sqrt(c)
    momentum = (trajectory**2).sum(-1) * h  # exact: (2/3) c^{3/2}
    energy = (trajectory**3 - d.x(trajectory) ** 2 / 2).sum(-1) * h
    assert float((mass - 2 * math.sqrt(c)).abs().max()) < 1e-10
    assert float((momentum - 2 / 3 * c**1.5).abs().max()) < 1e-6
    assert float((energy - energy[0]).abs().max()) < 1e-6 * float(energy[0].abs())
    assert float((mass - mass[0]).abs().max()) < 1e-12


# ----------------------------------------------------------------- spectral convergence in x


def cole_hopf(x: torch.Tensor, t: float, nu: float, amplitude: float) -> torch.Tensor:
    """Burgers on [0, 1): ``u = -2 nu d/dx log(1 + a(t) cos 2 pi x)``,
    ``a(t) = a exp(-4 pi^2 nu t)`` (Cole 1951, Hopf 1950)."""
    a = amplitude * math.exp(-nu * TWO_PI**2 * t)
    return 2 * nu * TWO_PI * a * torch.sin(TWO_PI * x) / (1 + a * torch.cos(TWO_PI * x))


def test_spectral_convergence_in_space_at_the_rate_of_the_analyticity_strip():
    # log(1 + a cos t) has Fourier coefficients ~ r^m / m with r = e^{-sigma}, a = 1/cosh(sigma),
    # so the Cole-Hopf solution's coefficients decay exactly geometrically, ~ e^{-sigma m}. With
    # the 2/3 rule the first mode the scheme gets wrong is m ~ N/3, so the error must fall like
    # exp(-sigma(T) N / 3): log(error) linear in N -- faster than any power of 1/N -- with a
    # slope fixed by the singularity nearest the real axis. Measured local slopes
    # 0.5833, 0.5822, 0.5829, 0.5843 against sigma/3 = 0.5838; errors 2.3e-3 -> 6.5e-8.
    nu, amplitude, end = 0.1, 0.5, 0.1
    sizes = [12, 18, 24, 30]
    errors = []
    for n in sizes:
        grid = PeriodicGrid(n)
        (x,) = grid.meshgrid()
        u = simulate(Burgers(nu), cole_hopf(x, 0.0, nu, amplitude), [0.0, end], grid=grid,
                     dt=1e-3)[-1]
        errors.append(max_error(u, cole_hopf(x, end, nu, amplitude)))
    sigma = math.acosh(math.exp(nu * TWO_PI**2 * end) / amplitude)
    rates = [math.log(e0 / e1) / (n1 - n0)
             for e0, e1, n0, n1 in zip(errors, errors[1:], sizes, sizes[1:])]
    for rate in rates:
        assert abs(rate / (sigma / 3) - 1) < 0.02
    # an algebraic method of any order p would have local slope p log(N1/N0) / (N1 - N0) -> 0
    algebraic = [math.log(e0 / e1) / math.log(n1 / n0)
                 for e0, e1, n0, n1 in zip(errors, errors[1:], sizes, sizes[1:])]
    assert all(b > a for a, b in zip(algebraic, algebraic[1:]))


# ----------------------------------------------------------------------- Kuramoto-Sivashinsky


def ks_initial_condition(x: torch.Tensor, length: float) -> torch.Tensor:
    q = TWO_PI / length
    return torch.cos(q * x) * (1 + torch.sin(q * x)) + 0.1 * torch.cos(2 * q * x)


def test_etdrk4_is_fourth_order_on_kuramoto_sivashinsky():
    # L = 22, N = 32, to t = 1. Differences of successive halvings, u_h - u_{h/2} ~ (15/16) C h^4,
    # carry the order without a reference solve. Measured local orders 3.91, 3.98, 4.00, 3.94.
    # (With N = 64, h |L| reaches ~300 and the steps 0.04..0.005 still show the stiff order
    # reduction of Hochbruck & Ostermann 2005: 3.5, 3.7, 3.9, 3.95.)
    length = 22.0
    grid = PeriodicGrid(32, length)
    (x,) = grid.meshgrid()
    u0 = ks_initial_condition(x, length)
    dts = [0.04 / 2**j for j in range(5)]
    finals = [simulate(KuramotoSivashinsky(), u0, [0.0, 1.0], grid=grid, dt=dt)[-1] for dt in dts]
    differences = [max_error(a, b) for a, b in zip(finals, finals[1:])]
    assert differences[-1] > 1e-12  # above round-off
    assert abs(fitted_slope(dts[:-1], differences) - 4) < 0.3


def test_kuramoto_sivashinsky_on_l22_is_chaotic_and_stays_bounded():
    # 10,000 ETDRK4 steps of dt = 0.05 (t = 500) on L = 22, N = 64, twice: u0 and u0 + 1e-8 sin.
    # Measured: max|u| = 2.80, mean energy <u^2> = 1.41 (std 0.51) after t = 100, mean of u
    # 6e-16, and the twins separate from 7e-9 to 9e-2 (growth rate ~0.025; the attractor's
    # leading Lyapunov exponent is ~0.043-0.048, Cvitanovic et al. 2010; a finite-time estimate
    # from one pair is lower). ~9 s on one core.
    length = 22.0
    grid = PeriodicGrid(64, length)
    (x,) = grid.meshgrid()
    u0 = ks_initial_condition(x, length)
    twins = torch.stack([u0, u0 + 1e-8 * torch.sin(TWO_PI * x / length)])
    times = torch.arange(0.0, 501.0, 10.0)
    trajectory = simulate(KuramotoSivashinsky(), twins, times, grid=grid, dt=0.05)
    assert torch.isfinite(trajectory).all()
    assert float(trajectory.abs().max()) < 5
    energy = (trajectory[:, 10:] ** 2).mean(-1)
    assert 0.5 < float(energy.mean()) < 3 and float(energy.max()) < 6
    assert float(energy.std()) > 0.1  # not settled onto an equilibrium or travelling wave
    assert float(trajectory.mean(-1).abs().max()) < 1e-12  # int u is conserved
    separation = (trajectory[1] - trajectory[0]).pow(2).mean(-1).sqrt()
    assert float(separation[-5:].max()) > 1e5 * float(separation[0])


# ---------------------------------------------------------------------------------- Fisher-KPP


def rightmost_crossing(u: torch.Tensor, x: torch.Tensor, level: float = 0.5) -> float:
    """Position where ``u`` last crosses ``level`` going right, by linear interpolation."""
    j = int((u >= level).nonzero().max())
    u0, u1 = float(u[j]), float(u[j + 1])
    return float(x[j]) + float(x[1] - x[0]) * (u0 - level) / (u0 - u1)


@pytest.mark.parametrize("diffusivity, rate", [(1.0, 1.0), (0.5, 2.0)])
def test_fisher_kpp_front_speed_approaches_two_sqrt_d_r(diffusivity, rate):
    # From steep (faster than e^{-lambda* x}, lambda* = sqrt(r/D)) initial data the pulled front
    # moves at v(t) = c* - 3 / (2 lambda* t) + O(t^{-3/2}), c* = 2 sqrt(D r) (Bramson 1983; Ebert &
    # van Saarloos 2000). Lengths scale with sqrt(D/r) and times with 1/r, so both cases are the
    # same dimensionless problem, run to r t = 25 (beyond ~30, round-off ahead of the front,
    # amplified by e^{r t}, would start fronts of its own). Measured average speed / c* over
    # r t in [10, 20] and [15, 25]: 0.9445 and 0.9607; Bramson's prediction 0.9480, 0.9617.
    # The O(t^{-3/2}) remainder is what the 10 % tolerance on the shortfall is for (measured 3 %).
    scale, tau = math.sqrt(diffusivity / rate), 1 / rate
    length = 160 * scale
    grid = PeriodicGrid(512, length)
    (x,) = grid.meshgrid()
    centre, width = length / 2, scale
    u0 = 0.5 * (torch.tanh((x - centre + 5 * scale) / width)
                - torch.tanh((x - centre - 5 * scale) / width))
    times = [s * tau for s in (0.0, 10.0, 15.0, 20.0, 25.0)]
    trajectory = simulate(FisherKPP(diffusivity, rate), u0, times, grid=grid, dt=0.05 * tau)
    # ahead of the front u = 0 is unstable: round-off (1e-16) grows like e^{r t} (7e10 at r t =
    # 25), so the undershoot is ~1e-6 and its exact size depends on the CPU's FFT kernels
    assert float(trajectory.max()) < 1 + 1e-8 and float(trajectory.min()) > -1e-4
    position = {round(t / tau): rightmost_crossing(u, x) for t, u in zip(times, trajectory)
                if t > 0}
    c_star, lam = 2 * math.sqrt(diffusivity * rate), math.sqrt(rate / diffusivity)
    speeds = []
    for a, b in [(10, 20), (15, 25)]:
        speed = (position[b] - position[a]) / ((b - a) * tau)
        bramson = c_star - 3 / (2 * lam) * math.log(b / a) / ((b - a) * tau)
        assert speed < c_star
        assert abs(speed - bramson) < 0.1 * (c_star - bramson)
        speeds.append(speed)
    assert speeds[0] < speeds[1]  # approaching c* from below


# --------------------------------------------------------------------------------- Allen-Cahn


def test_allen_cahn_deepxde_setting_keeps_the_maximum_principle_and_forms_tanh_interfaces():
    # u_t = 0.001 u_xx + 5 (u - u^3) on [-1, 1), u0 = x^2 cos(pi x) (DeepXDE's benchmark, here
    # periodic). |u0| <= 1, so |u| <= 1 for all t. Two interfaces form near x = +-0.5 (the zeros
    # of cos(pi x)), settle by t ~ 2 at x0 = 0.494064 (they drift 0.006 while forming), and then
    # stay put (1D metastability): the whole solution is the stationary kink profile
    # tanh(kappa (x0 - |x|)), kappa = sqrt(a / 2D) = 50. Measured: max|u| - 1 <= 8e-9,
    # x0(t=2) - x0(t=3) < 1e-8, profile error 8.5e-8 at t = 3.
    pde = AllenCahn()
    grid = PeriodicGrid(512, 2.0)
    (s,) = grid.meshgrid()
    x = s - 1.0
    times = [0.0, 0.25, 0.5, 1.0, 2.0, 3.0]
    trajectory = simulate(pde, x**2 * torch.cos(math.pi * x), times, grid=grid, dt=0.01)
    assert float(trajectory.abs().max()) <= 1 + 1e-6

    def interface(u: torch.Tensor) -> float:
        """Zero of the trigonometric interpolant of u in (0.4, 0.6), by bisection."""
        def value(point: float) -> float:
            return float(fourier_interpolate(u, torch.tensor([point + 1.0]), grid)[0])
        lo, hi = 0.4, 0.6
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if value(lo) * value(mid) <= 0 else (mid, hi)
        return (lo + hi) / 2

    for u, t in zip(trajectory, times, strict=True):
        if t >= 0.5:
            signs = torch.sign(u)
            assert int((signs != signs.roll(1)).sum()) == 2  # exactly two interfaces
    x0 = [interface(u) for u in trajectory[-2:]]
    assert abs(x0[0] - x0[1]) < 1e-7 and 0.49 < x0[1] < 0.5
    kappa = math.sqrt(pde.reaction / (2 * pde.diffusivity))
    assert max_error(trajectory[-1], torch.tanh(kappa * (x0[1] - x.abs()))) < 1e-6


# --------------------------------------------------------------------------- the wave equation


def dalembert(x: torch.Tensor, t: float, c: float) -> torch.Tensor:
    """``[u, u_t]`` for ``u0 = f = exp(cos 2x)``, ``v0 = g = cos(x) exp(sin x) = G'``:
    ``u = (f(x - ct) + f(x + ct)) / 2 + (G(x + ct) - G(x - ct)) / (2c)``."""
    def f(s):
        return torch.exp(torch.cos(2 * s))

    def df(s):
        return -2 * torch.sin(2 * s) * f(s)

    def big_g(s):
        return torch.exp(torch.sin(s))

    def g(s):
        return torch.cos(s) * big_g(s)

    minus, plus = x - c * t, x + c * t
    u = (f(minus) + f(plus)) / 2 + (big_g(plus) - big_g(minus)) / (2 * c)
    v = c * (df(plus) - df(minus)) / 2 + (g(plus) + g(minus)) / 2
    return torch.stack([u, v])


def wave_energy(state: torch.Tensor, c: float, grid: PeriodicGrid) -> torch.Tensor:
    """``int (v^2 + c^2 u_x^2) / 2`` over ``[..., 2, N]`` states."""
    d = SpectralDerivatives(grid)
    u, v = state.unbind(-2)
    return 0.5 * (v**2 + c**2 * d.x(u) ** 2).sum(-1) * grid.spacing[0]


def test_wave_with_etdrk4_matches_dalembert_over_several_periods_at_a_large_step():
    # The block symbol [[0, 1], [-c^2 k^2, 0]] is integrated exactly, so a step of 0.7 (c k h up
    # to 30 radians on mode 32) is as accurate as any. Measured error 4e-14 after 3 periods.
    c = 1.5
    grid = PeriodicGrid(64, TWO_PI)
    (x,) = grid.meshgrid()
    times = torch.linspace(0.0, 3 * TWO_PI / c, 7)
    trajectory = simulate(Wave(c), dalembert(x, 0.0, c), times, grid=grid, dt=0.7)
    assert trajectory.shape == (7, 2, 64)
    for state, t in zip(trajectory, times.tolist(), strict=True):
        assert max_error(state, dalembert(x, t, c)) < 1e-10
    energy = wave_energy(trajectory, c, grid)
    assert float((energy - energy[0]).abs().max()) < 1e-12 * float(energy[0])
    single = simulate(Wave(c), dalembert(x, 0.0, c).float(), times[[0, -1]], grid=grid, dt=0.7)
    assert single.dtype == torch.float32  # measured error 2.4e-5 (fields up to ~5)
    assert max_error(single[-1].double(), dalembert(x, float(times[-1]), c)) < 1e-4
    # batched input and the 2D standing wave sin(x) cos(2y) cos(sqrt(5) c t)
    batched = simulate(Wave(c), dalembert(x, 0.0, c)[None].expand(3, -1, -1), times[:2],
                       grid=grid, dt=0.7)
    assert batched.shape == (3, 2, 2, 64)
    assert max_error(batched[:, 1], trajectory[1].expand(3, -1, -1)) < 1e-13
    grid2 = PeriodicGrid((16, 16), (TWO_PI, TWO_PI))
    gx, gy = grid2.meshgrid()
    mode, omega = torch.sin(gx) * torch.cos(2 * gy), math.sqrt(5) * c
    state = simulate(Wave(c), torch.stack([mode, 0 * mode]), [0.0, 4.0], grid=grid2, dt=1.0)[-1]
    exact = torch.stack([math.cos(4 * omega) * mode, -omega * math.sin(4 * omega) * mode])
    assert max_error(state, exact) < 1e-12


def test_rk4_on_the_coupled_wave_system_is_fourth_order():
    # the block symbol through apply_linear; h c k_max <= 1.3 < 2.8, RK4's stability interval
    # on the imaginary axis. (N = 64: at N = 32 the spatial error of exp(cos 2x), 3e-7, floors
    # the fit.)
    c, end = 1.0, 1.0
    grid = PeriodicGrid(64, TWO_PI)
    (x,) = grid.meshgrid()
    dts = [0.04, 0.02, 0.01, 0.005]
    errors = [
        max_error(simulate(Wave(c), dalembert(x, 0.0, c), [0.0, end], grid=grid, dt=dt,
                           stepper=RK4())[-1], dalembert(x, end, c))
        for dt in dts
    ]
    assert errors[-1] > 1e-12
    assert abs(fitted_slope(dts, errors) - 4) < 0.3


def test_matrix_etdrk4_coefficients_agree_with_the_scalar_contour_and_closed_forms():
    h = 0.1
    values = torch.tensor([-1e-9, -0.5, -3.0, -40.0, -1e4, 2j, -1.0 + 3j, 1e-6j, 0.3],
                          dtype=torch.complex128) / h
    scalar = ETDRK4().coefficients(values, h)
    diagonal = torch.zeros(2, 2, len(values), dtype=torch.complex128)
    diagonal[0, 0], diagonal[1, 1] = values, values.flip(0)
    matrix = ETDRK4().matrix_coefficients(diagonal, h)
    for s, m in zip(scalar, matrix, strict=True):
        tolerance = 1e-11 * s.abs() + 1e-300
        assert bool(((m[0, 0] - s).abs() <= tolerance).all())
        assert bool(((m[1, 1] - s.flip(0)).abs() <= tolerance.flip(0)).all())
        assert float(m[0, 1].abs().max()) == 0.0
    # The wave symbol at k = 0 is the defective [[0, 1], [0, 0]] (no eigenvector basis); with
    # A = h L nilpotent, phi_p(A) = I / p! + A / (p + 1)! exactly.
    A = torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=torch.complex128)
    E, E2, Q, f1, f2, f3 = (c[..., 0] for c in ETDRK4().matrix_coefficients(A[..., None], h))
    eye, hA = torch.eye(2, dtype=torch.complex128), h * A
    expected = [eye + hA, eye + hA / 2, h / 2 * (eye + hA / 4), h * (eye + hA) / 6,
                h * (eye / 6 + hA / 12), h * eye / 6]
    for value, exact in zip((E, E2, Q, f1, f2, f3), expected, strict=True):
        assert max_error(value, exact) < 1e-15


def test_systems_check_their_channels():
    grid = PeriodicGrid(16)
    zeros = torch.zeros(16, dtype=torch.float64)
    for bad in (zeros, zeros.expand(3, 3, 16), zeros.expand(3, 16)):
        with pytest.raises(ShapeError, match="system of 2 fields"):
            simulate(Wave(), bad, [0.0, 0.1], grid=grid, dt=0.1)
    with pytest.raises(ShapeError, match="displacement, velocity"):
        Wave().rhs(zeros.expand(3, 16), SpectralDerivatives(grid))
    with pytest.raises(ShapeError, match=r"\[C, C, \*K\]"):
        BlockSymbol(torch.zeros(2, 3, 5))


# ---------------------------------------------------------------------------------- gradients


def assert_matches_central_differences(loss, value: torch.Tensor, gradient: torch.Tensor,
                                       directions: list[torch.Tensor], eps: float) -> None:
    """Directional derivatives of ``loss`` at ``value`` against ``(L(v + e d) - L(v - e d)) / 2e``
    (truncation error ~ eps^2, round-off ~ 1e-16 / eps relative)."""
    for direction in directions:
        with torch.no_grad():
            fd = float((loss(value + eps * direction) - loss(value - eps * direction)) / (2 * eps))
        exact = float((gradient * direction).sum())
        assert abs(exact - fd) < 1e-6 * abs(fd), (exact, fd)


CASES = {
    # name: (PDE from a parameter, parameter value, grid, initial condition, times, dt)
    "burgers_nu": (Burgers, 0.1, PeriodicGrid(32), "sin", [0.0, 0.05, 0.1], 0.01),
    "advection_c": (Advection, 0.8, PeriodicGrid(32), "sin", [0.0, 0.1, 0.3], 0.05),
    "wave_c": (Wave, 1.3, PeriodicGrid(32, TWO_PI), "wave", [0.0, 0.2, 0.5], 0.1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients_wrt_initial_condition_and_pde_parameter_match_finite_differences(case):
    make, value, grid, kind, times, dt = CASES[case]
    (x,) = grid.meshgrid()
    if kind == "wave":
        u0 = dalembert(x, 0.0, 1.0)
    else:
        u0 = torch.sin(TWO_PI * x) + 0.5 * torch.cos(2 * TWO_PI * x + 0.3)
    gen = torch.Generator().manual_seed(0)
    weights = torch.rand((len(times), *u0.shape), dtype=torch.float64, generator=gen)

    def loss(u_init: torch.Tensor, parameter) -> torch.Tensor:
        trajectory = simulate(make(parameter), u_init, times, grid=grid, dt=dt)
        return (trajectory**2 * weights).sum()

    parameter = torch.tensor(value, dtype=torch.float64, requires_grad=True)
    start = u0.clone().requires_grad_()
    grad_u0, grad_parameter = torch.autograd.grad(loss(start, parameter), (start, parameter))
    assert float(grad_parameter.abs()) > 0
    directions = [torch.randn(u0.shape, dtype=torch.float64, generator=gen) for _ in range(2)]
    assert_matches_central_differences(lambda u: loss(u, value), u0, grad_u0, directions, 1e-5)
    one = torch.tensor(1.0, dtype=torch.float64)
    assert_matches_central_differences(lambda p: loss(u0, float(p)), value * one,
                                       grad_parameter, [one], 1e-6)


def test_derived_symbols_keep_the_graph_to_tensor_parameters_only_when_needed():
    grid = PeriodicGrid(16, TWO_PI)
    k = angular_wavenumbers(16, TWO_PI)
    nu = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    symbol = Burgers(nu).linear_symbol(grid)
    assert symbol.requires_grad
    (d_nu,) = torch.autograd.grad(symbol.real.sum(), nu)
    assert float(d_nu) == pytest.approx(-float((k**2).sum()), rel=1e-12)
    c = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    (d_c,) = torch.autograd.grad(Wave(c).linear_symbol(grid)[1, 0].real.sum(), c)
    assert float(d_c) == pytest.approx(-2 * 2.0 * float((k**2).sum()), rel=1e-12)
    # no graph when nothing asks for one (data generation, float parameters)
    assert not Burgers(0.3).linear_symbol(grid).requires_grad
    with torch.no_grad():
        assert not Burgers(nu).linear_symbol(grid).requires_grad
    with torch.inference_mode():
        assert torch.equal(Burgers(nu).linear_symbol(grid), Burgers(0.3).linear_symbol(grid))
