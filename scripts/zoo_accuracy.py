#!/usr/bin/env python3
"""Fashion-MNIST test top-1 of the shipped small-image checkpoints: the IREE x86_64 build (what `quantune eval`
reports for the .vmfb) beside PyTorch eager, with their agreement. Prints a Markdown table. With --int8, also the
all-int8 build `quantune quantize --all-int8` makes (min/max calibration on 64 training images) against eager.

    python scripts/zoo_accuracy.py [--models resnet18,...] [--limit N] [--int8] [--build build/zoo_accuracy]
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from quantune_mlir import api  # noqa: E402
from quantune_mlir.zoo import MODEL_NAMES  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODEL_NAMES))
    parser.add_argument("--limit", type=int, help="a seeded random subset instead of all 10k test images")
    parser.add_argument("--int8", action="store_true", help="also the all-int8 build against PyTorch eager")
    parser.add_argument("--build", type=Path, default=REPO / "build" / "zoo_accuracy")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows, int8_rows = [], []
    for name in args.models.split(","):
        model_id = f"{name}-small"
        build = args.build / model_id
        api.import_model(model_id, build_dir=build)
        vmfb = api.compile_model(build, "x86_64")
        iree = api.evaluate_model(str(vmfb), limit=args.limit, compare=model_id)
        torch_top1 = api.evaluate_model(model_id, limit=args.limit).top1
        rows.append(f"| {model_id} | {iree.top1:.2f} % | {torch_top1:.2f} % | {iree.top1 - torch_top1:+.2f} pp | "
                    f"{iree.agreement_top1:.2f} % | {iree.output_sqnr_db:.1f} dB | {iree.images} |")
        print(f"{model_id}: {iree.describe()}", file=sys.stderr)
        if args.int8:
            int8 = api.evaluate_model(str(api.quantize_model(build, "x86_64").vmfb), limit=args.limit,
                                      compare=model_id)
            int8_rows.append(f"| {model_id} | {int8.top1:.2f} % | {int8.top1 - torch_top1:+.2f} pp | "
                             f"{int8.agreement_top1:.2f} % | {int8.output_sqnr_db:.1f} dB | {int8.images} |")
            print(f"{model_id} all-int8: {int8.describe()}", file=sys.stderr)
    print("| model | IREE x86_64 top-1 | PyTorch top-1 | difference | top-1 agreement | output SQNR | images |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    if int8_rows:
        print("\n| model | all-int8 top-1 | against PyTorch | top-1 agreement | output SQNR | images |")
        print("|---|---:|---:|---:|---:|---:|")
        print("\n".join(int8_rows))


if __name__ == "__main__":
    main()
