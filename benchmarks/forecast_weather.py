"""A learned 2 m temperature forecaster on real ERA5 data against persistence and climatology.

Data: ERA5 hourly 2 m temperature over the UK, March 2019 (744 h x 33 x 49, 0.25 deg;
``scidl.data.weather.load_era5_t2m``, from ``$SCIDL_DATA/weather`` or ``--data``). Protocol of
the data README: the last 7 days (168 h) are the test period and every test hour is a
verification time; forecasts may start from earlier hours. Scores: latitude-weighted RMSE (K)
and ACC (anomalies w.r.t. the hour-of-day climatology of the training period) per lead, via
``scidl.metrics.forecast``.

Baselines: persistence (the field ``lead`` hours earlier) and the hour-of-day climatology of the
training period (the first 24 days).

Learned model (direct multi-lead, not autoregressive): one 2D U-Net (``scidl.models.UNet``,
width 8, 3 levels; the 33 x 49 field is edge-padded to 40 x 56 and cropped back) for all leads,
the lead given as an input channel; trained on the leads 1, 3, 6, ..., 24 h, evaluated at 6, 12
and 24 h. Inputs (standardised): the anomalies
``T - clim`` at the start time ``t`` and at ``t - 1, t - 3, t - 6`` h, at the valid time's hour
of the previous day (``t + lead - 24``) and averaged over the last 24 h, the climatology at
the valid time ``t + lead`` and its change from ``t``, sin/cos of the hour of day at ``t`` and at
``t + lead``, the lead / 24, and latitude / longitude channels. Output: the standardised
correction of a base forecast, so the forecast is ``clim(t + lead) + base + sigma * output``
(an untrained, zero-output model is the base). The default base (``--base previous_day``) is the
anomaly at the same hour of the previous day, ``T(t + lead - 24) - clim``, available at every
lead up to 24 h; ``--base climatology`` (zero anomaly) and ``--base linear`` (least squares on
the training weeks) are the alternatives compared in BENCHMARKS.md. Trained with
``scidl.train.train`` and the generic ``scidl.train.FieldRegression`` objective (MSE, batch 32,
Adam with cosine decay) on every start time of the training period whose valid time is in the
training period too.

Why direct and not autoregressive: with 24 days of data, errors of a 6 h step compound over the
4 steps to 24 h faster than a direct model loses skill; a direct model also sees the true history
channels at every lead.

Probabilistic version: a deep ensemble of 5 such models (different initialisation and
shuffling seeds); reported: the ensemble-mean RMSE, CRPS (fair, ``crps_by_lead``) and the
spread-skill ratio (``spread_skill_by_lead``) per lead.

Usage: python benchmarks/forecast_weather.py [--quick] [--data PATH] [--members M]
       [--steps S] [--out FILE]
Writes benchmarks/results/forecast_weather.json (--quick: *_quick.json).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from _results import machine_info, utc_now, write_result
from torch import nn

from scidl.data.weather import (
    TEST_HOURS,
    evaluate_baselines,
    hour_of_day,
    hour_of_day_climatology,
    load_era5_t2m,
    split_indices,
)
from scidl.metrics.forecast import (
    acc_by_lead,
    crps_by_lead,
    latitude_weights,
    rmse_by_lead,
    spread_skill_by_lead,
)
from scidl.models import UNet, count_parameters
from scidl.train import FieldRegression, Stage, TrainOptions, train

HERE = Path(__file__).resolve().parent
LEADS = (6, 12, 24)  # evaluated
TRAIN_LEADS = (1, 3, 6, 9, 12, 15, 18, 21, 24)  # trained on (more pairs, a smoother lead input)
HISTORY = (0, 1, 3, 6)  # anomalies at t - h for these h
FIRST_START = 24  # the earliest start time with the full history (t - 24 + lead >= 0)


class PaddedUNet(nn.Module):
    """A U-Net on a non-periodic lat-lon patch: edge-pad to a multiple of 2^levels, crop back."""

    def __init__(self, in_channels: int, shape: tuple[int, int], width: int = 16,
                 levels: int = 3):
        super().__init__()
        factor = 2**levels
        self.shape = shape
        padded = [-(-(n + 4) // factor) * factor for n in shape]  # >= 2 points of margin
        self.pads = [(p - n) // 2 for p, n in zip(padded, shape)]
        self.extra = [p - n - (p - n) // 2 for p, n in zip(padded, shape)]
        self.net = UNet(ndim=2, in_channels=in_channels, out_channels=1, width=width,
                        levels=levels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = [self.pads[1], self.extra[1], self.pads[0], self.extra[0]]
        y = self.net(nn.functional.pad(x, spec, mode="replicate"))
        return y[..., self.pads[0]:self.pads[0] + self.shape[0],
                 self.pads[1]:self.pads[1] + self.shape[1]]


class Features:
    """Builds the standardised input channels and targets from the cube (float64 numpy)."""

    def __init__(self, values: np.ndarray, hours: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                 train_idx: np.ndarray):
        self.values, self.hours = values, hours
        self.clim = hour_of_day_climatology(values[train_idx], hours[train_idx])  # [24, *S]
        self.anomaly = values - self.clim[hours]
        self.sigma = float(self.anomaly[train_idx].std())
        cumulative = np.concatenate([np.zeros((1, *values.shape[1:])),
                                     np.cumsum(self.anomaly, axis=0)])
        self.daily = np.full_like(self.anomaly, np.nan)  # mean over t - 23 .. t
        self.daily[23:] = (cumulative[24:] - cumulative[:-24]) / 24
        self.clim_mean, self.clim_std = float(self.clim.mean()), float(self.clim.std())
        shape = values.shape[1:]
        lat_n = (lat - lat.mean()) / lat.std()
        lon_n = (lon - lon.mean()) / lon.std()
        self.coords = np.stack([np.broadcast_to(lat_n[:, None], shape),
                                np.broadcast_to(lon_n[None, :], shape)])

    def clim_at(self, index: np.ndarray) -> np.ndarray:
        """Climatology at absolute hour indices (also beyond the record: hour of day only)."""
        return self.clim[(self.hours[0] + index) % 24]

    def inputs(self, start: np.ndarray, lead: int) -> torch.Tensor:
        shape = self.values.shape[1:]
        channels = [self.anomaly[start - h] / self.sigma for h in HISTORY]
        # the valid time's hour of the previous day ("same hour yesterday", a strong baseline)
        channels.append(self.anomaly[start + lead - 24] / self.sigma)
        # the anomaly averaged over the last day (the slow, synoptic part of the anomaly)
        channels.append(self.daily[start] / self.sigma)
        valid_clim = self.clim_at(start + lead)
        channels.append((valid_clim - self.clim_mean) / self.clim_std)
        channels.append((valid_clim - self.clim_at(start)) / self.sigma)
        for hour in (self.hours[0] + start, self.hours[0] + start + lead):
            phase = 2 * np.pi * (hour % 24) / 24
            for f in (np.sin, np.cos):
                channels.append(np.broadcast_to(f(phase)[:, None, None], (len(start), *shape)))
        channels.append(np.full((len(start), *shape), lead / 24.0))
        channels += [np.broadcast_to(c, (len(start), *shape)) for c in self.coords]
        return torch.tensor(np.stack(channels, axis=1), dtype=torch.float32)

    def predictors(self, start: np.ndarray, lead: int) -> np.ndarray:
        """The base's predictors ``[P, K, *S]``: the anomaly at ``t``, at the valid time's hour
        of the previous day and averaged over the last day."""
        return np.stack([self.anomaly[start], self.anomaly[start + lead - 24],
                         self.daily[start]])

    def fit_base(self, starts: dict[int, np.ndarray], kind: str) -> None:
        """Fit the base anomaly forecast of each lead on the training pairs: ``climatology``
        (zero anomaly), ``previous_day`` (the anomaly at the same hour yesterday) or ``linear``
        (least squares on the three predictors, one weight vector per lead: damped
        persistence)."""
        self.base_kind, self.base_weights = kind, {}
        for lead, start in starts.items():
            if kind == "climatology":
                w = np.zeros(3)
            elif kind == "previous_day":
                w = np.array([0.0, 1.0, 0.0])
            else:
                a = self.predictors(start, lead).reshape(3, -1).T
                b = self.anomaly[start + lead].reshape(-1)
                w = np.linalg.lstsq(a, b, rcond=None)[0]
            self.base_weights[lead] = w

    def base(self, start: np.ndarray, lead: int) -> np.ndarray:
        """The base anomaly forecast ``[K, *S]`` (K), interpolating weights between the
        trained leads."""
        leads = np.array(sorted(self.base_weights))
        table = np.stack([self.base_weights[k] for k in leads])
        w = np.array([np.interp(lead, leads, table[:, i]) for i in range(3)])
        return np.tensordot(w, self.predictors(start, lead), axes=1)

    def targets(self, start: np.ndarray, lead: int) -> torch.Tensor:
        """The standardised anomaly at ``start + lead`` left over by the base."""
        residual = self.anomaly[start + lead] - self.base(start, lead)
        return torch.tensor(residual[:, None] / self.sigma, dtype=torch.float32)

    def forecast(self, output: torch.Tensor, start: np.ndarray, lead: int) -> np.ndarray:
        """Model output ``[K, 1, *S]`` -> temperature (K) ``[K, *S]`` at ``start + lead``."""
        return (self.clim_at(start + lead) + self.base(start, lead)
                + self.sigma * output[:, 0].double().numpy())


def train_member(features: Features, x: torch.Tensor, y: torch.Tensor, seed: int, steps: int,
                 shape: tuple[int, int], width: int) -> nn.Module:
    torch.manual_seed(seed)
    model = PaddedUNet(x.shape[1], shape, width=width)
    objective = FieldRegression(x, y, batch_size=32, loss="mse", seed=seed)
    train(model, objective, [Stage(optimizer="adamw", steps=steps, lr=2e-3, schedule="cosine",
                                   weight_decay=1e-2)],
          seed=seed, options=TrainOptions(name=f"t2m-unet-{seed}", log_every=100,
                                          progress=False))
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data", default=None, help="npz/grib file or folder")
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--steps", type=int, default=None, help="default 400 (quick: 100)")
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--base", choices=("linear", "previous_day", "climatology"),
                        default="previous_day",
                        help="the forecast the U-Net corrects (see Features.fit_base)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    members = 2 if args.quick else args.members
    steps = args.steps or (100 if args.quick else 400)

    array = load_era5_t2m(args.data)
    values = np.asarray(array.values, dtype=np.float64)
    lat = np.asarray(array["latitude"].values, dtype=np.float64)
    lon = np.asarray(array["longitude"].values, dtype=np.float64)
    hours = hour_of_day(array["time"].values)
    train_idx, test_idx = split_indices(values.shape[0], TEST_HOURS)
    features = Features(values, hours, lat, lon, train_idx)
    shape = values.shape[1:]
    weights = latitude_weights(torch.tensor(lat))[:, None]
    baselines = evaluate_baselines(array, leads=(1,) + LEADS)

    # training pairs: start and valid time inside the training period, full history available
    starts = {lead: np.arange(FIRST_START, len(train_idx) - lead) for lead in TRAIN_LEADS}
    features.fit_base(starts, args.base)
    xs, ys = [], []
    for lead, start in starts.items():
        xs.append(features.inputs(start, lead))
        ys.append(features.targets(start, lead))
    x, y = torch.cat(xs), torch.cat(ys)
    print(f"training pairs {tuple(x.shape)}; sigma {features.sigma:.3f} K")

    started = time.perf_counter()
    models = [train_member(features, x, y, seed, steps, shape, args.width)
              for seed in range(members)]
    train_seconds = time.perf_counter() - started
    print(f"trained {members} members in {train_seconds:.0f} s")

    truth_all = torch.tensor(values[test_idx])
    result_leads = {}
    for lead in LEADS:
        start = test_idx - lead
        with torch.no_grad():
            inputs = features.inputs(start, lead)
            outputs = [m(inputs) for m in models]
        ens = torch.tensor(np.stack([features.forecast(o, start, lead) for o in outputs]))
        ens = ens[:, :, None]  # [M, N = test hours, T = 1, lat, lon]
        truth = truth_all[:, None]
        clim = torch.tensor(features.clim_at(test_idx))[:, None]
        persistence = torch.tensor(values[start])[:, None]
        mean = ens.mean(0)
        single = ens[0]
        base = torch.tensor(features.clim_at(start + lead) + features.base(start, lead))[:, None]
        score = {
            "persistence": {"rmse": float(rmse_by_lead(persistence, truth, weights)[0]),
                            "acc": float(acc_by_lead(persistence, truth, clim, weights)[0])},
            "climatology": {"rmse": float(rmse_by_lead(clim, truth, weights)[0])},
            "base": {"kind": args.base, "weights": features.base_weights.get(lead, np.zeros(3))
                     .tolist(), "rmse": float(rmse_by_lead(base, truth, weights)[0]),
                     "acc": float(acc_by_lead(base, truth, clim, weights)[0])},
            "unet_single": {"rmse": float(rmse_by_lead(single, truth, weights)[0]),
                            "acc": float(acc_by_lead(single, truth, clim, weights)[0])},
            "unet_members_rmse": [float(rmse_by_lead(e, truth, weights)[0]) for e in ens],
            "unet_ensemble_mean": {"rmse": float(rmse_by_lead(mean, truth, weights)[0]),
                                   "acc": float(acc_by_lead(mean, truth, clim, weights)[0])},
        }
        if members >= 2:
            score["unet_ensemble"] = {
                "crps": float(crps_by_lead(ens, truth)[0]),
                "spread_skill": float(spread_skill_by_lead(ens, truth)[0]),
            }
        best_baseline = min(score["persistence"]["rmse"], score["climatology"]["rmse"])
        score["beats_baselines_single"] = score["unet_single"]["rmse"] < best_baseline
        score["beats_baselines_ensemble_mean"] = (score["unet_ensemble_mean"]["rmse"]
                                                  < best_baseline)
        result_leads[str(lead)] = score
        print(f"+{lead:2d} h: persistence {score['persistence']['rmse']:.3f}, climatology "
              f"{score['climatology']['rmse']:.3f}, base {score['base']['rmse']:.3f}, "
              f"U-Net {score['unet_single']['rmse']:.3f}, "
              f"ensemble mean {score['unet_ensemble_mean']['rmse']:.3f} (ACC "
              f"{score['unet_ensemble_mean']['acc']:.3f})"
              + (f", CRPS {score['unet_ensemble']['crps']:.3f}, spread/skill "
                 f"{score['unet_ensemble']['spread_skill']:.2f}" if members >= 2 else ""))

    result = {
        "benchmark": "forecast_weather",
        "date": utc_now(),
        "machine": machine_info(),
        "quick": args.quick,
        "data": {"file": array.attrs["file"], "shape": list(values.shape),
                 "test_hours": TEST_HOURS, "train_hours": int(len(train_idx))},
        "protocol": "latitude-weighted RMSE (K) and ACC over the 168 test hours as valid times; "
                    "climatology = hour-of-day mean of the training period",
        "baselines_readme_check": {
            "persistence_1h": baselines["persistence"][1],
            "persistence_6h": baselines["persistence"][6],
            "climatology": baselines["climatology"],
            "previous_day": baselines["previous_day"],
            "readme": {"persistence_1h": 0.58, "persistence_6h": 2.68, "climatology": 1.80,
                       "previous_day": 1.50},
        },
        "model": {"kind": "direct multi-lead U-Net (lead as input channel) correcting the "
                          f"{args.base} base", "width": args.width,
                  "levels": 3, "parameters": count_parameters(models[0]),
                  "inputs": int(x.shape[1]), "training_pairs": int(x.shape[0]),
                  "steps": steps, "batch_size": 32, "optimizer": "adamw lr 2e-3 wd 1e-2 cosine",
                  "members": members, "train_seconds": train_seconds},
        "leads": result_leads,
        "target": "ensemble mean and single model beat persistence and climatology at +6, "
                  "+12, +24 h",
        "target_met_single": all(s["beats_baselines_single"] for s in result_leads.values()),
        "target_met_ensemble_mean": all(s["beats_baselines_ensemble_mean"]
                                        for s in result_leads.values()),
    }
    out = args.out or HERE / "results" / (
        "forecast_weather_quick.json" if args.quick else "forecast_weather.json")
    write_result(out, result)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
