#!/usr/bin/env python3
"""Train the small-image (1x28x28) configuration of the zoo models on Fashion-MNIST, on the CPU, seeded.

Writes quantune_mlir/zoo/weights/<model>-small.pt (a state_dict) and records, in manifest.json beside it, the
recipe, the seed, the wall time, the PyTorch test top-1 and the file's sha256.

    python scripts/train_zoo.py                       # all five, the recorded recipe
    python scripts/train_zoo.py --models resnet18 --epochs 5
    python scripts/train_zoo.py --out /tmp/rerun            # a rerun beside the shipped checkpoints, to compare

Needs Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) for the 60k training images.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from quantune_mlir.data import fashion_mnist  # noqa: E402
from quantune_mlir.zoo import MODEL_NAMES, WEIGHTS_DIR, zoo_model  # noqa: E402

log = logging.getLogger("train_zoo")

RECIPE = {"optimizer": "SGD, momentum 0.9, nesterov", "peak_lr": 0.1, "schedule": "one-cycle (30 % warm-up)",
          "weight_decay": 5e-4, "batch_size": 128, "augmentation": "random crop 28 from 2-pixel zero padding, "
          "horizontal flip"}
# Epochs per model, each about 1-1.5 min on 2 cores: as many as each needed to pass 89 %.
EPOCHS = {"vgg16_bn": 4, "resnet18": 3, "mobilenet_v2": 8, "resnet50": 5, "squeezenet1_1": 10}
# ResNet50 (width 0.25) swings by several points between epochs at 0.1 (89.3 % after 3 epochs, 87.6 % after 5).
# SqueezeNet has no batch norm: with SGD at 0.1 its final ReLU dies in the first steps (the loss stays at
# ln(10)), at 0.01-0.03 it diverges after an epoch or two; AdamW trains it.
PEAK_LR = {"squeezenet1_1": 0.003, "resnet50": 0.05}
ADAMW = {"squeezenet1_1"}


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    dy, dx = torch.randint(0, 5, (2,), generator=generator).tolist()
    x = padded[:, :, dy:dy + 28, dx:dx + 28]  # one offset per batch: cheap and enough for 28x28 clothing
    flip = torch.rand(n, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def evaluate(model: torch.nn.Module, inputs: np.ndarray, labels: np.ndarray) -> float:
    model.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(inputs), 1000):
            logits = model(torch.from_numpy(inputs[start:start + 1000]))
            correct += int((logits.argmax(1).numpy() == labels[start:start + 1000]).sum())
    return 100.0 * correct / len(inputs)


def train(name: str, epochs: int, seed: int, train_data, test_data, out_dir: Path = WEIGHTS_DIR) -> dict:
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    peak_lr = PEAK_LR.get(name, RECIPE["peak_lr"])
    model = zoo_model(name, "small").build()
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": RECIPE["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    if name in ADAMW:
        optimizer = torch.optim.AdamW(groups, lr=peak_lr)
    else:
        optimizer = torch.optim.SGD(groups, lr=peak_lr, momentum=0.9, nesterov=True)
    batch = RECIPE["batch_size"]
    steps = epochs * (len(train_data.inputs) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, peak_lr, total_steps=steps, pct_start=0.3)
    inputs, labels = torch.from_numpy(train_data.inputs), torch.from_numpy(train_data.labels)
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(inputs), generator=generator)
        total_loss = 0.0
        for step in range(len(inputs) // batch):
            index = order[step * batch:(step + 1) * batch]
            loss = torch.nn.functional.cross_entropy(model(augment(inputs[index], generator)), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total_loss += float(loss)
            if step % 100 == 0:
                log.info("%s epoch %d step %d/%d loss %.3f (%.0f s)", name, epoch + 1, step,
                         len(inputs) // batch, float(loss), time.perf_counter() - started)
        accuracy = evaluate(model, test_data.inputs, test_data.labels)
        log.info("%s epoch %d: mean loss %.3f, test top-1 %.2f %%", name, epoch + 1,
                 total_loss / (len(inputs) // batch), accuracy)
    seconds = time.perf_counter() - started
    path = out_dir / f"{name}-small.pt"
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".pt.partial")
    torch.save(model.state_dict(), partial)
    partial.replace(path)
    return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "test_top1_pytorch": round(accuracy, 2), "epochs": epochs, "seed": seed,
            "train_seconds": round(seconds), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "recipe": {**RECIPE, "peak_lr": peak_lr, "epochs": epochs,
                       **({"optimizer": "AdamW"} if name in ADAMW else {})}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(EPOCHS))
    parser.add_argument("--epochs", type=int, help="for every model (default: the recorded EPOCHS per model)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR,
                        help="where the checkpoints and manifest.json go (another folder to check a rerun)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    train_data, test_data = fashion_mnist("train"), fashion_mnist("test")
    manifest_path = args.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    for name in args.models.split(","):
        if name not in MODEL_NAMES:
            parser.error(f"unknown model {name}: choose from {', '.join(MODEL_NAMES)}")
        manifest[f"{name}-small"] = train(name, args.epochs or EPOCHS[name], args.seed, train_data, test_data,
                                          args.out)
        manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
        log.info("%s: %s", name, manifest[f"{name}-small"])


if __name__ == "__main__":
    main()
