#!/usr/bin/env python3
"""Why prompts fail: reads an `evaluate` run's results.jsonl (standard library only).

    python3 tools/eval/failures.py eval/base-220 [--stage 0]

Prints the first failed check per prompt, the background hits per colour
asked for, then splits the "objects" failures
(the count is right but some object is not what the prompt asked for) into
unrecognised shapes (no template fits the blob), wrong shapes, wrong colours
and wrong sizes or places, with the shape confusions; and splits the count
failures into extra and missing objects, naming what the extra ones were.
"""
import argparse
import collections
import json
import pathlib


def load(run, stage):
    rows = []
    for line in (pathlib.Path(run) / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        if "constraints" not in r:
            raise SystemExit(f"{run}: results.jsonl predates recorded constraints; re-run evaluate")
        rows.append((r, r["stages"][stage]))
    return rows


def kind(failure):
    return failure.split(" ")[0] if failure else "pass"


def objects_failure(groups, objects):
    """Classifies an objects failure and returns (class, shape confusions)."""
    if any(o["shape"] is None for o in objects):
        return "unrecognised shape", []
    want_colours, want_shapes = collections.Counter(), collections.Counter()
    for g in groups:
        want_shapes[g["shape"]] += g["count"]
        if g.get("colour"):
            want_colours[g["colour"]] += g["count"]
    got_colours = collections.Counter(o["colour"] for o in objects)
    got_shapes = collections.Counter(o["shape"] for o in objects)
    shapes_ok = want_shapes == got_shapes
    colours_ok = all(got_colours[c] >= n for c, n in want_colours.items())
    if shapes_ok and colours_ok:
        return "size, place or pairing", []
    if colours_ok:
        missing = want_shapes - got_shapes
        extra = got_shapes - want_shapes
        pairs = list(zip(sorted(missing.elements()), sorted(extra.elements())))
        return "wrong shape", pairs
    if shapes_ok:
        return "wrong colour", []
    return "shape and colour", []


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="+", help="evaluate output directories")
    ap.add_argument("--stage", type=int, default=0, help="0 = base, 1 = super-resolution")
    args = ap.parse_args()
    for run in args.run:
        rows = load(run, args.stage)
        kinds = collections.Counter(kind(s["failure"]) for _, s in rows)
        print(f"== {run}: {kinds['pass']}/{len(rows)} pass; first failures:",
              ", ".join(f"{k} {n}" for k, n in kinds.most_common() if k != "pass"))
        asked, hit = collections.Counter(), collections.Counter()
        for r, s in rows:
            if want := r["constraints"].get("background"):
                asked[want] += 1
                hit[want] += s["detection"]["background"] == want
        print("  backgrounds asked -> found:", ", ".join(f"{c} {hit[c]}/{n}" for c, n in sorted(asked.items())))
        classes, confusions, extra, missing = (collections.Counter() for _ in range(4))
        for r, s in rows:
            groups, objects = r["constraints"]["groups"], s["detection"]["objects"]
            k = kind(s["failure"])
            if k == "Objects":
                c, pairs = objects_failure(groups, objects)
                classes[c] += 1
                confusions.update(f"{a} -> {b}" for a, b in pairs)
            elif k == "ObjectCount":
                want = sum(g["count"] for g in groups)
                if len(objects) > want:
                    asked_shapes = {g["shape"] for g in groups}
                    same = sum(o["shape"] in asked_shapes for o in objects)
                    extra["a requested shape again" if same > want else "another shape"] += 1
                else:
                    missing[f"{want - len(objects)} missing"] += 1
        print("  objects failures:", dict(classes.most_common()))
        print("  shape confusions (asked -> drawn):", dict(confusions.most_common()))
        print("  too many objects:", dict(extra.most_common()), " too few:", dict(missing.most_common()))


if __name__ == "__main__":
    main()
