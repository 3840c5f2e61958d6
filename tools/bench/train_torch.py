"""Time one training step of diffusers' UNet2DConditionModel on
benches/configs/train_if_small.json, the config of benches/train_step.rs:
batch 8, 64 x 64, 40 tokens of width 128; eps objective on a cosine
schedule, 10% text dropout, backward, clip to norm 1, AdamW, EMA update.

    python tools/bench/train_torch.py --threads 2 [--device cuda]
Prints one JSON line: median and min of the timed steps in ms (f32).
`--compile`: the model wrapped in torch.compile (forward and backward).
"""

import argparse
import json
import math
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
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    cfg = json.load(open(os.path.join(ROOT, "benches", "configs", "train_if_small.json")))
    model = UNet2DConditionModel.from_config(cfg).to(dev).train()
    ema = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    params = sum(p.numel() for p in model.parameters())
    fwd = torch.compile(model) if args.compile else model
    steps = torch.arange(1001, dtype=torch.float64)
    abar = torch.cos((steps / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2
    abar = (abar / abar[0]).float().to(dev)
    x0 = torch.rand(8, 3, 64, 64, device=dev) * 2 - 1
    text = torch.randn(8, 40, 128, device=dev)
    mask = torch.ones(8, 40, device=dev)

    def step():
        t = torch.randint(0, 1000, (8,), device=dev)
        eps = torch.randn_like(x0)
        a = abar[t + 1].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        keep = (torch.rand(8, device=dev) >= 0.1).float().view(-1, 1, 1)
        pred = fwd(xt, t, encoder_hidden_states=text * keep, encoder_attention_mask=mask).sample
        loss = torch.nn.functional.mse_loss(pred, eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach() for p in model.parameters()], 1 - 0.9999)
        return loss.item()

    times = []
    s = time.perf_counter()
    step()
    first = (time.perf_counter() - s) * 1e3
    for _ in range(2):
        step()
    for _ in range(args.runs):
        s = time.perf_counter()
        step()
        times.append((time.perf_counter() - s) * 1e3)
    print(json.dumps({"impl": "torch", "name": "if_small_64x64_b8", "device": args.device,
                      "threads": args.threads, "dtype": "float32", "compile": args.compile,
                      "params": params, "first_ms": first, "median_ms": statistics.median(times), "min_ms": min(times)}))


if __name__ == "__main__":
    main()
