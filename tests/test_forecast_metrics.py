"""Forecast (rollout) metrics against lead time, checked against exact mathematics: phase-shifted
sine waves with a known correlation cos(phi), hand-computed RMSE, single Fourier modes and
Parseval for spectra, the degenerate-ensemble limit of the CRPS and exchangeable ensembles for
the spread-skill ratio."""

from __future__ import annotations

import math

import pytest
import torch

import scidl.metrics
from scidl.errors import ShapeError
from scidl.metrics import (
    acc_by_lead,
    crps_by_lead,
    crps_ensemble,
    energy_spectrum,
    high_correlation_time,
    invariant_drift,
    latitude_weights,
    pearson_by_lead,
    rmse_by_lead,
    spectrum_error_by_lead,
    spread_skill_by_lead,
    spread_skill_ratio,
)

F64 = torch.float64


def _grid(n: int) -> torch.Tensor:
    return torch.arange(n, dtype=F64) * (2 * math.pi / n)


def _phase_drift(n_x: int = 64, n_t: int = 50, dt: float = 0.1, c: float = 0.7,
                 wavenumber: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference ``sin(kx + a_n)`` (static), forecast with phase error ``c t``, ``t = (j+1) dt``;
    their spatial correlation is exactly ``cos(c t)``."""
    x = _grid(n_x)
    offsets = torch.tensor([0.0, 1.3], dtype=F64)
    t = (torch.arange(n_t, dtype=F64) + 1) * dt
    phase = wavenumber * x[None, None, :] + offsets[:, None, None]
    ref = torch.sin(phase).expand(2, n_t, n_x).clone()
    fc = torch.sin(phase + c * t[None, :, None])
    return fc, ref


def test_exports():
    for name in ("rmse_by_lead", "acc_by_lead", "high_correlation_time", "energy_spectrum",
                 "crps_by_lead", "spread_skill_by_lead", "latitude_weights"):
        assert name in scidl.metrics.__all__


def test_pearson_of_phase_shift_is_cosine():
    dt, c = 0.1, 0.7
    fc, ref = _phase_drift(dt=dt, c=c)
    rho = pearson_by_lead(fc, ref)
    t = (torch.arange(fc.shape[1], dtype=F64) + 1) * dt
    assert rho.shape == (2, fc.shape[1])
    torch.testing.assert_close(rho, torch.cos(c * t).expand(2, -1), atol=1e-12, rtol=0)


def test_high_correlation_time_phase_drift_within_one_dt():
    for dt, c in [(0.1, 0.7), (0.05, 0.3), (0.2, 1.9)]:
        fc, ref = _phase_drift(dt=dt, c=c, n_t=60)
        t_true = math.acos(0.8) / c
        hct = high_correlation_time(fc, ref, dt=dt, threshold=0.8)
        assert hct.shape == (2,) and hct.dtype == F64
        assert torch.all((hct - t_true).abs() <= dt + 1e-12)
        # The documented convention: the crossing lies in (hct, hct + dt].
        assert torch.all(hct < t_true + 1e-12) and torch.all(t_true <= hct + dt + 1e-12)


def test_high_correlation_time_conventions():
    fc, ref = _phase_drift(n_t=20, dt=0.1)
    # A perfect forecast never decorrelates: the whole horizon T * dt.
    torch.testing.assert_close(high_correlation_time(ref, ref, dt=0.1),
                               torch.full((2,), 20 * 0.1, dtype=F64))
    # Decorrelated from the first step on: 0.
    flipped = -ref
    assert torch.all(high_correlation_time(flipped, ref, dt=0.1) == 0)
    # A blown-up rollout (NaN from step 5 on) counts as decorrelated there.
    blown = ref.clone()
    blown[:, 5:] = float("nan")
    torch.testing.assert_close(high_correlation_time(blown, ref, dt=0.1),
                               torch.full((2,), 0.5, dtype=F64))
    # Only the first crossing counts, even if the correlation recovers later.
    recovered = ref.clone()
    recovered[:, 3] = -ref[:, 3]
    torch.testing.assert_close(high_correlation_time(recovered, ref, dt=0.1),
                               torch.full((2,), 0.3, dtype=F64))


def test_pearson_invariant_to_shift_and_scale():
    g = torch.Generator().manual_seed(0)
    fc = torch.randn(3, 4, 8, 6, generator=g, dtype=F64)
    ref = torch.randn(3, 4, 8, 6, generator=g, dtype=F64)
    rho = pearson_by_lead(fc, ref)
    torch.testing.assert_close(pearson_by_lead(2.5 * fc + 7.0, ref), rho)
    torch.testing.assert_close(pearson_by_lead(fc, 0.1 * ref - 3.0), rho)
    torch.testing.assert_close(pearson_by_lead(-fc, ref), -rho)
    # Against numpy-style corrcoef on one item.
    expected = torch.corrcoef(torch.stack([fc[1, 2].flatten(), ref[1, 2].flatten()]))[0, 1]
    torch.testing.assert_close(rho[1, 2], expected)
    assert torch.all(rho.abs() <= 1)
    # Constant field: undefined, returned as 0.
    assert torch.all(pearson_by_lead(torch.ones_like(ref), ref) == 0)


def test_acc_perfect_climatology_and_weights():
    g = torch.Generator().manual_seed(1)
    n, t, nx, ny = 4, 5, 6, 8
    clim = torch.randn(nx, ny, generator=g, dtype=F64)
    ref = clim + torch.randn(n, t, nx, ny, generator=g, dtype=F64)
    w = latitude_weights(torch.linspace(-80, 80, nx, dtype=F64))[:, None]
    torch.testing.assert_close(acc_by_lead(ref, ref, clim, w), torch.ones(t, dtype=F64))
    # The climatology itself: undefined, convention 0 (no skill).
    clim_fc = clim.expand(n, t, nx, ny)
    assert torch.all(acc_by_lead(clim_fc, ref, clim) == 0)
    # Anomaly scaling does not matter; anomaly sign flip gives -1.
    torch.testing.assert_close(acc_by_lead(clim + 3.0 * (ref - clim), ref, clim),
                               torch.ones(t, dtype=F64))
    torch.testing.assert_close(acc_by_lead(clim - (ref - clim), ref, clim),
                               -torch.ones(t, dtype=F64))
    # Hand computation with weights, per trajectory then averaged.
    fc = clim + torch.randn(n, t, nx, ny, generator=g, dtype=F64)
    fa, ya = fc - clim, ref - clim
    num = (w * fa * ya).sum(dim=(2, 3))
    den = ((w * fa**2).sum(dim=(2, 3)) * (w * ya**2).sum(dim=(2, 3))).sqrt()
    torch.testing.assert_close(acc_by_lead(fc, ref, clim, w), (num / den).mean(dim=0))
    # Uniform weights equal no weights; climatology per lead time broadcasts.
    torch.testing.assert_close(acc_by_lead(fc, ref, clim, torch.full((1,), 4.0, dtype=F64)),
                               acc_by_lead(fc, ref, clim))
    torch.testing.assert_close(acc_by_lead(fc, ref, clim.expand(t, nx, ny)),
                               acc_by_lead(fc, ref, clim))


def test_rmse_by_lead_hand_computation_and_weights():
    fc = torch.zeros(2, 3, 2, dtype=F64)
    ref = torch.tensor([[[1.0, 1.0], [2.0, 0.0], [0.0, 0.0]],
                        [[3.0, 1.0], [0.0, 2.0], [1.0, 1.0]]], dtype=F64)
    # lead 0: mean of (1, 1, 9, 1) = 3; lead 1: (4, 0, 0, 4) -> 2; lead 2: (0, 0, 1, 1) -> 0.5
    expected = torch.tensor([3.0, 2.0, 0.5], dtype=F64).sqrt()
    torch.testing.assert_close(rmse_by_lead(fc, ref), expected)
    torch.testing.assert_close(rmse_by_lead(fc, ref, torch.full((2,), 0.3, dtype=F64)),
                               expected)
    # Weights (1, 3) normalise to (0.5, 1.5): lead 0: mean(0.5, 1.5, 4.5, 1.5) = 2.
    weighted = rmse_by_lead(fc, ref, torch.tensor([1.0, 3.0], dtype=F64))
    torch.testing.assert_close(weighted[0], torch.tensor(2.0, dtype=F64).sqrt())
    # 2D with latitude weights against a direct computation.
    g = torch.Generator().manual_seed(2)
    f2, r2 = torch.randn(2, 2, 2, 4, 5, generator=g, dtype=F64)
    lat = torch.tensor([-60.0, -20.0, 20.0, 60.0], dtype=F64)
    w = torch.cos(torch.deg2rad(lat))
    w = w / w.mean()
    torch.testing.assert_close(latitude_weights(lat), w)
    direct = ((f2 - r2) ** 2 * w[:, None]).mean(dim=(0, 2, 3)).sqrt()
    torch.testing.assert_close(rmse_by_lead(f2, r2, latitude_weights(lat)[:, None]), direct)
    with pytest.raises(ShapeError):
        rmse_by_lead(f2, r2, latitude_weights(lat))  # [4] does not broadcast to [4, 5]
    with pytest.raises(ShapeError):
        rmse_by_lead(f2, r2[:, :1])


def test_energy_spectrum_single_mode_1d_and_parseval():
    n = 32
    x = _grid(n)
    for k in (0, 1, 5, n // 2):
        u = 2.0 * torch.cos(k * x + (0.4 if 0 < k < n // 2 else 0.0))
        e = energy_spectrum(u[None], dims=-1)
        assert e.shape == (1, n // 2 + 1)
        mask = torch.arange(n // 2 + 1) != k
        assert torch.all(e[0, mask].abs() < 1e-20)
        torch.testing.assert_close(e[0, k], (u**2).mean())
    g = torch.Generator().manual_seed(3)
    for n_x in (16, 15):
        u = torch.randn(3, 4, n_x, generator=g, dtype=F64)
        e = energy_spectrum(u, dims=-1)
        assert e.shape == (3, 4, n_x // 2 + 1)
        torch.testing.assert_close(e.sum(-1), (u**2).mean(-1))


def test_energy_spectrum_2d_shells_and_parseval():
    nx, ny = 24, 16
    x = _grid(nx)[:, None]
    y = _grid(ny)[None, :]
    u = torch.sin(3 * x + 4 * y)  # |k| = 5
    e = energy_spectrum(u, dims=(0, 1))
    assert e.ndim == 1
    torch.testing.assert_close(e[5], torch.tensor(0.5, dtype=F64))
    assert (e.sum() - e[5]).abs() < 1e-20
    v = torch.cos(2 * x) + torch.sin(2 * y) + 0.5 * torch.cos(x + y)  # shells 2, 2, round(1.41)=1
    e = energy_spectrum(v, dims=(-2, -1))
    torch.testing.assert_close(e[2], torch.tensor(1.0, dtype=F64))
    torch.testing.assert_close(e[1], torch.tensor(0.125, dtype=F64))
    g = torch.Generator().manual_seed(4)
    for shape in ((2, 3, 12, 10), (2, 3, 9, 7)):
        w = torch.randn(*shape, generator=g, dtype=F64)
        e = energy_spectrum(w, dims=(2, 3))
        assert e.shape[:2] == (2, 3)
        torch.testing.assert_close(e.sum(-1), (w**2).mean(dim=(2, 3)))
    # Spatial dims in front: the remaining dims keep their order.
    w = torch.randn(12, 10, 3, generator=g, dtype=F64)
    torch.testing.assert_close(energy_spectrum(w, dims=(0, 1)),
                               energy_spectrum(w.permute(2, 0, 1), dims=(1, 2)))


def test_spectrum_error_by_lead():
    fc, ref = _phase_drift(n_t=6)
    # A pure phase error leaves the spectrum unchanged.
    torch.testing.assert_close(spectrum_error_by_lead(fc, ref), torch.zeros(6, dtype=F64),
                               atol=1e-12, rtol=0)
    # Amplitude a: spectrum a^2 E, relative L1 error |a^2 - 1|.
    amp = torch.tensor([1.0, 2.0, 0.5, 1.0, 1.0, 3.0], dtype=F64)
    err = spectrum_error_by_lead(fc * amp[None, :, None], ref)
    torch.testing.assert_close(err, (amp**2 - 1).abs())
    g = torch.Generator().manual_seed(5)
    r2 = torch.randn(2, 3, 8, 8, generator=g, dtype=F64)
    torch.testing.assert_close(spectrum_error_by_lead(r2, r2), torch.zeros(3, dtype=F64))


def test_invariant_drift():
    series = torch.tensor([[2.0, 2.0, 2.2, 1.5], [-1.0, -1.1, -0.9, -1.0]], dtype=F64)
    expected = torch.tensor([[0.0, 0.0, 0.1, 0.25], [0.0, 0.1, 0.1, 0.0]], dtype=F64)
    torch.testing.assert_close(invariant_drift(series), expected)
    initial = torch.tensor([4.0, -1.0], dtype=F64)
    torch.testing.assert_close(invariant_drift(series, initial)[0],
                               torch.tensor([0.5, 0.5, 0.45, 0.625], dtype=F64))
    with pytest.raises(ShapeError):
        invariant_drift(series[0])


def test_crps_by_lead_degenerate_is_mae_and_matches_crps_ensemble():
    g = torch.Generator().manual_seed(6)
    ref = torch.randn(3, 4, 5, 2, generator=g, dtype=F64)
    fc = torch.randn(3, 4, 5, 2, generator=g, dtype=F64)
    degenerate = fc.expand(7, *fc.shape)
    torch.testing.assert_close(crps_by_lead(degenerate, ref),
                               (fc - ref).abs().mean(dim=(0, 2, 3)))
    ens = torch.randn(6, 3, 4, 5, 2, generator=g, dtype=F64)
    per_lead = torch.stack([crps_ensemble(ens[:, :, t], ref[:, t]) for t in range(4)])
    torch.testing.assert_close(crps_by_lead(ens, ref), per_lead)
    with pytest.raises(ShapeError):
        crps_by_lead(ens[:1], ref)


def test_spread_skill_by_lead_consistent_and_calibrated():
    g = torch.Generator().manual_seed(7)
    m, n, t, x = 5, 400, 3, 16
    sigma = torch.tensor([0.5, 1.0, 2.0], dtype=F64)[None, None, :, None]
    centre = 3.0 * torch.randn(n, 1, x, generator=g, dtype=F64)
    # Truth and members exchangeable draws around a random centre, spread growing with lead.
    draws = centre + sigma * torch.randn(m + 1, n, t, x, generator=g, dtype=F64)
    truth, ens = draws[0], draws[1:]
    ssr = spread_skill_by_lead(ens, truth)
    assert ssr.shape == (t,)
    torch.testing.assert_close(ssr, torch.ones(t, dtype=F64), atol=0.05, rtol=0)
    per_lead = torch.stack([spread_skill_ratio(ens[:, :, k], truth[:, k]) for k in range(t)])
    torch.testing.assert_close(ssr, per_lead)
    # Under-dispersed ensemble: ratio about 1/2.
    shrunk = ens.mean(0) + 0.5 * (ens - ens.mean(0))
    assert torch.all(spread_skill_by_lead(shrunk, truth) < 0.75)


def test_float32_follows_dtype():
    fc, ref = _phase_drift(n_t=5)
    fc, ref = fc.float(), ref.float()
    assert rmse_by_lead(fc, ref).dtype == torch.float32
    assert high_correlation_time(fc, ref, dt=0.1).dtype == torch.float32
    assert energy_spectrum(fc, -1).dtype == torch.float32


def test_gradients_finite_including_undefined_correlations():
    g = torch.Generator().manual_seed(8)
    ref = torch.randn(2, 3, 8, generator=g, dtype=F64)
    fc = torch.randn(2, 3, 8, generator=g, dtype=F64)
    fc[0, 1] = 0.0  # constant field: correlation defined as 0
    fc.requires_grad_(True)
    loss = (pearson_by_lead(fc, ref).sum() + acc_by_lead(fc, ref, torch.zeros(8, dtype=F64)).sum()
            + rmse_by_lead(fc, ref).sum() + spectrum_error_by_lead(fc, ref).sum())
    loss.backward()
    assert torch.isfinite(fc.grad).all()
