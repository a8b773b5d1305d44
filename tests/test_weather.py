"""ERA5 2 m temperature loader (scidl.data.weather) and the baselines quoted with the data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_data_dir

from scidl.data.weather import (
    GRIB_NAME,
    NPZ_NAME,
    evaluate_baselines,
    hour_of_day,
    hour_of_day_climatology,
    load_era5_t2m,
    persistence_forecast,
    weighted_rmse,
)
from scidl.errors import DataError


def _weather_file(name: str) -> Path:
    root = shared_data_dir()
    if root is None:
        pytest.skip("reference data not found: set SCIDL_DATA or place ../shared/data beside "
                    "the repo")
    path = root / "weather" / name
    if not path.is_file():
        pytest.skip(f"{name} is not in {root / 'weather'}")
    return path


@pytest.fixture(scope="module")
def t2m():
    return load_era5_t2m(_weather_file(NPZ_NAME))


def test_loader_shape_dims_attrs(t2m):
    assert t2m.dims == ("time", "latitude", "longitude")
    assert t2m.shape == (744, 33, 49)
    assert t2m.dtype == np.float32
    assert t2m.attrs["units"] == "K" and t2m.attrs["standard_name"] == "air_temperature"
    assert t2m["latitude"].attrs["units"] == "degrees_north"
    assert float(t2m["latitude"][0]) == 58.0 and float(t2m["latitude"][-1]) == 50.0
    assert float(t2m["longitude"][0]) == -10.0 and float(t2m["longitude"][-1]) == 2.0
    assert np.issubdtype(t2m["time"].dtype, np.datetime64)
    assert str(t2m["time"].values[0])[:13] == "2019-03-01T00"
    assert 250 < float(t2m.min()) < float(t2m.max()) < 300


def test_loader_finds_data_through_the_environment(monkeypatch, t2m):
    folder = _weather_file(NPZ_NAME).parent
    monkeypatch.setenv("SCIDL_DATA", str(folder.parent))
    assert load_era5_t2m().shape == t2m.shape
    assert load_era5_t2m(folder).shape == t2m.shape


def test_loader_errors(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="does not exist"):
        load_era5_t2m(tmp_path / "missing.npz")
    with pytest.raises(DataError, match="no era5"):
        load_era5_t2m(tmp_path)
    monkeypatch.delenv("SCIDL_DATA", raising=False)
    with pytest.raises(DataError, match="SCIDL_DATA"):
        load_era5_t2m()


def test_grib_matches_npz_or_names_the_extra(t2m):
    grib = _weather_file(GRIB_NAME)
    if importlib.util.find_spec("cfgrib") is None:
        with pytest.raises(ImportError, match="weather"):
            load_era5_t2m(grib)
        return
    from_grib = load_era5_t2m(grib)
    assert from_grib.dims == t2m.dims and from_grib.shape == t2m.shape
    np.testing.assert_array_equal(from_grib.values, t2m.values)
    assert from_grib.attrs["units"] == "K"


def test_baselines_reproduce_the_readme(t2m):
    scores = evaluate_baselines(t2m)
    assert scores["persistence"][6] == pytest.approx(2.68, abs=0.01)
    assert scores["persistence"][1] == pytest.approx(0.58, abs=0.01)
    assert scores["climatology"] == pytest.approx(1.80, abs=0.01)
    assert scores["previous_day"] == pytest.approx(1.50, abs=0.01)


def test_baseline_helpers():
    times = np.arange("2019-03-01T00", "2019-03-03T00", dtype="datetime64[h]")
    hours = hour_of_day(times)
    assert hours[:3].tolist() == [0, 1, 2] and hours[24] == 0
    values = np.random.default_rng(0).normal(size=(48, 2, 3))
    clim = hour_of_day_climatology(values, hours)
    np.testing.assert_allclose(clim[5], (values[5] + values[29]) / 2)
    np.testing.assert_array_equal(persistence_forecast(values, np.array([30, 31]), 6),
                                  values[[24, 25]])
    lat = np.array([0.0, 60.0])
    # cos weights normalised to mean 1: 4/3 and 2/3
    err = np.zeros((1, 2, 3))
    err[0, 1] = 3.0
    assert weighted_rmse(err, np.zeros_like(err), lat) == pytest.approx(np.sqrt(9 * 2 / 3 / 2))
    with pytest.raises(DataError, match="every hour"):
        hour_of_day_climatology(values[:10], hours[:10])
