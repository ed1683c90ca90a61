#!/usr/bin/env python3
"""Writes tests/golden/data/stats/intervals.json for eval/intervals.hpp, computed by numpy and scipy.

quantiles: numpy.percentile (method "linear", the default) of fixed arrays at fixed levels: polyalpaca's
  quantile_sorted must give the same values (to rounding).
bootstrap: scipy.stats.bootstrap (method "percentile", 20000 resamples, seeded) 95% intervals of the mean of 0/1 and
  real-valued arrays: polyalpaca's bootstrap_mean draws its own resamples, so it must agree within the Monte Carlo
  spread (the test states its tolerance).
paired: a paired bootstrap of the difference of means written here with numpy (the same prompts drawn for both runs;
  p = 2 min(P*(d <= 0), P*(d >= 0))), 20000 resamples.
mcnemar: scipy.stats.binomtest(min(b, c), b + c, 0.5, alternative="two-sided").pvalue for discordant counts (b, c).

Pinned versions (checked at runtime): numpy==2.4.6, scipy==1.17.1.

    /opt/pa-venv/bin/python tools/make_stats_golden.py
"""

import json
import pathlib

import numpy as np
import scipy
from scipy import stats

PINNED = {"numpy": "2.4.6", "scipy": "1.17.1"}
OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "golden" / "data" / "stats" / "intervals.json"
RESAMPLES = 20000


def check_versions():
    found = {"numpy": np.__version__, "scipy": scipy.__version__}
    if found != PINNED:
        raise SystemExit(f"make_stats_golden.py needs {PINNED}, found {found}")


def arrays(rng):
    return {
        "binary_200_p30": (rng.random(200) < 0.30).astype(float),
        "binary_200_p55": (rng.random(200) < 0.55).astype(float),
        "binary_45_p10": (rng.random(45) < 0.10).astype(float),
        "scores_60": np.round(rng.normal(3.0, 1.2, 60), 3),
    }


def paired_bootstrap(a, b, rng):
    n = len(a)
    idx = rng.integers(0, n, size=(RESAMPLES, n))
    d = (a[idx] - b[idx]).mean(axis=1)
    low, high = np.percentile(d, [2.5, 97.5])
    p = min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0)))
    return {"difference": float(a.mean() - b.mean()), "low": float(low), "high": float(high), "p": float(p)}


def main():
    check_versions()
    rng = np.random.default_rng(20261207)
    data = arrays(rng)
    levels = [0.0, 0.025, 0.3, 0.5, 0.975, 1.0]
    out = {"resamples": RESAMPLES, "arrays": {}, "paired": [], "mcnemar": []}
    for name, values in data.items():
        ci = stats.bootstrap((values,), np.mean, method="percentile", n_resamples=RESAMPLES, confidence_level=0.95,
                             random_state=np.random.default_rng(7)).confidence_interval
        out["arrays"][name] = {
            "values": values.tolist(),
            "quantiles": {str(q): float(np.percentile(values, 100 * q)) for q in levels},
            "mean": float(values.mean()),
            "bootstrap_low": float(ci.low),
            "bootstrap_high": float(ci.high),
        }
    # Paired runs: B agrees with A on most prompts and is right more often (a real lead), and a pair with no lead.
    a = data["binary_200_p30"]
    flip = rng.random(200)
    b = np.where(flip < 0.2, 1.0, a)
    c = np.where(flip < 0.05, 1.0 - a, a)
    for name, (x, y) in {"lead": (b, a), "no_lead": (c, a)}.items():
        result = paired_bootstrap(x, y, np.random.default_rng(11))
        result.update({"name": name, "a": x.tolist(), "b": y.tolist(),
                       "only_a": int(((x == 1) & (y == 0)).sum()), "only_b": int(((x == 0) & (y == 1)).sum())})
        only = min(result["only_a"], result["only_b"])
        total = result["only_a"] + result["only_b"]
        result["mcnemar_p"] = 1.0 if total == 0 else float(stats.binomtest(only, total, 0.5).pvalue)
        out["paired"].append(result)
    for b_count, c_count in [(0, 0), (1, 0), (3, 9), (10, 10), (25, 40), (120, 80), (0, 7), (400, 351)]:
        total = b_count + c_count
        p = 1.0 if total == 0 else float(stats.binomtest(min(b_count, c_count), total, 0.5).pvalue)
        out["mcnemar"].append({"only_a": b_count, "only_b": c_count, "p": p})
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
