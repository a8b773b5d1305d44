"""Real weather data: ERA5 2 m temperature over the UK (March 2019, hourly) and its baselines.

The cube (744 hours x 33 latitudes x 49 longitudes, 0.25 deg, 50-58 N, 10 W - 2 E) is one of
xarray's tutorial datasets (ECMWF / Copernicus licence, attribution required). It ships as the
original GRIB1 file ``era5-2mt-2019-03-uk.grib`` (decoded with cfgrib, the ``weather`` extra:
``pip install scidl[weather]``) and as the decoded ``era5_t2m_uk_2019-03_hourly.npz``;
:func:`load_era5_t2m` reads either into an :class:`xarray.DataArray`.

Baselines (:func:`persistence_forecast`, :func:`hour_of_day_climatology`) and the evaluation
protocol (:func:`evaluate_baselines`: the last 7 days are the test period, every hour of which is
a verification time, scored by latitude-weighted RMSE) reproduce the numbers quoted with the
data: persistence 0.58 K at +1 h and 2.68 K at +6 h, hour-of-day climatology 1.80 K.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from scidl.data.hdf5 import DATA_ENV
from scidl.errors import DataError
from scidl.metrics.forecast import latitude_weights

NPZ_NAME = "era5_t2m_uk_2019-03_hourly.npz"
GRIB_NAME = "era5-2mt-2019-03-uk.grib"
#: hours held out at the end of the month (7 days), as in the data README
TEST_HOURS = 7 * 24

_ATTRS = {
    "standard_name": "air_temperature",
    "long_name": "2 metre temperature",
    "units": "K",
    "source": "ERA5 hourly reanalysis (ECMWF / Copernicus Climate Change Service), via "
              "pydata/xarray-data",
    "grid": "regular lat-lon 0.25 deg",
}


def _xarray():
    try:
        import xarray
    except ImportError as exc:  # pragma: no cover - xarray is a core dependency
        raise ImportError("load_era5_t2m needs xarray: pip install xarray") from exc
    return xarray


def _resolve(path: str | os.PathLike | None) -> Path:
    """The file to read: ``path`` itself (a file), ``path/<npz or grib>`` (a folder), or the
    npz (else the GRIB file) in ``$SCIDL_DATA/weather/``."""
    if path is not None:
        path = Path(path)
        if path.is_file():
            return path
        if path.is_dir():
            for name in (NPZ_NAME, GRIB_NAME):
                if (path / name).is_file():
                    return path / name
            raise DataError(f"no {NPZ_NAME} or {GRIB_NAME} in the folder {str(path)!r}")
        raise DataError(f"weather data file {str(path)!r} does not exist")
    root = os.environ.get(DATA_ENV)
    if not root:
        raise DataError(f"no path given and ${DATA_ENV} is not set; pass the path of "
                        f"{NPZ_NAME} or {GRIB_NAME}, or set ${DATA_ENV} to the data folder")
    for name in (NPZ_NAME, GRIB_NAME):
        candidate = Path(root) / "weather" / name
        if candidate.is_file():
            return candidate
    raise DataError(f"neither {NPZ_NAME} nor {GRIB_NAME} is in ${DATA_ENV}/weather "
                    f"({Path(root) / 'weather'})")


def _from_npz(path: Path):
    xr = _xarray()
    with np.load(path) as z:
        missing = {"t2m", "lat", "lon", "time"} - set(z.files)
        if missing:
            raise DataError(f"{str(path)!r} lacks the arrays {sorted(missing)}")
        values, lat, lon = z["t2m"], z["lat"].astype(np.float64), z["lon"].astype(np.float64)
        time = z["time"].astype("datetime64[ns]")
    if values.shape != (time.size, lat.size, lon.size):
        raise DataError(f"t2m in {str(path)!r} has shape {values.shape}, expected "
                        f"(time, latitude, longitude) = {(time.size, lat.size, lon.size)}")
    return xr.DataArray(values.astype(np.float32), dims=("time", "latitude", "longitude"),
                        coords={"time": time, "latitude": lat, "longitude": lon}, name="t2m")


def _from_grib(path: Path):
    xr = _xarray()
    try:
        import cfgrib  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"reading the GRIB file {str(path)!r} needs cfgrib (and ecCodes): "
                          "pip install 'scidl[weather]', or read the decoded "
                          f"{NPZ_NAME} instead") from exc
    # indexpath="" keeps cfgrib from writing an index file beside (read-only) data
    with xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": ""}) as ds:
        if "t2m" not in ds:
            raise DataError(f"{str(path)!r} has no 2 m temperature (t2m); it has "
                            f"{sorted(ds.data_vars)}")
        array = ds["t2m"].load()
    array = array.drop_vars([c for c in array.coords if c not in array.dims])
    return array.transpose("time", "latitude", "longitude").astype(np.float32)


def load_era5_t2m(path: str | os.PathLike | None = None):
    """ERA5 hourly 2 m temperature over the UK, March 2019, as an ``xarray.DataArray``.

    Args:
        path: the ``.npz`` or ``.grib`` file, a folder holding one, or None for
            ``$SCIDL_DATA/weather/`` (the npz is preferred; the GRIB file needs the ``weather``
            extra, i.e. cfgrib).

    Returns:
        ``t2m`` with dims ``(time, latitude, longitude)`` = ``(744, 33, 49)``, float32 in K,
        latitudes descending from 58 N, longitudes ascending from 10 W, ``time`` as
        ``datetime64[ns]``, and CF-style attributes (``standard_name``, ``long_name``,
        ``units = "K"``, ``source``); coordinates carry ``units`` and ``standard_name`` too.

    Raises:
        DataError: the file or folder is missing, or the file lacks the expected arrays.
        ImportError: a GRIB file without cfgrib installed (names the ``weather`` extra).
    """
    resolved = _resolve(path)
    array = _from_grib(resolved) if resolved.suffix in (".grib", ".grb", ".grib1") else (
        _from_npz(resolved))
    array.name = "t2m"
    array.attrs = {**_ATTRS, "file": resolved.name}
    array["latitude"].attrs.update(units="degrees_north", standard_name="latitude")
    array["longitude"].attrs.update(units="degrees_east", standard_name="longitude")
    array["time"].attrs.update(standard_name="time")
    return array


# ---- baselines and the evaluation protocol -----------------------------------------------------

def hour_of_day(times) -> np.ndarray:
    """Hour of day (0-23, UTC) of ``datetime64`` times ``[T]``."""
    times = np.asarray(times).astype("datetime64[h]")
    return (times - times.astype("datetime64[D]")).astype(int)


def hour_of_day_climatology(values: np.ndarray, hours: np.ndarray) -> np.ndarray:
    """Mean field of each hour of day: ``values [T, *S]``, ``hours [T]`` -> ``[24, *S]``
    (float64). Every hour must occur at least once."""
    values = np.asarray(values, dtype=np.float64)
    clim = np.stack([values[hours == h].mean(axis=0) if (hours == h).any() else
                     np.full(values.shape[1:], np.nan) for h in range(24)])
    if np.isnan(clim).any():
        raise DataError("hour_of_day_climatology needs every hour of day in the training data")
    return clim


def persistence_forecast(values: np.ndarray, targets: np.ndarray, lead: int) -> np.ndarray:
    """Persistence: the forecast for hour ``t`` at lead ``lead`` is the field at ``t - lead``;
    ``values [T, *S]``, ``targets`` indices ``[K]`` (all ``>= lead``) -> ``[K, *S]``."""
    targets = np.asarray(targets)
    if (targets < lead).any():
        raise ValueError(f"persistence at lead {lead} needs targets >= {lead}")
    return np.asarray(values)[targets - lead]


def weighted_rmse(forecast: np.ndarray, truth: np.ndarray, lat: np.ndarray) -> float:
    """Latitude-weighted RMSE over all times and grid points (WeatherBench convention:
    weights ``cos(lat)`` normalised to mean 1, mean before the square root); ``[K, lat, lon]``."""
    weights = latitude_weights(torch.tensor(np.array(lat, dtype=np.float64)))
    err = torch.as_tensor(np.asarray(forecast, dtype=np.float64) - np.asarray(truth))
    return float(((err**2) * weights[:, None]).mean().sqrt())


def split_indices(n_times: int, test_hours: int = TEST_HOURS) -> tuple[np.ndarray, np.ndarray]:
    """Training hours ``[0, T - test_hours)`` and test (verification) hours ``[T - test_hours,
    T)``. A forecast for a test hour may start from the hours before it, as in operations."""
    if not 0 < test_hours < n_times:
        raise ValueError(f"test_hours must be in (0, {n_times}), got {test_hours}")
    return np.arange(n_times - test_hours), np.arange(n_times - test_hours, n_times)


def evaluate_baselines(array, leads: Sequence[int] = (1, 6, 12, 24),
                       test_hours: int = TEST_HOURS) -> dict:
    """Latitude-weighted RMSE (K) of persistence at each lead, of the hour-of-day climatology of
    the training period, and of "same hour yesterday", over the ``test_hours`` last hours of
    ``array`` (a DataArray from :func:`load_era5_t2m`)."""
    values = np.asarray(array.values, dtype=np.float64)
    lat = np.asarray(array["latitude"].values)
    hours = hour_of_day(array["time"].values)
    train_idx, test_idx = split_indices(values.shape[0], test_hours)
    clim = hour_of_day_climatology(values[train_idx], hours[train_idx])
    truth = values[test_idx]
    return {
        "persistence": {int(k): weighted_rmse(persistence_forecast(values, test_idx, k), truth,
                                              lat) for k in leads},
        "climatology": weighted_rmse(clim[hours[test_idx]], truth, lat),
        "previous_day": weighted_rmse(persistence_forecast(values, test_idx, 24), truth, lat),
    }


__all__ = [
    "GRIB_NAME",
    "NPZ_NAME",
    "TEST_HOURS",
    "evaluate_baselines",
    "hour_of_day",
    "hour_of_day_climatology",
    "load_era5_t2m",
    "persistence_forecast",
    "split_indices",
    "weighted_rmse",
]
