import math, sys
import numpy as np
from scipy import stats
from platform.results import read_table
rows = [("xd-adult", "adult", ["adult", "infant"]), ("xd-infant", "infant", ["adult", "infant"]),
        ("xd-both", "adult + infant", ["adult", "infant"]), ("xd-mr", "mr", ["mr", "ct"]), ("xd-ct", "ct", ["mr", "ct"]),
        ("xd-site-raw", "adult (raw input)", ["adult", "site2"]), ("xd-site-volume", "adult (volume z-score)", ["adult", "site2"])]
def ci(v):
    v = np.asarray(v); m = v.mean(); h = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return f"{m:.3f} ± {h:.3f}"
print("| trained on | tested on | test Dice (best-on-val checkpoint), mean ± 95% t-interval over 3 seeds | per seed |")
print("|---|---|---|---|")
for name, train, domains in rows:
    try:
        t = [r for r in read_table(f"/tmp/exp/xd/{name}", "trials").to_pylist() if r["status"] == "TERMINATED"]
    except Exception as e:
        print(name, "missing", e); continue
    for d in domains:
        v = [r[f"test/best/dice/{d}"] for r in sorted(t, key=lambda r: r["seed"])]
        print(f"| {train} | {d} | {ci(v)} | {', '.join(f'{x:.3f}' for x in v)} |")
