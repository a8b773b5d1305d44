"""A test kit for E(3) and permutation symmetry of functions on point clouds.

:func:`check_equivariance` calls ``fn(**inputs)`` once on the original inputs and once on
transformed inputs, transforms the original outputs the way their declared type says they should
transform, and records the worst disagreement. Each transform in ``group`` is tested on its own
so that a failure names the symmetry that is broken.

Input types (``input_types``), with ``Q`` orthogonal ``[3, 3]``, ``t`` a translation ``[3]`` and
``P`` a node permutation (row vectors: ``x -> x Q^T + t``):

========================  =========  =========  ===========  ====================================
type                      rotation   reflection translation  permutation
========================  =========  =========  ===========  ====================================
``"position"`` [N, 3]     ``x Q^T``  ``x Q^T``  ``x + t``    rows permuted
``"vector"`` [N, 3]       ``v Q^T``  ``v Q^T``  unchanged    rows permuted (velocities, forces)
``"node"`` [N, ...]       unchanged  unchanged  unchanged    rows permuted (features, batch)
``"edge_index"`` [2, E]   unchanged  unchanged  unchanged    node labels renamed, edge order kept
``"fixed"``               unchanged  unchanged  unchanged    unchanged (edge attributes, box, ...)
========================  =========  =========  ===========  ====================================

Output types (``outputs``): ``"position"``, ``"vector"`` and ``"node"`` as above (positions are
translation-covariant, vectors translation-invariant, node scalars invariant), plus
``"invariant"`` (global scalars such as an energy per graph: unchanged by everything) and
``"global_vector"`` ([G, 3], e.g. a dipole: rotated, not translated, not permuted).

Example::

    report = check_equivariance(
        lambda h, pos, edge_index: model(h, pos, edge_index),
        {"h": h, "pos": pos, "edge_index": edge_index},
        input_types={"h": "node", "pos": "position", "edge_index": "edge_index"},
        outputs={0: "node", 1: "position"},
    )
    assert report.passed(1e-5), report
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from scidl.errors import ShapeError

INPUT_TYPES = ("position", "vector", "node", "edge_index", "fixed")
OUTPUT_TYPES = ("position", "vector", "node", "invariant", "global_vector")
TRANSFORMS = ("rotation", "reflection", "translation", "permutation")


def random_rotation(generator: torch.Generator) -> torch.Tensor:
    """Haar-random proper rotation ``[3, 3]`` (det +1, float64) from the QR factorisation of a
    Gaussian matrix with the signs of ``R``'s diagonal fixed (Mezzadri 2007)."""
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def random_reflection(generator: torch.Generator) -> torch.Tensor:
    """Random improper orthogonal matrix ``[3, 3]`` (det -1): a rotation times a mirror."""
    return random_rotation(generator) @ torch.diag(torch.tensor([1.0, 1.0, -1.0],
                                                                 dtype=torch.float64))


@dataclass(frozen=True)
class _Transform:
    matrix: torch.Tensor | None = None  # Q, float64
    shift: torch.Tensor | None = None  # t, float64
    perm: torch.Tensor | None = None  # new node n is old node perm[n]

    def apply(self, value, kind: str):
        if not isinstance(value, torch.Tensor) or kind == "fixed" or kind == "invariant":
            return value
        if kind == "edge_index":
            if self.perm is None:
                return value
            inverse = torch.argsort(self.perm.to(value.device))
            return inverse[value]
        out = value
        if kind in ("position", "vector", "global_vector") and self.matrix is not None:
            out = out @ self.matrix.to(out).T
        if kind == "position" and self.shift is not None:
            out = out + self.shift.to(out)
        if kind in ("position", "vector", "node") and self.perm is not None:
            out = out[self.perm.to(out.device)]
        return out


@dataclass(frozen=True)
class EquivarianceReport:
    """Worst errors over all trials, keyed by ``(transform, output)``.

    ``abs_errors`` hold ``max |fn(g x) - g fn(x)|``; ``rel_errors`` divide that by
    ``max |fn(x)|`` of the output (guarded against zero).
    """

    abs_errors: dict[tuple[str, str], float] = field(default_factory=dict)
    rel_errors: dict[tuple[str, str], float] = field(default_factory=dict)

    def failures(self, tol: float, relative: bool = False) -> list[tuple[str, str]]:
        """The ``(transform, output)`` pairs whose worst error exceeds ``tol``."""
        errors = self.rel_errors if relative else self.abs_errors
        return [key for key, err in errors.items() if not err <= tol]  # NaN fails

    def passed(self, tol: float, relative: bool = False) -> bool:
        """Whether every worst (absolute, or relative) error is at most ``tol``."""
        return not self.failures(tol, relative)

    def worst(self, relative: bool = False) -> float:
        """The largest error of the report."""
        errors = self.rel_errors if relative else self.abs_errors
        return max(errors.values(), default=0.0)

    def __str__(self) -> str:
        lines = [f"{'transform':<12} {'output':<16} {'abs error':>10} {'rel error':>10}"]
        for (transform, output), err in self.abs_errors.items():
            rel = self.rel_errors[(transform, output)]
            lines.append(f"{transform:<12} {output:<16} {err:>10.3e} {rel:>10.3e}")
        return "\n".join(lines)


