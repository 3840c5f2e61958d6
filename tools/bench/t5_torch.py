"""Time transformers' T5EncoderModel on the configs of benches/t5_encode.rs.

    python tools/bench/t5_torch.py --threads 2
Prints one JSON line per config: median and min of the timed runs, in ms.
Random weights, 1 x 77 tokens, f32 (`--device cuda` for a GPU), eval mode, torch.inference_mode.
"""

import argparse
import json
import statistics
import time

import torch
from transformers import T5Config, T5EncoderModel

CONFIGS = {
    "v1_1_small_1x77": dict(d_model=512, d_ff=1024, num_layers=8, num_heads=6),
    "v1_1_base_1x77": dict(d_model=768, d_ff=2048, num_layers=12, num_heads=12),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--only", help="one config name")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for name, kw in CONFIGS.items():
        if args.only and name != args.only:
            continue
        cfg = T5Config(vocab_size=32128, d_kv=64, feed_forward_proj="gated-gelu", is_encoder_decoder=False, **kw)
        model = T5EncoderModel(cfg).eval().to(args.device)
        ids = torch.tensor([[(i * 397 + 11) % 32128 for i in range(77)]], device=args.device)
        mask = torch.ones_like(ids)
        times = []
        with torch.inference_mode():
            for _ in range(3):
                model(input_ids=ids, attention_mask=mask)
            for _ in range(args.runs):
                t = time.perf_counter()
                model(input_ids=ids, attention_mask=mask).last_hidden_state.cpu()
                times.append((time.perf_counter() - t) * 1e3)
        print(json.dumps({"name": name, "threads": args.threads, "device": args.device, "median_ms": statistics.median(times), "min_ms": min(times)}))


if __name__ == "__main__":
    main()
