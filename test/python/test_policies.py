"""Policies on a synthetic sensitivity list against golden results."""
import pytest

from quantune_mlir.analysis.metrics import LayerMetrics
from quantune_mlir.decision.plan import PrecisionPlan
from quantune_mlir.decision.policies import (Policy, accuracy_budget, budget_walk, first_and_last, fraction,
                                             latency_budget, model_bytes, parse_policy, plan_keeping_fp32, random_layers, size_budget,
                                             sqnr_threshold, top_k)
from quantune_mlir.errors import QuantuneError
from quantune_mlir.layers import LayerInfo, LayerTable

TABLE = LayerTable("net", (LayerInfo("stem", "conv", (1, 3, 8, 8), (1, 4, 8, 8), (4, 3, 3, 3), 108),
                           LayerInfo("body", "conv", (1, 4, 8, 8), (1, 4, 8, 8), (4, 4, 3, 3), 144),
                           LayerInfo("proj", "conv", (1, 4, 8, 8), (1, 8, 8, 8), (8, 4, 1, 1), 32),
                           LayerInfo("fc", "linear", (1, 8), (1, 10), (10, 8), 80)))
RANKED = ["body", "fc", "stem", "proj"]  # most sensitive first
METRICS = [LayerMetrics("stem", 40.0, 1e-5, 31.0, 1e-3), LayerMetrics("body", 38.0, 1e-5, 18.0, 1e-2),
           LayerMetrics("proj", 45.0, 1e-6, 35.0, 1e-4), LayerMetrics("fc", 39.0, 1e-5, 24.5, 1e-2)]


def test_top_k_and_fraction():
    assert top_k(RANKED, 0) == [] and top_k(RANKED, 2) == ["body", "fc"]
    assert fraction(RANKED, 0.5) == ["body", "fc"] and fraction(RANKED, 0.3) == ["body", "fc"]
    assert fraction(RANKED, 0.01) == ["body"] and fraction(RANKED, 1.0) == RANKED and fraction(RANKED, 0.0) == []
    with pytest.raises(QuantuneError, match=r"top-k: k must lie in \[0, 4\] \(the model's layers\), got 5"):
        top_k(RANKED, 5)
    with pytest.raises(QuantuneError, match=r"fraction: the share of FP32 layers must lie in \[0, 1\], got 1.5"):
        fraction(RANKED, 1.5)


def test_sqnr_threshold_keeps_the_layers_below_it_in_sensitivity_order():
    assert sqnr_threshold(RANKED, METRICS, 25.0) == ["body", "fc"]
    assert sqnr_threshold(RANKED, METRICS, 10.0) == []
    with pytest.raises(QuantuneError, match=r"sqnr threshold: no metrics for layer 'fc'"):
        sqnr_threshold(RANKED, METRICS[:2], 25.0)


def test_size_budget_walks_the_list_and_skips_what_does_not_fit():
    assert model_bytes(TABLE, []) == 364 and model_bytes(TABLE, ["body"]) == 364 + 3 * 144
    assert size_budget(RANKED, TABLE, 364) == []
    # body (+432) fits in 364 + 500; fc (+240) would not, stem (+324) neither, proj (+96) does
    assert size_budget(RANKED, TABLE, 364 + 500) == ["body"]
    assert size_budget(RANKED, TABLE, 364 + 540) == ["body", "proj"]
    assert size_budget(RANKED, TABLE, 4 * 364) == RANKED
    with pytest.raises(QuantuneError, match=r"size budget: 100 bytes is below the all-int8 model's 364 bytes"):
        size_budget(RANKED, TABLE, 100)


def test_plan_keeping_fp32():
    plan = plan_keeping_fp32(PrecisionPlan.uniform(TABLE, "int8"), ["body", "fc"])
    assert plan.int8_layers() == ("stem", "proj") and plan.layers["fc"].precision == "fp32"
    with pytest.raises(QuantuneError, match=r"net has no layer 'head'"):
        plan_keeping_fp32(PrecisionPlan.uniform(TABLE, "int8"), ["head"])


def test_latency_budget_walks_the_list_with_the_profiled_costs():
    costs = {"body": (3.0, 1.0), "fc": (0.5, 0.4), "stem": (2.0, 0.5), "proj": (1.0, 0.2)}  # (fp32, int8) ms
    assert latency_budget(RANKED, costs, 5.0, 5.0) == []
    # body +2.0 fits in 7.5, fc +0.1 too, stem +1.5 would not, proj +0.8 neither (7.9)
    assert latency_budget(RANKED, costs, 5.0, 7.5) == ["body", "fc"]
    assert latency_budget(RANKED, costs, 5.0, 8.0) == ["body", "fc", "proj"]
    with pytest.raises(QuantuneError, match=r"latency budget: 4\.000 ms is below the all-int8 build's 5\.000 ms"):
        latency_budget(RANKED, costs, 5.0, 4.0)
    with pytest.raises(QuantuneError, match=r"latency budget: the profile has no cost for layer 'fc'"):
        latency_budget(RANKED, {"body": (1.0, 1.0)}, 5.0, 6.0)