def _num_nodes(inputs: Mapping[str, object], input_types: Mapping[str, str]) -> int | None:
    sizes = {inputs[name].shape[0] for name, kind in input_types.items()
             if kind in ("position", "vector", "node")}
    if len(sizes) > 1:
        raise ShapeError(f"node-wise inputs (position, vector, node) disagree on the number of "
                         f"nodes: {sorted(sizes)}")
    return sizes.pop() if sizes else None


def _select(result, key):
    if isinstance(result, torch.Tensor):
        if key is not None:
            raise ValueError("fn returned a single tensor: declare outputs as one type string")
        return result
    return result[key]


def _sample(transform: str, generator: torch.Generator, num_nodes: int | None,
            translation_scale: float) -> _Transform:
    if transform == "rotation":
        return _Transform(matrix=random_rotation(generator))
    if transform == "reflection":
        return _Transform(matrix=random_reflection(generator))
    if transform == "translation":
        return _Transform(shift=translation_scale * torch.randn(3, generator=generator,
                                                                dtype=torch.float64))
    if num_nodes is None:
        raise ValueError("a permutation check needs a position, vector or node input")
    return _Transform(perm=torch.randperm(num_nodes, generator=generator))


def check_equivariance(
    fn: Callable[..., object],
    inputs: Mapping[str, object],
    *,
    input_types: Mapping[str, str],
    outputs: str | Mapping[object, str] | Sequence[str],
    group: Sequence[str] = TRANSFORMS,
    trials: int = 5,
    seed: int = 0,
    translation_scale: float = 1.0,
) -> EquivarianceReport:
    """Measure how far ``fn`` is from the symmetries in ``group``.

    Args:
        fn: called as ``fn(**inputs)``; returns a tensor, a tuple/list or a dict of tensors.
        inputs: keyword arguments of ``fn``.
        input_types: the type of every input (see the module docstring); all must be declared.
        outputs: the type of the output — one string for a single tensor; a sequence of types
            (``None`` to skip an entry) for a tuple; or a mapping from tuple index / dict key
            to type.
        group: any of ``"rotation", "reflection", "translation", "permutation"``.
        trials: random transforms drawn per group element.
        seed: seed of the CPU generator that draws the transforms (reproducible reports).
        translation_scale: standard deviation of the random translation, in position units.

    Returns:
        :class:`EquivarianceReport` with the worst error per ``(transform, output name)``;
        output names are ``str(key)``.
    """
    unknown = [t for t in group if t not in TRANSFORMS]
    if unknown:
        raise ValueError(f"group entries must be in {TRANSFORMS}, got {unknown}")
    missing = sorted(set(inputs) - set(input_types))
    if missing:
        raise ValueError(f"input_types must declare every input; missing {missing}")
    bad = {n: k for n, k in input_types.items() if k not in INPUT_TYPES}
    if bad:
        raise ValueError(f"input types must be in {INPUT_TYPES}, got {bad}")
    if isinstance(outputs, str):
        spec: dict[object, str] = {None: outputs}
    elif isinstance(outputs, Mapping):
        spec = dict(outputs)
    else:
        spec = {i: kind for i, kind in enumerate(outputs) if kind is not None}
    bad = {k: v for k, v in spec.items() if v not in OUTPUT_TYPES}
    if bad:
        raise ValueError(f"output types must be in {OUTPUT_TYPES}, got {bad}")

    num_nodes = _num_nodes(inputs, input_types)
    generator = torch.Generator().manual_seed(seed)
    reference = fn(**inputs)
    abs_errors: dict[tuple[str, str], float] = {}
    rel_errors: dict[tuple[str, str], float] = {}
    for transform in group:
        for _ in range(trials):
            g = _sample(transform, generator, num_nodes, translation_scale)
            moved = fn(**{n: g.apply(v, input_types[n]) for n, v in inputs.items()})
            for key, kind in spec.items():
                expected = g.apply(_select(reference, key), kind).detach()
                got = _select(moved, key).detach()
                if got.shape != expected.shape:
                    raise ShapeError(f"output {key!r} changed shape under {transform}: "
                                     f"{tuple(expected.shape)} -> {tuple(got.shape)}")
                err = float((got - expected).abs().max()) if got.numel() else 0.0
                scale = float(expected.abs().max()) if expected.numel() else 0.0
                name = (transform, "output" if key is None else str(key))
                abs_errors[name] = max(abs_errors.get(name, 0.0), err)
                rel_errors[name] = max(rel_errors.get(name, 0.0),
                                       err / max(scale, torch.finfo(torch.float64).tiny))
    return EquivarianceReport(abs_errors, rel_errors)
