"""Chunked, resumable writing of generated datasets to HDF5."""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from scidl.data.hdf5 import checksum, encode_attribute

Progress = Callable[[int], None]
#: produce(chunk, start, size) -> one {array name: values [size, ...]} per file
Producer = Callable[[int, int, int], list[dict[str, np.ndarray]]]


@dataclass
class FileLayout:
    """One output file: its metadata, the per-sample arrays (full shapes) and fixed arrays."""

    path: Path
    attrs: dict  # must hold a JSON-able "recipe": a partial file is resumed only if it matches
    per_sample: dict[str, tuple[int, ...]]
    fixed: dict[str, np.ndarray]


def chunks(n: int, chunk_size: int):
    """``(chunk, start, size)`` for ``n`` samples in chunks of ``chunk_size``."""
    for chunk in range(math.ceil(n / chunk_size)):
        start = chunk * chunk_size
        yield chunk, start, min(chunk_size, n - start)


def write_chunked(layouts: list[FileLayout], n: int, chunk_size: int, produce: Producer, *,
                  resume: bool = True, progress: Progress | None = None) -> list[Path]:
    """Fill the files of ``layouts`` chunk by chunk and publish them when complete.

    Every chunk goes to ``PATH.partial`` and is flushed at once, with the count of finished
    samples in the attribute ``completed``; a later call with the same recipe continues after
    it. At the end a SHA-256 checksum of all arrays is stored and each file is renamed into place.
    """
    files = [_open_partial(layout, n, chunk_size, resume) for layout in layouts]
    try:
        done = min(int(f.attrs["completed"]) for f in files)
        for chunk, start, size in chunks(n, chunk_size):
            if start + size <= done:
                continue
            for f, arrays in zip(files, produce(chunk, start, size), strict=True):
                for name, values in arrays.items():
                    f[name][start : start + size] = values
                f.attrs["completed"] = start + size
                f.flush()
            if progress is not None:
                progress(start + size)
        for f in files:
            f.attrs["checksum_sha256"] = checksum(f)
            f.attrs["created"] = now()
            del f.attrs["completed"]
    finally:
        for f in files:
            f.close()
    for layout in layouts:
        os.replace(partial_path(layout.path), layout.path)
    return [layout.path for layout in layouts]


def partial_path(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _open_partial(layout: FileLayout, n: int, chunk_size: int, resume: bool) -> h5py.File:
    partial = partial_path(layout.path)
    if resume and partial.exists():
        f = h5py.File(partial, "a")
        stored = f.attrs.get("recipe")
        shapes_match = all(name in f and f[name].shape == shape
                           for name, shape in layout.per_sample.items())
        if stored is not None and json.loads(stored) == layout.attrs["recipe"] and shapes_match:
            return f
        f.close()
    layout.path.parent.mkdir(parents=True, exist_ok=True)
    f = h5py.File(partial, "w")
    for name, shape in layout.per_sample.items():
        f.create_dataset(name, shape=shape, dtype="float32",
                         chunks=(min(chunk_size, n), *shape[1:]))
    for name, values in layout.fixed.items():
        f.create_dataset(name, data=values)
    for key, value in layout.attrs.items():
        f.attrs[key] = encode_attribute(value)
    f.attrs["completed"] = 0
    return f