def test_accuracy_budget_walks_until_the_drop_fits_and_counts_its_evaluations():
    accuracy_with = {0: 88.0, 1: 89.2, 2: 89.8, 3: 89.9}  # FP32: 90.0
    walk = accuracy_budget(RANKED, lambda fp32: accuracy_with[len(fp32)], 90.0, 0.5)
    assert walk.fp32_layers == ["body", "fc"] and walk.evaluations == 3
    assert walk.trace == [(0, 88.0), (1, 89.2), (2, 89.8)]
    assert accuracy_budget(RANKED, lambda fp32: 90.0, 90.0, 0.0).evaluations == 1
    # nothing short of all FP32 meets it: the walk ends there without evaluating that build
    assert accuracy_budget(RANKED, lambda fp32: 0.0, 90.0, 0.5).fp32_layers == RANKED
    with pytest.raises(QuantuneError, match=r"accuracy budget: the allowed drop must be >= 0"):
        accuracy_budget(RANKED, lambda fp32: 0.0, 90.0, -1)


def test_a_budget_walk_reaches_any_measure_it_is_given():
    """agreement:PCT and output-sqnr:DB walk the list as the accuracy budget does, against a fixed target."""
    sqnr_with = {0: 14.0, 1: 14.5, 2: 21.0}
    walk = budget_walk(RANKED, lambda fp32: sqnr_with[len(fp32)], 20.0)
    assert walk.fp32_layers == ["body", "fc"] and walk.trace == [(0, 14.0), (1, 14.5), (2, 21.0)]
    assert budget_walk(RANKED, lambda fp32: 97.5, 97.0).fp32_layers == []


def test_baselines():
    layers = ["a", "b", "c", "d", "e"]
    assert first_and_last(layers, 0) == [] and first_and_last(layers, 1) == ["a"]
    assert first_and_last(layers, 2) == ["a", "e"] and first_and_last(layers, 3) == ["a", "e", "b"]
    draw = random_layers(layers, 2, seed=1)
    assert draw == random_layers(layers, 2, seed=1) and len(set(draw)) == 2 and set(draw) <= set(layers)
    assert len({tuple(random_layers(layers, 2, seed)) for seed in range(10)}) > 1


@pytest.mark.parametrize("text, policy", [("top-k:2", Policy("top-k", 2)), ("fraction:0.1", Policy("fraction", 0.1)),
                                          ("accuracy:0.5", Policy("accuracy", 0.5)), ("size:2M", Policy("size", 2e6)),
                                          ("size:300k", Policy("size", 3e5)), ("latency:4.5", Policy("latency", 4.5)),
                                          ("agreement:97", Policy("agreement", 97)),
                                          ("output-sqnr:25", Policy("output-sqnr", 25)),
                                          ("all-int8", Policy("all-int8"))])
def test_policy_spellings(text, policy):
    assert parse_policy(text) == policy


@pytest.mark.parametrize("text", ["top-k", "best:3", "top-k:1.5", "accuracy:2M", "sqnr:-3"])
def test_bad_policy_spellings_name_the_forms(text):
    with pytest.raises(QuantuneError, match=rf"--policy {text}: .*top-k"):
        parse_policy(text)


@pytest.mark.parametrize("text, expected", [("agreement:101", r"a share of the images in \(0, 100\] %"),
                                            ("agreement:0", r"a share of the images in \(0, 100\] %"),
                                            ("output-sqnr:0", r"a positive number of dB, e.g. output-sqnr:25")])
def test_a_budget_out_of_range_says_what_the_policy_takes(text, expected):
    with pytest.raises(QuantuneError, match=rf"--policy {text}: {text.split(':')[0]} takes {expected}"):
        parse_policy(text)


def test_a_policy_moves_past_a_plan_iree_compile_rejects(monkeypatch, tmp_path):
    """The decision logic alone: which plans the compiler rejects is given here (the fallback that compiles such
    plans, and the error that names their layers, run the real iree-compile in test_plan_space.py)."""
    from types import SimpleNamespace

    from quantune_mlir import pipeline
    from quantune_mlir.quantize import PlanCompileError

    rejected = [frozenset(), frozenset({"body"})]
    built = []

    def rewrite_and_compile(build_dir, plan, *args):
        fp32 = frozenset(layer for layer, chosen in plan.layers.items() if chosen.precision == "fp32")
        if fp32 in rejected:
            raise PlanCompileError(f"the plan keeping {sorted(fp32)} does not compile", tuple(fp32))
        built.append(fp32)
        return SimpleNamespace(plan=plan)

    monkeypatch.setattr(pipeline, "rewrite_and_compile", rewrite_and_compile)
    analysis = SimpleNamespace(plan=PrecisionPlan.uniform(TABLE, "int8"),
                               sensitivity=SimpleNamespace(ranked=RANKED))
    decision = {}
    chosen, _ = pipeline._compile_or_move_on(SimpleNamespace(path=tmp_path), analysis, [], parse_policy("top-k:0"),
                                             decision, pipeline.BuildOptions())
    assert chosen == ["body", "fc"] and built == [frozenset(chosen)]
    assert [p["fp32_layers"] for p in decision["uncompilable_plans"]] == [[], ["body"]]
    with pytest.raises(PlanCompileError, match="does not compile"):
        pipeline._compile_or_move_on(SimpleNamespace(path=tmp_path), analysis, [], parse_policy("all-int8"), {},
                                     pipeline.BuildOptions())
