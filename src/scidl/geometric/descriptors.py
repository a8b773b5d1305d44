"""Molecule-level RDKit 2D descriptors and a normaliser fitted on the training split.

A graph network sees atoms and bonds; whole-molecule quantities such as Crippen logP, molar
refractivity, topological polar surface area or ring counts are cheap to compute and carry much
of what decides a physical property like aqueous solubility. chemprop feeds them to its head as
``rdkit_2d_normalized`` features (descriptastorus: RDKit descriptors mapped through cumulative
distribution functions fitted on a large reference set). Here the same idea is built on RDKit
alone:

* :func:`molecule_descriptors` -- RDKit's :data:`rdkit.Chem.Descriptors._descList` (about 200
  descriptors: counts, fragment counts, Crippen logP/MR, TPSA, Labute ASA, E-state, BCUT, charge
  statistics, ...) evaluated for each SMILES, as a float64 array ``[n, D]``; a descriptor RDKit
  cannot evaluate (or evaluates to inf, or to a value beyond ``1e10``) is NaN.
* :class:`DescriptorNormaliser` -- fitted on the TRAINING rows only, then applied to every split:
  ``"cdf"`` (default, like chemprop) maps each column through the training split's empirical
  CDF (mid-ranks of tied values, linear interpolation between distinct training values, clamped
  outside their range), so training values land in ``[0, 1]`` and so do all others;
  ``"standard"`` subtracts the training mean, divides by the training std and clips to
  ``[-clip, clip]``. Missing values are replaced by the training median before the map;
  columns constant (or all missing) on the training rows map to 0.

Typical use with :class:`scidl.geometric.mpnn.MPNN`::

    desc = molecule_descriptors(smiles)                       # once, [n, D]
    norm = DescriptorNormaliser().fit(desc[train])            # training rows only
    extra = torch.as_tensor(norm.transform(desc))             # [n, D] float32
    model = MPNN(ATOM_DIM, BOND_DIM, extra_features=extra.shape[1])
    model(b.x, b.edge_index, b.edge_attr, b.batch, b.num_graphs, extra=extra[idx])

RDKit is imported lazily; without it the functions raise :class:`ImportError` naming the
``chem`` extra (``pip install scidl[chem]``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scidl._optional import require

#: Values whose magnitude exceeds this are treated as missing (RDKit's ``Ipc`` overflows).
MAX_ABS = 1e10
NORMALISERS = ("cdf", "standard")


def _descriptor_list():
    rdkit = require("rdkit", "chem", "scidl.geometric.descriptors")
    descriptors = require("rdkit.Chem.Descriptors", "chem", "scidl.geometric.descriptors")
    rdkit.RDLogger.DisableLog("rdApp.*")
    return list(descriptors._descList)


def descriptor_names() -> tuple[str, ...]:
    """Names of the columns :func:`molecule_descriptors` returns, in order."""
    return tuple(name for name, _ in _descriptor_list())


def molecule_descriptors(smiles: Sequence[str] | str,
                         names: Sequence[str] | None = None) -> np.ndarray:
    """RDKit 2D descriptors of each molecule, ``float64 [len(smiles), D]``.

    Args:
        smiles: SMILES strings (a single string gives one row).
        names: a subset of :func:`descriptor_names` (default: all of them, in that order).

    Failed or non-finite descriptor values (and values beyond :data:`MAX_ABS`) are NaN; fit a
    :class:`DescriptorNormaliser` to fill them. Deterministic: the same SMILES give the same row.

    Raises:
        ImportError: RDKit is not installed.
        ValueError: a SMILES cannot be parsed, or ``names`` holds an unknown descriptor.
    """
    table = dict(_descriptor_list())  # raises the ImportError naming the extra first
    from rdkit import Chem

    if names is None:
        names = list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(f"unknown RDKit descriptors {unknown}; see descriptor_names()")
    funcs = [table[n] for n in names]
    if isinstance(smiles, str):
        smiles = [smiles]
    out = np.full((len(smiles), len(funcs)), np.nan)
    for i, smi in enumerate(smiles):
        mol = Chem.MolFromSmiles(smi.strip()) if isinstance(smi, str) else None
        if mol is None:
            raise ValueError(f"could not parse SMILES {smi!r} with RDKit")
        for j, fn in enumerate(funcs):
            try:
                value = float(fn(mol))
            except Exception:  # noqa: BLE001 - RDKit raises assorted errors on odd molecules
                continue
            if np.isfinite(value) and abs(value) <= MAX_ABS:
                out[i, j] = value
    return out


class DescriptorNormaliser:
    """Column-wise map of descriptors to a well-scaled range, fitted on training rows only.

    Args:
        method: ``"cdf"`` (empirical CDF of the training values, outputs in ``[0, 1]``) or
            ``"standard"`` (training mean 0, std 1, clipped to ``[-clip, clip]``).
        clip: the clipping bound of ``"standard"``.

    Attributes (after :meth:`fit`): ``median_`` (fill value of missing entries), ``mean_``,
    ``std_``, ``constant_`` (columns constant on the training rows, mapped to 0), and for
    ``"cdf"`` the per-column knots ``knots_`` (distinct training values) and ``levels_`` (their
    CDF values).
    """

    def __init__(self, method: str = "cdf", clip: float = 5.0):
        if method not in NORMALISERS:
            raise ValueError(f"method must be one of {NORMALISERS}, got {method!r}")
        self.method, self.clip = method, float(clip)
        self.median_: np.ndarray | None = None

    def fit(self, train: np.ndarray) -> DescriptorNormaliser:
        """Fit on the training rows ``[n_train, D]`` (NaN allowed); returns ``self``."""
        x = np.asarray(train, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 1:
            raise ValueError(f"fit needs a 2-D array with at least one row, got {x.shape}")
        with np.errstate(all="ignore"):
            med = np.nanmedian(np.where(np.isfinite(x), x, np.nan), axis=0) \
                if np.isfinite(x).any() else np.zeros(x.shape[1])
        self.median_ = np.nan_to_num(med, nan=0.0)
        filled = self._fill(x)
        self.mean_ = filled.mean(0)
        self.std_ = filled.std(0)
        self.constant_ = (filled.max(0) - filled.min(0)) <= 1e-12 * (1 + np.abs(self.mean_))
        self.knots_, self.levels_ = [], []
        if self.method == "cdf":
            n = filled.shape[0]
            for col in filled.T:
                values, inverse, counts = np.unique(col, return_inverse=True,
                                                    return_counts=True)
                del inverse
                start = np.cumsum(counts) - counts  # 0-based rank of the first tie
                mid = start + (counts - 1) / 2.0  # mean 0-based rank of the ties
                self.knots_.append(values)
                self.levels_.append(mid / max(n - 1, 1))
        return self

    def _fill(self, x: np.ndarray) -> np.ndarray:
        bad = ~np.isfinite(x) | (np.abs(np.nan_to_num(x)) > MAX_ABS)
        return np.where(bad, self.median_[None, :], x)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Map rows ``[n, D]`` with the fitted statistics; returns float32 ``[n, D]``."""
        if self.median_ is None:
            raise RuntimeError("DescriptorNormaliser.transform called before fit")
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.median_.shape[0]:
            raise ValueError(f"expected [n, {self.median_.shape[0]}] descriptors, got {x.shape}")
        filled = self._fill(x)
        if self.method == "cdf":
            out = np.empty_like(filled)
            for j, (knots, levels) in enumerate(zip(self.knots_, self.levels_)):
                out[:, j] = np.interp(filled[:, j], knots, levels)
        else:
            std = np.where(self.std_ > 0, self.std_, 1.0)
            out = np.clip((filled - self.mean_) / std, -self.clip, self.clip)
        out[:, self.constant_] = 0.0
        return out.astype(np.float32)

    def fit_transform(self, train: np.ndarray) -> np.ndarray:
        """:meth:`fit` on ``train`` and return its transform."""
        return self.fit(train).transform(train)
