"""Forward-pass check of the random full-size IF checkpoints that write_random_if.py wrote.

    /work/venv/bin/python tools/if_full_size/check_forward.py --out /work/ifdata

* T5-v1.1-XXL: transformers' own T5Block modules, streamed one layer at a time from the written
  shards (built on `meta`, filled with `to_empty` + `load_state_dict`, sent back to `meta`), so
  the peak memory is one layer. It runs 77 tokens in float32, bfloat16 and float16 and reports
  the output statistics and the relative error of the half-precision runs against float32.
* UNets: diffusers' `UNet2DConditionModel.from_pretrained(..., variant="fp16")`, one forward
  on CPU with the T5 output as text: IF-II-L (64x64, class label 250) in float32, bfloat16 and
  float16; IF-I-XL (16x16) in bfloat16 and float16 only (float32 would take 17 GB of weights).
  Peak RSS measured 17.3 GB (diffusers loading IF-I-XL without `accelerate`); 20 min on 2 cores.

Every output must be finite with a standard deviation that is neither tiny nor huge.
"""

import argparse
import gc
import os
import time

import torch
from safetensors import safe_open
from transformers import T5Config, T5EncoderModel

from diffusers import UNet2DConditionModel


def stats(name, x, ref=None, ref_name="float32"):
    x32 = x.float()
    finite = bool(torch.isfinite(x32).all())
    line = f"{name}: shape {list(x.shape)} finite {finite} std {float(x32.std()):.4g} max|x| {float(x32.abs().max()):.4g}"
    if ref is not None:
        rel = float((x32 - ref.float()).norm() / ref.float().norm())
        line += f" rel.err vs {ref_name} {rel:.3g}"
    print(line, flush=True)
    assert finite, name
    assert 1e-3 < float(x32.std()) < 1e3, name
    return x32


def t5_forward(te_dir, ids, dtype):
    config = T5Config.from_pretrained(te_dir)
    with torch.device("meta"):
        model = T5EncoderModel(config).eval()
    import json

    with open(os.path.join(te_dir, "model.safetensors.index.fp16.json")) as f:
        weight_map = json.load(f)["weight_map"]
    handles = {fn: safe_open(os.path.join(te_dir, fn), "pt") for fn in set(weight_map.values())}

    def load(prefix, module):
        module.to_empty(device="cpu")
        sd = {k[len(prefix):]: handles[fn].get_tensor(k).to(dtype) for k, fn in weight_map.items()
              if k.startswith(prefix)}
        module.load_state_dict(sd, strict=True)
        module.to(dtype)

    shared = handles[weight_map["shared.weight"]].get_tensor("shared.weight")
    hidden = shared[ids].to(dtype)
    del shared
    position_bias = None
    with torch.no_grad():
        for i, block in enumerate(model.encoder.block):
            load(f"encoder.block.{i}.", block)
            hidden, position_bias, _ = block(hidden, None, position_bias)
            block.to("meta")
        load("encoder.final_layer_norm.", model.encoder.final_layer_norm)
        hidden = model.encoder.final_layer_norm(hidden)
    return hidden


def unet_forward(unet, sample, t, text, class_labels=None):
    with torch.no_grad():
        return unet(sample.to(unet.dtype), t, encoder_hidden_states=text.to(unet.dtype),
                    class_labels=class_labels, return_dict=False)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    d1 = os.path.join(args.out, "IF-I-XL-v1.0")
    d2 = os.path.join(args.out, "IF-II-L-v1.0")

    ids = torch.randint(3, 32128, (1, 77))
    t = time.time()
    ref = t5_forward(os.path.join(d1, "text_encoder"), ids, torch.float32)
    stats("T5 float32", ref)
    # different tokens give different states (not degenerate)
    assert float(ref[0].std(dim=0).mean()) > 1e-2
    for dtype in (torch.bfloat16, torch.float16):
        stats(f"T5 {str(dtype)[6:]}", t5_forward(os.path.join(d1, "text_encoder"), ids, dtype), ref)
    print(f"T5 checks: {time.time() - t:.1f} s", flush=True)
    text = ref

    t = time.time()
    unet = UNet2DConditionModel.from_pretrained(d2, subfolder="unet", variant="fp16", torch_dtype=torch.float32)
    sample = torch.randn(1, 6, 64, 64)
    labels = torch.tensor([250])
    out32 = stats("IF-II-L float32", unet_forward(unet, sample, 500, text, labels))
    for dtype in (torch.bfloat16, torch.float16):
        unet.to(dtype)
        stats(f"IF-II-L {str(dtype)[6:]}", unet_forward(unet, sample, 500, text, labels), out32)
    del unet
    gc.collect()
    print(f"IF-II-L checks: {time.time() - t:.1f} s", flush=True)

    t = time.time()
    unet = UNet2DConditionModel.from_pretrained(d1, subfolder="unet", variant="fp16", torch_dtype=torch.bfloat16)
    sample = torch.randn(1, 3, 16, 16)
    outbf = stats("IF-I-XL bfloat16", unet_forward(unet, sample, 500, text))
    unet.to(torch.float16)
    stats("IF-I-XL float16", unet_forward(unet, sample, 500, text), outbf, "bfloat16")
    print(f"IF-I-XL checks: {time.time() - t:.1f} s", flush=True)


if __name__ == "__main__":
    main()
