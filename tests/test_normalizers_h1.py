"""Training-set normalisers and the relative H1 metric."""

from __future__ import annotations

import math

import pytest
import torch

from scidl.data.normalizers import GlobalNormalizer, PointwiseNormalizer
from scidl.metrics import relative_h1, relative_l2


@pytest.mark.parametrize("kind", [PointwiseNormalizer, GlobalNormalizer])
def test_normalizers_standardise_the_training_set_and_invert_exactly(kind):
    generator = torch.Generator().manual_seed(0)
    x = 3.0 + 2.0 * torch.randn(200, 2, 16, generator=generator, dtype=torch.float64)
    normalizer = kind().fit(x)
    encoded = normalizer.encode(x)
    if kind is PointwiseNormalizer:
        assert torch.allclose(encoded.mean(0), torch.zeros(2, 16, dtype=torch.float64), atol=1e-12)
        assert torch.allclose(encoded.std(0), torch.ones(2, 16, dtype=torch.float64), atol=1e-5)
    else:
        assert abs(float(encoded.mean())) < 1e-12 and abs(float(encoded.std()) - 1) < 1e-5
    assert torch.allclose(normalizer.decode(encoded), x, atol=1e-12)
    # saved with a checkpoint, restored into a fresh one
    fresh = kind()
    fresh.load_state_dict(normalizer.state_dict())
    assert torch.equal(fresh.encode(x), encoded)
    with pytest.raises(RuntimeError, match="not fitted"):
        kind().encode(x)
    with pytest.raises(ValueError, match="NaN"):
        kind().fit(torch.tensor([[1.0], [float("nan")]]))


def test_relative_h1_weighs_errors_by_their_wavenumber():
    x = torch.arange(64, dtype=torch.float64) / 64
    target = torch.sin(2 * math.pi * x)[None]
    for k in (2, 10):
        prediction = target + 0.01 * torch.sin(2 * math.pi * k * x)[None]
        exact = math.sqrt((1 + (2 * math.pi * k) ** 2) * 1e-4 / (1 + (2 * math.pi) ** 2))
        assert float(relative_h1(prediction, target)) == pytest.approx(exact, rel=1e-12)
        assert float(relative_l2(prediction, target)) == pytest.approx(0.01, rel=1e-12)
    # 2D, with a domain length: a mode at the Nyquist frequency of the last axis counts once
    X, Y = torch.meshgrid(x, x, indexing="ij")
    target = torch.cos(2 * math.pi * (X + 2 * Y))[None]
    error = 0.1 * torch.cos(2 * math.pi * 32 * Y)[None]
    k2_t, k2_e = (2 * math.pi / 2.0) ** 2 * 5, (2 * math.pi / 2.0 * 32) ** 2
    exact = math.sqrt(2 * 0.01 * (1 + k2_e) / (1 + k2_t))  # cos^2 at Nyquist averages 1, not 1/2
    assert float(relative_h1(target + error, target, ndim=2, length=2.0)) == \
        pytest.approx(exact, rel=1e-12)
