"""Run the Rust T5 bench and the PyTorch reference alternately, at 1 and 2
threads, and print a markdown table of medians and ratios.

    python tools/bench/compare.py [--rounds 2] [--features flex]
Needs the fixtures venv (tools/fixtures/requirements.txt). Bench on an idle
machine: the two sides alternate so that background load hits both.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def rust(threads, features, name):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    cmd = ["cargo", "bench", "--bench", "t5_encode", "--no-default-features", "--features", features,
           "--", f"t5_encode/{name}$", "--noplot"]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(ROOT, "target", "criterion", "t5_encode", name, "new", "estimates.json")) as f:
        return json.load(f)["median"]["point_estimate"] / 1e6


def torch(threads, name):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "bench", "t5_torch.py"), "--threads",
                          str(threads), "--only", name], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["median_ms"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--features", default="flex")
    args = ap.parse_args()
    print(f"| config | threads | burn ({args.features}) ms | PyTorch ms | PyTorch / burn |")
    print("|---|---|---|---|---|")
    for name in ["v1_1_small_1x77", "v1_1_base_1x77"]:
        for threads in [1, 2]:
            r, t = [], []
            for _ in range(args.rounds):
                r.append(rust(threads, args.features, name))
                t.append(torch(threads, name))
            rm, tm = statistics.median(r), statistics.median(t)
            print(f"| {name} | {threads} | {rm:.1f} | {tm:.1f} | {tm / rm:.2f} |", flush=True)


if __name__ == "__main__":
    main()
