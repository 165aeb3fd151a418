"""Evaluation metrics on known answers, and eval runs against real builds."""
import subprocess

import numpy as np
import pytest

from quantune_mlir import api
from quantune_mlir.data import LabelledData
from quantune_mlir.analysis.metrics import SQNR_CAP_DB
from quantune_mlir.errors import QuantuneError
from quantune_mlir.evaluation import Predictor, evaluate, paired_comparison


def test_top1_and_agreement_on_a_known_predictor():
    inputs = np.zeros((6, 2), np.float32)
    labels = np.array([0, 1, 0, 1, 0, 1])
    always_zero = Predictor("zero", (1, 2), 2, lambda b: np.tile([[1.0, 0.0]], (len(b), 1)))
    always_one = Predictor("one", (1, 2), 2, lambda b: np.tile([[0.0, 1.0]], (len(b), 1)))
    result = evaluate(always_zero, LabelledData("d", inputs, labels), compare=always_one, batch_size=4)
    assert result.top1 == 50.0 and result.agreement_top1 == 0.0 and result.images == 6
    same = evaluate(always_zero, LabelledData("d", inputs, labels), compare=always_zero)
    assert same.agreement_top1 == 100.0 and same.output_sqnr_db == SQNR_CAP_DB


def _classes_with(only_first: int, only_second: int, both: int = 5, neither: int = 4):
    """Predictions of two classifiers of 3 classes with the given counts of images right by one of them only."""
    labels = np.zeros(only_first + only_second + both + neither, np.int64)
    first, second = labels.copy(), labels.copy()
    first[only_first + only_second + both:] = second[only_first + only_second + both:] = 1  # neither right
    first[only_first:only_first + only_second] = 2
    second[:only_first] = 1
    return first, second, labels


@pytest.mark.parametrize("only_first, only_second, p_value", [
    (0, 0, 1.0),  # identical accuracy and identical mistakes: nothing to tell them apart
    (10, 0, 2 / 2 ** 10),  # all 10 discordant images one way: 2 x 0.5^10
    (3, 7, 2 * (1 + 10 + 45 + 120) / 2 ** 10),  # 2 x P(X <= 3), X ~ Binomial(10, 0.5)
    (7, 3, 2 * (1 + 10 + 45 + 120) / 2 ** 10),  # two-sided: symmetric
    (5, 5, 1.0),
])
def test_paired_comparison_is_the_exact_mcnemar_test(only_first, only_second, p_value):
    result = paired_comparison(*_classes_with(only_first, only_second))
    assert (result.only_first, result.only_second) == (only_first, only_second)
    assert result.p_value == pytest.approx(p_value, rel=1e-12)


def test_paired_comparison_refuses_predictions_of_other_images():
    first, second, labels = _classes_with(2, 1)
    with pytest.raises(QuantuneError, match="same images"):
        paired_comparison(first, second[:-1], labels)


def test_variants_refuse_to_compare_accuracy_without_labels(tmp_path):
    from quantune_mlir.build_dir import BuildDir
    from quantune_mlir.pipeline import BuildOptions, Variants
    unlabelled = LabelledData("my-images", np.zeros((2, 1, 28, 28), np.float32), None)
    variants = Variants(BuildDir(tmp_path), None, unlabelled, None, BuildOptions())
    with pytest.raises(QuantuneError, match="my-images has no labels"):
        variants.compare(["conv1"], ["fc"])


def test_vmfb_agrees_with_pytorch_on_fashion_mnist(tmp_path):
    api.import_model("squeezenet1_1-small", build_dir=tmp_path)
    vmfb = api.compile_model(tmp_path, "x86_64")
    result = api.evaluate_model(str(vmfb), limit=200, compare="squeezenet1_1-small")
    assert result.images == 200 and result.agreement_top1 == 100.0 and result.output_sqnr_db > 100
    torch_result = api.evaluate_model("squeezenet1_1-small", limit=200)
    assert result.top1 == pytest.approx(torch_result.top1, abs=0.01)


def test_eval_cli(tmp_path):
    out = subprocess.run(["quantune", "eval", "mobilenet_v2-small", "--limit", "100"], capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith("mobilenet_v2-small on fashion-mnist-test[100] (100 images), top-1 ")
    np.savez(tmp_path / "wrong.npz", inputs=np.zeros((2, 1, 32, 32), np.float32), labels=np.array([0, 1]))
    bad = subprocess.run(["quantune", "eval", "mobilenet_v2-small", "--data", tmp_path / "wrong.npz"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "inputs of shape (1, 32, 32) do not fit the model's input (1, 28, 28)" in bad.stderr


def test_onnx_models_are_evaluated_after_compiling():
    from quantune_mlir import QuantuneError
    with pytest.raises(QuantuneError, match=r"m\.onnx: evaluate ONNX models after compiling them"):
        api.predictor("m.onnx")
