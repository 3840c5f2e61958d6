"""The markdown table of tools/bench/gpu.sh from its JSON lines.

    python3 tools/bench/gpu_table.py results.jsonl

Reads the lines of `examples/gpu_bench.rs` ("impl": "burn") and of
`tools/bench/*_torch.py` ("impl": "torch"; eager, or "compile": true), plus
the "skipped" lines gpu.sh writes for what did not run (no time left, no
torch, a failure), and prints one row per workload: the burn median, its
first call (autotuning included), PyTorch eager and torch.compile medians,
and PyTorch eager / burn (above 1: burn is faster). Non-JSON lines are
ignored, so a whole log can be fed in. Standard library only.
"""

import json
import sys

# (label, burn workload, torch script name, torch dtype)
ROWS = [
    ("U-Net step, 110.7M IF layout, 64x64, batch 2, f32", "unet_f32", "if_like_110m_64x64_b2", "float32"),
    ("U-Net step, same, f16", "unet_f16", "if_like_110m_64x64_b2", "float16"),
    ("U-Net step, same, bf16", "unet_bf16", "if_like_110m_64x64_b2", "bfloat16"),
    ("T5 v1.1 base encoder, 1x77, f32", "t5_base", "v1_1_base_1x77", "float32"),
    ("T5 v1.1 XXL-sized encoder, 1x77, f32", "t5_xxl", "v1_1_xxl_1x77", "float32"),
    ("training step, 27.2M IF layout, batch 8, 64x64, f32", "train_27m", "if_small_64x64_b8", "float32"),
    ("demo `generate` (models/demo, 1 image, default steps)", "generate", None, None),
]


def ms(v):
    if v is None:
        return ""
    return f"{v:.3g} ms" if v < 100 else f"{v:.0f} ms"


def cell(rec):
    """A median, or why there is none."""
    if rec is None:
        return ""
    if rec.get("status", "ok") != "ok":
        return f"({rec.get('status')}: {rec.get('detail', '')})".replace("|", "/")
    return ms(rec.get("median_ms"))


def main(paths):
    burn, torch = {}, {}
    meta = []
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if rec.get("impl") == "burn":
                    burn[rec["name"]] = rec
                elif rec.get("impl") == "torch":
                    key = (rec["name"], rec.get("dtype", "float32"), bool(rec.get("compile")))
                    torch[key] = rec
                elif rec.get("impl") == "meta":
                    meta.append(rec)
    for rec in meta:
        print(f"<!-- {rec.get('detail', '')} -->")
    backend = next((r.get("backend") for r in burn.values() if r.get("backend")), "burn")
    tiny = any(r.get("tiny") for r in burn.values())
    print(f"| workload | burn median | burn first call | PyTorch eager | torch.compile | eager / burn |")
    print("|---|---|---|---|---|---|")
    for label, workload, tname, tdtype in ROWS:
        b = burn.get(workload)
        eager = torch.get((tname, tdtype, False)) if tname else None
        comp = torch.get((tname, tdtype, True)) if tname else None
        ratio = ""
        if b and eager and b.get("status", "ok") == "ok" and eager.get("status", "ok") == "ok":
            ratio = f"{eager['median_ms'] / b['median_ms']:.2f}"
        first = ms(b.get("first_ms")) if b and b.get("status", "ok") == "ok" else ""
        tcell = cell(eager) if tname else "(no PyTorch equivalent)"
        ccell = cell(comp) if tname else ""
        print(f"| {label} | {cell(b)} | {first} | {tcell} | {ccell} | {ratio} |")
    note = " Tiny shapes (--dry-run): plumbing only, not figures." if tiny else ""
    print(f"\nburn backend: {backend}.{note}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["/dev/stdin"])
