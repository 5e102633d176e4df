#!/usr/bin/env python3
"""Change points of the project's tracker against Apache Otava on the same synthetic histories.

    python3 scripts/changepoints-vs-otava.py [--histories 200] [--sets 10] [--seed 1] [--tolerance 2]
                                             [--significance P] [--bin target/release/colored-report]

Generates SETS sets (seeds SEED, SEED+1, ...) of HISTORIES histories, shows each set and then
all of them pooled (one set's 4-14 false change points are too few to rank two tools). A history: 30-60 commits each, 5 samples per commit with Gaussian noise of
1-4% (one level per history), 0-3 planted steps of 3-25% (either sign; steps at least 5
commits from each other and from the ends, so a step can be reverted 5 commits later). Both
tools see the same series, each commit's median of its 5 samples (the tracker's history report
works on these). The tracker: `colored-report changepoints` (E-Divisive split, t-test merge);
Otava: `otava.analysis.compute_change_points` with its defaults (window 50, max p 0.001;
apache-otava from PyPI). A planted step is found when a reported change point lies within
TOLERANCE commits of it (each report matches one step at most); a report that matches no step
is a false change point. Prints recall overall and by step size (3-5%, 5-10%, 10-25%) and false
change points per 100 commits.

Needs: python3 with apache-otava (pip install apache-otava; numpy and scipy come with it) and
the colored-report binary (built with cargo if missing). Exit: 0 done, 2 a tool is missing.

Example:
    python3 -m venv /tmp/otava && /tmp/otava/bin/pip install apache-otava
    /tmp/otava/bin/python scripts/changepoints-vs-otava.py --histories 200
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def generate(rng, n_histories):
    """Histories as dicts: id, medians, steps [(index, relative size)], noise."""
    out = []
    for h in range(n_histories):
        n = rng.randint(30, 60)
        noise = rng.uniform(0.01, 0.04)
        k = rng.randint(0, 3)
        steps = []
        for _ in range(200):
            if len(steps) == k:
                break
            t = rng.randint(5, n - 5)
            if all(abs(t - s) >= 5 for s, _ in steps):
                size = rng.uniform(0.03, 0.25) * rng.choice((-1, 1))
                steps.append((t, size))
        steps.sort()
        level, medians, j = 100.0, [], 0
        planted = []
        for i in range(n):
            while j < len(steps) and steps[j][0] == i:
                before = level
                level *= 1.0 + steps[j][1]
                planted.append((i, abs(level / before - 1.0)))
                j += 1
            samples = [level * (1.0 + rng.gauss(0.0, noise)) for _ in range(5)]
            medians.append(statistics.median(samples))
        out.append({"id": h, "series": medians, "steps": planted, "noise": noise})
    return out


def tracker(histories, binary, extra):
    lines = "".join(json.dumps({"id": h["id"], "series": h["series"]}) + "\n" for h in histories)
    res = subprocess.run([binary, "changepoints", "-", *extra], input=lines, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        sys.exit(f"error: {binary} changepoints failed: {res.stderr.strip()}")
    found = {}
    for line in res.stdout.splitlines():
        v = json.loads(line)
        found[v["id"]] = v["change_points"]
    return [found[h["id"]] for h in histories]


def run_otava(histories):
    from otava.analysis import compute_change_points

    out = []
    for h in histories:
        cps, _ = compute_change_points(h["series"])
        out.append([c.index for c in cps])
    return out


def score(histories, reported, tolerance):
    """(found, total) overall and per band, false change points, commits."""
    bands = {"3-5%": (0.0, 0.05), "5-10%": (0.05, 0.10), "10-25%": (0.10, 1.0)}
    hit = {b: [0, 0] for b in ["all", *bands]}
    false_cps, commits = 0, 0
    for h, rep in zip(histories, reported):
        commits += len(h["series"])
        left = sorted(rep)
        for t, size in h["steps"]:
            names = ["all"] + [b for b, (lo, hi) in bands.items() if lo <= size < hi]
            near = [r for r in left if abs(r - t) <= tolerance]
            for b in names:
                hit[b][1] += 1
            if near:
                left.remove(min(near, key=lambda r: abs(r - t)))
                for b in names:
                    hit[b][0] += 1
        false_cps += len(left)
    return hit, false_cps, commits


def table(title, scores, a):
    print(f"{title}; a step is found within {a.tolerance} commits\n")
    print("| tool | recall | 3-5% | 5-10% | 10-25% | false change points per 100 commits |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (hit, false_cps, commits) in scores.items():
        def cell(b):
            x, y = hit[b]
            return f"{100.0 * x / y:.1f}% ({x}/{y})" if y else "n/a"
        print(f"| {name} | {cell('all')} | {cell('3-5%')} | {cell('5-10%')} | {cell('10-25%')} | "
              f"{100.0 * false_cps / commits:.2f} ({false_cps}) |")
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--histories", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sets", type=int, default=10,
                    help="independent sets of HISTORIES (seeds SEED, SEED+1, ...), each shown, then pooled")
    ap.add_argument("--tolerance", type=int, default=2, help="commits between a report and the planted step")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/colored-report"))
    ap.add_argument("--significance", help="the tracker's --significance (default: its own)")
    a = ap.parse_args()
    try:
        import otava.analysis  # noqa: F401
    except ImportError as e:
        print(f"error: Apache Otava is not importable ({e}): pip install apache-otava", file=sys.stderr)
        return 2
    if not os.access(a.bin, os.X_OK):
        print(f">> building {a.bin}", file=sys.stderr)
        r = subprocess.run(["cargo", "build", "--release", "--locked", "-p", "colored-report", "--bin", "colored-report"],
                           cwd=ROOT, check=False)
        if r.returncode != 0 or not os.access(a.bin, os.X_OK):
            print("error: could not build colored-report", file=sys.stderr)
            return 2
    from importlib.metadata import version

    extra = ["--significance", a.significance] if a.significance else []
    names = ["tracker (colored-report changepoints)", f"Apache Otava {version('apache-otava')} (defaults)"]
    pooled = {n: ({}, 0, 0) for n in names}
    totals = [0, 0, 0]
    for seed in range(a.seed, a.seed + a.sets):
        hs = generate(random.Random(seed), a.histories)
        reported = {names[0]: tracker(hs, a.bin, extra), names[1]: run_otava(hs)}
        n_steps = sum(len(h["steps"]) for h in hs)
        n_commits = sum(len(h["series"]) for h in hs)
        totals = [totals[0] + a.histories, totals[1] + n_commits, totals[2] + n_steps]
        scores = {n: score(hs, reported[n], a.tolerance) for n in names}
        table(f"{a.histories} histories (seed {seed}): {n_commits} commits, {n_steps} planted steps", scores, a)
        for n in names:
            hit, f, c = scores[n]
            ph, pf, pc = pooled[n]
            for b, (x, y) in hit.items():
                px, py = ph.get(b, (0, 0))
                ph[b] = (px + x, py + y)
            pooled[n] = (ph, pf + f, pc + c)
    if a.sets > 1:
        table(f"pooled: {totals[0]} histories (seeds {a.seed}-{a.seed + a.sets - 1}), {totals[1]} commits, "
              f"{totals[2]} planted steps", pooled, a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
