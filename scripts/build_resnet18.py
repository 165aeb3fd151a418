#!/usr/bin/env python
"""Build the trained resnet18-small (28x28 Fashion-MNIST) with quantune's whole pipeline into build/resnet18-small:
the two-inference analysis, the plan of a policy, the mixed int8/FP32 module and the report (60_report.md).

    python scripts/build_resnet18.py                              # x86_64, --policy accuracy:0.5
    python scripts/build_resnet18.py --target aarch64 --policy top-k:2

Any other `quantune build` option passes through (`quantune build --help`).
"""
import sys

from quantune_mlir.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["build", "resnet18-small", *sys.argv[1:]]))
