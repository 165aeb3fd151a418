"""The instrumented FP32 build returns every layer's output, and each matches PyTorch's module output."""
import torch

from quantune_mlir import api
from quantune_mlir.importers.torch_frontend import fold_batch_norm
from quantune_mlir.zoo import parse_zoo_id


def _torch_layer_outputs(model_id, x):
    folded = fold_batch_norm(api.zoo_reference(parse_zoo_id(model_id)), model_id)
    captured = {}
    for name, module in folded.named_modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            module.register_forward_hook(lambda m, i, o, name=name: captured.__setitem__(name, o.detach().clone().numpy()))  # before in-place ReLUs
    with torch.no_grad():
        logits = folded(torch.from_numpy(x))
    return logits.numpy(), captured


def test_every_layer_output_matches_pytorch(tmp_path):
    model_id = "mobilenet_v2-small"
    imported = api.import_model(model_id, build_dir=tmp_path)
    vmfb = api.instrument(tmp_path, "x86_64")
    assert (tmp_path / "10_instrumented.mlirbc").is_file() and vmfb.name == "11_instrumented_x86_64.vmfb"
    x = api.random_inputs(imported.inputs, seed=4)
    (logits,), layers = api.layer_outputs(api.load_module(vmfb), imported.layers, x)
    expected_logits, expected = _torch_layer_outputs(model_id, x[0])
    assert api.relative_l2(logits, expected_logits) < 1e-5
    assert list(layers) == list(imported.layers.ids) and len(layers) == 53
    for layer_id, activation in layers.items():
        assert activation.shape == expected[layer_id].shape, layer_id
        assert api.relative_l2(activation, expected[layer_id]) < 1e-5, layer_id


def test_missing_entry_function_is_named():
    import pytest

    from quantune_mlir import QuantuneError
    from quantune_mlir.mlir import ir
    from quantune_mlir.rewrite import run_passes
    from quantune_mlir.rewrite.expose_layer_outputs import ExposeLayerOutputs
    module = ir.Module.parse("func.func @other() { return }", ir.Context())
    with pytest.raises(QuantuneError, match=r"the module has no function @main"):
        run_passes(module, [ExposeLayerOutputs()])
