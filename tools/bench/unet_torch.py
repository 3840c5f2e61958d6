"""Time diffusers' UNet2DConditionModel on benches/configs/if_like_unet.json,
the config of benches/unet_step.rs: 64 x 64, batch 2, 77 tokens of width 768.

    python tools/bench/unet_torch.py --threads 2
Prints one JSON line: median and min of the timed runs in ms (f32 unless --dtype, --device cuda for a GPU, eval,
inference_mode, random weights, attention as diffusers picks it: SDPA; `--compile`: torch.compile).
"""

import argparse
import json
import os
import statistics
import time

import torch
from diffusers import UNet2DConditionModel

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = json.load(open(os.path.join(ROOT, "benches", "configs", "if_like_unet.json")))
    dt = getattr(torch, args.dtype)
    model = UNet2DConditionModel.from_config(cfg).eval().to(args.device, dt)
    params = sum(p.numel() for p in model.parameters())
    if args.compile:
        model = torch.compile(model)
    x = torch.randn(2, 3, 64, 64, device=args.device, dtype=dt)
    text = torch.randn(2, 77, 768, device=args.device, dtype=dt)
    t = torch.tensor([500, 500], device=args.device)
    times = []
    with torch.inference_mode():
        s = time.perf_counter()
        model(x, t, encoder_hidden_states=text).sample.cpu()
        first = (time.perf_counter() - s) * 1e3
        for _ in range(2):
            model(x, t, encoder_hidden_states=text)
        for _ in range(args.runs):
            s = time.perf_counter()
            model(x, t, encoder_hidden_states=text).sample.cpu()
            times.append((time.perf_counter() - s) * 1e3)
    print(json.dumps({"impl": "torch", "name": "if_like_110m_64x64_b2", "threads": args.threads,
                      "device": args.device, "dtype": args.dtype, "compile": args.compile,
                      "params": params, "first_ms": first,
                      "median_ms": statistics.median(times), "min_ms": min(times)}))


if __name__ == "__main__":
    main()
