# lit configuration: the FileCheck tests of every quantune pass live in test/lit.
import os
import shutil

import lit.formats

config.name = "quantune"
config.test_format = lit.formats.ShTest()
config.suffixes = [".mlir"]
# Run as `lit test/lit`; build folders and virtual environments hold .mlir files that are not tests.
config.excludes = ["Inputs", "build", ".venv", "venv"]
config.environment["PATH"] = os.environ.get("PATH", "")

for tool in ("quantune-opt", "filecheck"):
    if shutil.which(tool) is None:
        lit_config.fatal(f"{tool} is not on PATH: install the test extras with `pip install -e '.[test]'`")
# LLVM spells it FileCheck; the Python port installs it as filecheck.
config.substitutions.append(("FileCheck", "filecheck"))
