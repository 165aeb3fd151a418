#!/usr/bin/env python
"""Build the trained vgg16_bn-small (28x28 Fashion-MNIST) with quantune's whole pipeline into build/vgg16_bn-small:
the two-inference analysis, the plan of a policy, the mixed int8/FP32 module and the report (60_report.md).

    python scripts/build_vgg16_bn.py                              # x86_64, --policy accuracy:0.5
    python scripts/build_vgg16_bn.py --target aarch64 --policy top-k:2

Any other `quantune build` option passes through (`quantune build --help`).
"""
import sys

from quantune_mlir.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["build", "vgg16_bn-small", *sys.argv[1:]]))
