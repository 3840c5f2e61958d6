"""Time transformers' T5EncoderModel on the configs of benches/t5_encode.rs.

    python tools/bench/t5_torch.py --threads 2
Prints one JSON line per config: median and min of the timed runs, in ms.
Random weights, 1 x 77 tokens, f32 (`--device cuda` for a GPU), eval mode, torch.inference_mode.
`--only v1_1_xxl_1x77` times the XXL-sized encoder (4.8B parameters, built on
the device; not in the default set); `--compile` wraps the model in torch.compile.
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
    "v1_1_xxl_1x77": dict(d_model=4096, d_ff=10240, num_layers=24, num_heads=64),
}
DEFAULT = ["v1_1_small_1x77", "v1_1_base_1x77"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--only", help="one config name")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for name, kw in CONFIGS.items():
        if (args.only and name != args.only) or (not args.only and name not in DEFAULT):
            continue
        cfg = T5Config(vocab_size=32128, d_kv=64, feed_forward_proj="gated-gelu", is_encoder_decoder=False, **kw)
        with torch.device(args.device):
            model = T5EncoderModel(cfg).eval()
        if args.compile:
            model = torch.compile(model)
        ids = torch.tensor([[(i * 397 + 11) % 32128 for i in range(77)]], device=args.device)
        mask = torch.ones_like(ids)
        times = []
        with torch.inference_mode():
            t = time.perf_counter()
            model(input_ids=ids, attention_mask=mask).last_hidden_state.cpu()
            first = (time.perf_counter() - t) * 1e3
            for _ in range(2):
                model(input_ids=ids, attention_mask=mask)
            for _ in range(args.runs):
                t = time.perf_counter()
                model(input_ids=ids, attention_mask=mask).last_hidden_state.cpu()
                times.append((time.perf_counter() - t) * 1e3)
        print(json.dumps({"impl": "torch", "name": name, "threads": args.threads, "device": args.device,
                          "dtype": "float32", "compile": args.compile, "first_ms": first,
                          "median_ms": statistics.median(times), "min_ms": min(times)}))


if __name__ == "__main__":
    main()
