"""Write full-size DeepFloyd IF checkpoints with random weights, in IF's published fp16 layout.

    /work/venv/bin/python tools/if_full_size/write_random_if.py --out /work/ifdata

writes `OUT/IF-I-XL-v1.0/` (UNet 4.3B + T5-v1.1-XXL encoder 4.76B) and `OUT/IF-II-L-v1.0/`
(UNet 1.2B), about 20.6 GB of float16 in all, laid out like the published repos that diffusers'
docs load with `variant="fp16"`:

    IF-I-XL-v1.0/model_index.json
    IF-I-XL-v1.0/scheduler/scheduler_config.json
    IF-I-XL-v1.0/unet/config.json
    IF-I-XL-v1.0/unet/diffusion_pytorch_model.fp16.safetensors
    IF-I-XL-v1.0/text_encoder/config.json
    IF-I-XL-v1.0/text_encoder/model.fp16-00001-of-00002.safetensors
    IF-I-XL-v1.0/text_encoder/model.fp16-00002-of-00002.safetensors
    IF-I-XL-v1.0/text_encoder/model.safetensors.index.fp16.json
    IF-I-XL-v1.0/tokenizer/{tokenizer.json, tokenizer_config.json, special_tokens_map.json}
    IF-II-L-v1.0/model_index.json
    IF-II-L-v1.0/scheduler/scheduler_config.json
    IF-II-L-v1.0/image_noising_scheduler/scheduler_config.json
    IF-II-L-v1.0/unet/config.json
    IF-II-L-v1.0/unet/diffusion_pytorch_model.fp16.safetensors
    IF-II-L-v1.0/tokenizer/...

No model is ever materialised: tensor names and shapes come from the models built on the `meta`
device, and the safetensors files are written by hand (8-byte little-endian header length, JSON
header, data streamed tensor by tensor in 1 Mi-element chunks). The random values are float16
N(0, std^2) draws: one pool of 2^25 standard normals is drawn once, and each chunk is a slice of
it at a random offset (optionally sign-flipped), scaled through a 65536-entry float16 lookup
table. Peak RSS stays around 0.5 GB; the run is disk-bound. See README.md beside this file for the
configs, their sources and the init scales.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tools", "fixtures"))
TOKENIZER_JSON = os.path.join(REPO, "crates", "imagen-text", "tests", "fixtures", "tokenizer", "tokenizer.json")

from diffusers import DDPMScheduler, UNet2DConditionModel  # noqa: E402
from diffusers.models.embeddings import AttentionPooling  # noqa: E402
from safetensors import safe_open  # noqa: E402
from torch import nn  # noqa: E402
from transformers import T5Config, T5EncoderModel  # noqa: E402
from transformers.models.t5.modeling_t5 import T5Attention, T5LayerNorm  # noqa: E402

# The full-size UNet configs, as diffusers' scripts/convert_if.py builds them from IF's config.yml
# (tools/fixtures/unet.py, which also records their exact parameter counts).
from unet import IF_I_XL, IF_II_L  # noqa: E402

# google/t5-v1_1-xxl's config.json (the encoder IF ships in IF-I-XL-v1.0/text_encoder), with
# architectures T5EncoderModel as save_pretrained of a T5EncoderModel writes it.
T5_XXL = dict(
    vocab_size=32128,
    d_model=4096,
    d_kv=64,
    d_ff=10240,
    num_layers=24,
    num_decoder_layers=24,
    num_heads=64,
    relative_attention_num_buckets=32,
    relative_attention_max_distance=128,
    dropout_rate=0.1,
    layer_norm_epsilon=1e-6,
    initializer_factor=1.0,
    feed_forward_proj="gated-gelu",
    is_encoder_decoder=True,
    tie_word_embeddings=False,
    pad_token_id=0,
    eos_token_id=1,
    decoder_start_token_id=0,
    output_past=True,
    architectures=["T5EncoderModel"],
)
T5_SHARDS = 2  # as published: text_encoder/model.fp16-0000{1,2}-of-00002.safetensors
T5_MAX_SHARD_BYTES = 5 * 10**9  # greedy split in state_dict order, like transformers' save_pretrained
# The published checkpoint holds the token embedding once, as shared.weight (transformers drops the
# tied alias encoder.embed_tokens.weight when saving safetensors: T5EncoderModel lists it in
# _keys_to_ignore_on_load_missing / _tied_weights_keys).
T5_SKIP = {"encoder.embed_tokens.weight"}

# diffusers scripts/convert_if.py (convert_stage_1_pipeline / convert_super_res_pipeline).
STAGE1_SCHEDULER = dict(variance_type="learned_range", beta_schedule="squaredcos_cap_v2", prediction_type="epsilon",
                        thresholding=True, dynamic_thresholding_ratio=0.95, sample_max_value=1.5)
STAGE2_SCHEDULER = dict(STAGE1_SCHEDULER, sample_max_value=1.0)
IMAGE_NOISING_SCHEDULER = dict(beta_schedule="squaredcos_cap_v2")

# model_index.json of the published repos: the components convert_if.py passes (safety checker,
# feature extractor, watermarker; requires_safety_checker true). convert_super_res_pipeline passes the
# T5 to stage II as well, and the published IF-II repos hold text_encoder/model.fp16-0000{1,2}-of-00002
# .safetensors (diffusers' docs load them with text_encoder=None so it is not loaded twice). This
# writer does not write stage II's copy of the T5 (stage II reuses stage I's embeddings), so
# IF-II-L-v1.0/text_encoder/ is listed in model_index.json but absent, like the safety components.
MODEL_INDEX_I = {
    "_class_name": "IFPipeline",
    "_diffusers_version": "0.16.0.dev0",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "requires_safety_checker": True,
    "safety_checker": ["deepfloyd_if", "IFSafetyChecker"],
    "scheduler": ["diffusers", "DDPMScheduler"],
    "text_encoder": ["transformers", "T5EncoderModel"],
    "tokenizer": ["transformers", "T5Tokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "watermarker": ["deepfloyd_if", "IFWatermarker"],
}
MODEL_INDEX_II = {
    "_class_name": "IFSuperResolutionPipeline",
    "_diffusers_version": "0.16.0.dev0",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "image_noising_scheduler": ["diffusers", "DDPMScheduler"],
    "requires_safety_checker": True,
    "safety_checker": ["deepfloyd_if", "IFSafetyChecker"],
    "scheduler": ["diffusers", "DDPMScheduler"],
    "text_encoder": ["transformers", "T5EncoderModel"],
    "tokenizer": ["transformers", "T5Tokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "watermarker": ["deepfloyd_if", "IFWatermarker"],
}
LOADABLE_NULLS = ("feature_extractor", "safety_checker", "watermarker")

CONV_OUT_GAIN = 0.1  # conv_out is zero-initialised in IF; here it is small random instead
CHUNK = 1 << 20  # elements per write
POOL = 1 << 25  # standard normals drawn once (64 MiB of float16)
F16_ONE, F16_ZERO = 0x3C00, 0x0000


# ---------------------------------------------------------------------------------------------
# What to write: (name, shape, init) per tensor, from the meta models
# ---------------------------------------------------------------------------------------------


def fan_in(shape):
    return int(np.prod(shape[1:]))


def unet_entries(cfg):
    """[(key, shape, ("normal", std) | ("const", value))] in state_dict order, and the meta model."""
    with torch.device("meta"):
        model = UNet2DConditionModel(**cfg)
    entries = []
    for key, t in model.state_dict().items():
        mod_name, _, pname = key.rpartition(".")
        mod = model.get_submodule(mod_name)
        shape = tuple(t.shape)
        if isinstance(mod, (nn.Linear, nn.Conv2d)):
            if pname == "weight":
                gain = CONV_OUT_GAIN if mod_name == "conv_out" else 1.0
                init = ("normal", gain * fan_in(shape) ** -0.5)
            else:
                init = ("const", 0.0)
        elif isinstance(mod, (nn.GroupNorm, nn.LayerNorm)):
            init = ("const", 1.0 if pname == "weight" else 0.0)
        elif isinstance(mod, AttentionPooling) and pname == "positional_embedding":
            init = ("normal", shape[-1] ** -0.5)  # diffusers: randn(1, dim) / dim**0.5
        else:
            raise ValueError(f"no init rule for {key} ({type(mod).__name__})")
        entries.append((key, shape, init))
    return entries, model


def t5_entries():
    config = T5Config(**T5_XXL)
    with torch.device("meta"):
        model = T5EncoderModel(config)
    d_model, d_kv, n_heads, d_ff = config.d_model, config.d_kv, config.num_heads, config.d_ff
    entries = []
    for key, t in model.state_dict().items():
        if key in T5_SKIP:
            continue
        mod_name, _, pname = key.rpartition(".")
        mod = model.get_submodule(mod_name)
        parent = model.get_submodule(mod_name.rpartition(".")[0]) if "." in mod_name else model
        shape = tuple(t.shape)
        leaf = mod_name.rpartition(".")[2]
        # transformers' T5PreTrainedModel._init_weights (initializer_factor 1.0)
        if isinstance(mod, T5LayerNorm):
            init = ("const", 1.0)
        elif key == "shared.weight":
            init = ("normal", 1.0)
        elif isinstance(parent, T5Attention) and leaf == "q":
            init = ("normal", (d_model * d_kv) ** -0.5)
        elif isinstance(parent, T5Attention) and leaf in ("k", "v"):
            init = ("normal", d_model ** -0.5)
        elif isinstance(parent, T5Attention) and leaf == "o":
            init = ("normal", (n_heads * d_kv) ** -0.5)
        elif isinstance(parent, T5Attention) and leaf == "relative_attention_bias":
            init = ("normal", d_model ** -0.5)
        elif leaf in ("wi_0", "wi_1"):
            init = ("normal", d_model ** -0.5)
        elif leaf == "wo":
            init = ("normal", d_ff ** -0.5)
        else:
            raise ValueError(f"no init rule for {key} ({type(mod).__name__})")
        entries.append((key, shape, init))
    return entries, model, config


# ---------------------------------------------------------------------------------------------
# Random float16 data and the hand-written safetensors files
# ---------------------------------------------------------------------------------------------


class Float16Source:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        pool = self.rng.standard_normal(POOL, dtype=np.float32)
        self.pool = pool.astype(np.float16).view(np.uint16)
        del pool
        with np.errstate(invalid="ignore", over="ignore"):
            self.all_f16 = np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32)
        self.luts = {}

    def lut(self, std):
        if std not in self.luts:
            with np.errstate(invalid="ignore", over="ignore"):
                self.luts[std] = (self.all_f16 * np.float32(std)).astype(np.float16).view(np.uint16)
        return self.luts[std]

    def chunks(self, n, init):
        """Yields uint16 arrays (float16 bit patterns) totalling n elements."""
        kind, value = init
        if kind == "const":
            bits = F16_ONE if value == 1.0 else F16_ZERO
            assert value in (0.0, 1.0)
            full = np.full(min(n, CHUNK), bits, dtype=np.uint16)
            for start in range(0, n, CHUNK):
                yield full[: min(CHUNK, n - start)]
            return
        lut = self.lut(value)
        for start in range(0, n, CHUNK):
            m = min(CHUNK, n - start)
            off = int(self.rng.integers(0, POOL - m))
            out = np.take(lut, self.pool[off: off + m])
            if self.rng.integers(0, 2):
                out ^= 0x8000  # flip every sign (N(0, s^2) is symmetric)
            yield out


def header_bytes(entries):
    """safetensors header for F16 tensors `entries` = [(key, shape, init)], in sorted key order."""
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for key, shape, _ in sorted(entries, key=lambda e: e[0]):
        nbytes = int(np.prod(shape)) * 2
        header[key] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # safetensors pads the header to 8 bytes with spaces
    return raw, offset


def write_safetensors(path, entries, source):
    raw, data_size = header_bytes(entries)
    written = 0
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for key, shape, init in sorted(entries, key=lambda e: e[0]):
            for chunk in source.chunks(int(np.prod(shape)), init):
                chunk.astype("<u2", copy=False).tofile(f)
                written += chunk.nbytes
    assert written == data_size, (path, written, data_size)
    assert os.path.getsize(path) == 8 + len(raw) + data_size
    return data_size


def shard(entries, max_bytes):
    """Greedy split in state_dict order (what transformers' save_pretrained does)."""
    shards, current, size = [], [], 0
    for e in entries:
        nbytes = int(np.prod(e[1])) * 2
        if current and size + nbytes > max_bytes:
            shards.append(current)
            current, size = [], 0
        current.append(e)
        size += nbytes
    shards.append(current)
    return shards


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------


def verify_file(path, entries, rng):
    """Header parses with safetensors, keys/shapes/dtypes match, a few tensors read back sensibly."""
    want = {k: (s, i) for k, s, i in entries}
    with safe_open(path, "np") as st:
        keys = list(st.keys())
        assert set(keys) == set(want), (path, set(keys) ^ set(want))
        for k in keys:
            sl = st.get_slice(k)
            assert sl.get_dtype() == "F16", (k, sl.get_dtype())
            assert tuple(sl.get_shape()) == want[k][0], (k, sl.get_shape(), want[k][0])
        names = sorted(want)
        sample = {names[0], names[-1]} | {names[int(i)] for i in rng.integers(0, len(names), 4)}
        normals = [k for k in names if want[k][1][0] == "normal" and int(np.prod(want[k][0])) < 50_000_000]
        if normals:
            sample.add(normals[int(rng.integers(0, len(normals)))])
        for k in sorted(sample):
            shape = want[k][0]
            rows = max(1, min(shape[0], (1 << 20) // max(1, int(np.prod(shape[1:])))))
            x = st.get_slice(k)[:rows].astype(np.float32)  # at most ~1M elements read back
            assert np.isfinite(x).all(), k
            kind, value = want[k][1]
            if kind == "const":
                assert (x == value).all(), k
            elif x.size >= 4096:
                std = float(x.std())
                assert 0.9 * value < std < 1.1 * value, (k, std, value)
    return len(keys)


def count(entries):
    return sum(int(np.prod(s)) for _, s, _ in entries)


# ---------------------------------------------------------------------------------------------
# Configs and small files
# ---------------------------------------------------------------------------------------------


def dump_json(obj, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def write_unet_config(model, out):
    os.makedirs(out, exist_ok=True)
    model.save_config(out)  # diffusers' own serialisation of the config (config.json)


def write_scheduler(cfg, out):
    DDPMScheduler(**cfg).save_config(out)


def write_tokenizer(out):
    """tokenizer.json copied byte for byte; tokenizer_config.json as transformers 5 writes it for it."""
    from if_pipeline import make_tokenizer

    os.makedirs(out, exist_ok=True)
    shutil.copyfile(TOKENIZER_JSON, os.path.join(out, "tokenizer.json"))
    with tempfile.TemporaryDirectory() as tmp:
        tok = make_tokenizer(os.path.join(tmp, "src"))
        tok.save_pretrained(os.path.join(tmp, "saved"))
        shutil.copyfile(os.path.join(tmp, "saved", "tokenizer_config.json"), os.path.join(out, "tokenizer_config.json"))
        assert max(tok.get_vocab().values()) < T5_XXL["vocab_size"]
    dump_json({"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"},
              os.path.join(out, "special_tokens_map.json"))


def write_t5_config(out):
    """google/t5-v1_1-xxl's config.json plus what save_pretrained of IF's float16 T5EncoderModel added
    (architectures, dense_act_fn / is_gated_act, torch_dtype). Written by hand: transformers 5's own
    serialisation rewrites is_encoder_decoder, tie_word_embeddings and use_cache."""
    cfg = dict(T5_XXL, dense_act_fn="gelu_new", is_gated_act=True, model_type="t5", use_cache=True,
               torch_dtype="float16")
    dump_json(cfg, os.path.join(out, "config.json"))
    # transformers reads it back as the same architecture
    back = T5Config.from_pretrained(out)
    for k in ("vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_heads", "relative_attention_num_buckets",
              "relative_attention_max_distance", "layer_norm_epsilon", "is_gated_act", "dense_act_fn"):
        assert getattr(back, k) == cfg[k], (k, getattr(back, k), cfg[k])


# ---------------------------------------------------------------------------------------------


def gb(n):
    return f"{n / 1e9:.2f} GB"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (IF-I-XL-v1.0/ and IF-II-L-v1.0/ go in it)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", choices=["all", "configs", "if-i-xl", "if-ii-l"], default="all",
                    help="'configs' writes every small file and no weights")
    ap.add_argument("--model-index", choices=["published", "loadable"], default="published",
                    help="'published' lists the safety checker / feature extractor / watermarker the published "
                    "repos hold, and IF-II-L's text encoder (those folders are not written); 'loadable' sets them "
                    "to null so that diffusers loads the folders as they are")
    ap.add_argument("--ii-only-cross-attention", action="store_true",
                    help="IF-II-L with only_cross_attention true (the one field not confirmed; see README)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    t0 = time.time()
    out1 = os.path.join(args.out, "IF-I-XL-v1.0")
    out2 = os.path.join(args.out, "IF-II-L-v1.0")
    ii_cfg = dict(IF_II_L, only_cross_attention=args.ii_only_cross_attention)

    unet1, unet1_model = unet_entries(IF_I_XL)
    unet2, unet2_model = unet_entries(ii_cfg)
    t5, _, _ = t5_entries()
    counts = {"IF-I-XL unet": count(unet1), "IF-II-L unet": count(unet2), "T5-v1.1-XXL encoder": count(t5)}
    for name, n in counts.items():
        print(f"{name}: {n:,} parameters ({n / 1e9:.3f}B, {gb(2 * n)} as float16)")
    assert counts["IF-I-XL unet"] == 4_304_695_110
    assert counts["T5-v1.1-XXL encoder"] == 4_762_310_656
    if not args.ii_only_cross_attention:
        assert counts["IF-II-L unet"] == 1_243_277_190

    # Small files
    index_i, index_ii = dict(MODEL_INDEX_I), dict(MODEL_INDEX_II)
    if args.model_index == "loadable":
        for idx in (index_i, index_ii):
            idx["requires_safety_checker"] = False
            for k in LOADABLE_NULLS:
                idx[k] = [None, None]
        index_ii["text_encoder"] = [None, None]
    dump_json(index_i, os.path.join(out1, "model_index.json"))
    dump_json(index_ii, os.path.join(out2, "model_index.json"))
    write_scheduler(STAGE1_SCHEDULER, os.path.join(out1, "scheduler"))
    write_scheduler(STAGE2_SCHEDULER, os.path.join(out2, "scheduler"))
    write_scheduler(IMAGE_NOISING_SCHEDULER, os.path.join(out2, "image_noising_scheduler"))
    write_unet_config(unet1_model, os.path.join(out1, "unet"))
    write_unet_config(unet2_model, os.path.join(out2, "unet"))
    write_t5_config(os.path.join(out1, "text_encoder"))
    write_tokenizer(os.path.join(out1, "tokenizer"))
    write_tokenizer(os.path.join(out2, "tokenizer"))
    if args.only == "configs":
        print(f"configs written to {args.out} in {time.time() - t0:.1f} s")
        return

    source = Float16Source(args.seed)
    check_rng = np.random.default_rng(args.seed + 1)
    files = []  # (path, entries)
    if args.only in ("all", "if-i-xl"):
        files.append((os.path.join(out1, "unet", "diffusion_pytorch_model.fp16.safetensors"), unet1))
        shards = shard(t5, T5_MAX_SHARD_BYTES)
        assert len(shards) == T5_SHARDS, len(shards)
        weight_map, total = {}, 0
        for i, entries in enumerate(shards, 1):
            fname = f"model.fp16-{i:05d}-of-{T5_SHARDS:05d}.safetensors"
            files.append((os.path.join(out1, "text_encoder", fname), entries))
            for k, s, _ in entries:
                weight_map[k] = fname
                total += int(np.prod(s)) * 2
        dump_json({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))},
                  os.path.join(out1, "text_encoder", "model.safetensors.index.fp16.json"))
    if args.only in ("all", "if-ii-l"):
        files.append((os.path.join(out2, "unet", "diffusion_pytorch_model.fp16.safetensors"), unet2))

    for path, entries in files:
        t = time.time()
        size = write_safetensors(path, entries, source)
        print(f"wrote {os.path.relpath(path, args.out)}: {len(entries)} tensors, {gb(size)} of data, "
              f"{time.time() - t:.1f} s", flush=True)

    # Verification: every file, and the T5 index against transformers' key names.
    for path, entries in files:
        n = verify_file(path, entries, check_rng)
        print(f"verified {os.path.relpath(path, args.out)} ({n} tensors)")
    if args.only in ("all", "if-i-xl"):
        with open(os.path.join(out1, "text_encoder", "model.safetensors.index.fp16.json")) as f:
            index = json.load(f)
        with torch.device("meta"):
            ref = T5EncoderModel(T5Config.from_pretrained(os.path.join(out1, "text_encoder")))
        expected = set(ref.state_dict()) - T5_SKIP
        assert set(index["weight_map"]) == expected, set(index["weight_map"]) ^ expected
        # the one key left out is the tied alias of shared.weight, which transformers re-ties on load
        assert ref.encoder.embed_tokens.weight is ref.shared.weight
        assert dict(ref._tied_weights_keys) == {"encoder.embed_tokens.weight": "shared.weight"}
        for fname in sorted(set(index["weight_map"].values())):
            with safe_open(os.path.join(out1, "text_encoder", fname), "np") as st:
                assert set(st.keys()) == {k for k, v in index["weight_map"].items() if v == fname}
        print(f"verified text_encoder index: {len(index['weight_map'])} keys = T5EncoderModel.state_dict() "
              f"minus {sorted(T5_SKIP)}")

    print(f"done in {time.time() - t0:.1f} s")
    for d in (out1, out2):
        for dp, _, fs in sorted(os.walk(d)):
            for fn in sorted(fs):
                p = os.path.join(dp, fn)
                print(f"  {os.path.getsize(p):>14,d}  {os.path.relpath(p, args.out)}")


if __name__ == "__main__":
    main()
