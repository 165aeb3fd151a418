"""The zoo: torchvision's module names (so torchvision checkpoints load with strict=True), both configurations."""
import json
from pathlib import Path

import pytest
import torch

from quantune_mlir import QuantuneError
from quantune_mlir.zoo import MODEL_NAMES, parse_zoo_id, zoo_model

GOLDEN = json.loads((Path(__file__).parents[1] / "data" / "torchvision_state_dicts.json").read_text())


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_imagenet_state_dict_matches_torchvision(name):
    model = zoo_model(name, "imagenet").build()
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert list(ours) == list(GOLDEN[name])  # same keys, same order
    assert ours == GOLDEN[name]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_torchvision_shaped_checkpoint_loads_strictly(name):
    checkpoint = {k: torch.zeros(shape) if shape else torch.tensor(0) for k, shape in GOLDEN[name].items()}
    zoo_model(name, "imagenet").build().load_state_dict(checkpoint, strict=True)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_small_configuration(name):
    zoo = zoo_model(name, "small")
    model = zoo.build()
    assert zoo.input_shape == (1, 1, 28, 28) and zoo.id == f"{name}-small"
    with torch.no_grad():
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    # same module tree as torchvision, so the same key names
    assert list(model.state_dict()) == list(GOLDEN[name])


def test_zoo_ids_and_errors():
    assert parse_zoo_id("resnet18") == zoo_model("resnet18", "imagenet")
    assert parse_zoo_id("mobilenet_v2-small").config == "small"
    with pytest.raises(QuantuneError, match=r"unknown configuration 'tiny' for resnet18: choose one of imagenet, small"):
        parse_zoo_id("resnet18-tiny")
