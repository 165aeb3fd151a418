"""60_report.md: the build report (60_report.json) as a page a person reads."""
from __future__ import annotations

from pathlib import Path


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def _pct(value) -> str:
    return "-" if value is None else f"{value:.2f} %"


def report_markdown(report: dict) -> str:
    evaluation, analysis = report["evaluation"], report["analysis"]
    lines = [f"# {report['model']} for {report['target']}: {len(report['fp32_layers'])} of {report['layers']} "
             f"layers FP32 ({report['policy']})", ""]
    decision = report.get("decision") or {}
    if "evaluations" in decision:
        what, unit = {"top1": ("top-1", "%"), "agreement": ("agreement with FP32's top-1 class", "%"),
                      "output_sqnr_db": ("output SQNR against FP32", "dB")}[decision["measure"]]
        fp32 = f"; FP32 top-1 {decision['fp32_top1']:.2f} %" if decision["measure"] == "top1" else ""
        lines += [f"The {report['policy']} budget took {decision['evaluations']} evaluation(s) of candidate builds "
                  f"to reach {what} of at least {decision['target']:.2f} {unit}{fp32}.", ""]
    if "estimated_ms" in decision:
        lines += [f"The latency budget estimated {decision['estimated_ms']:.3f} ms from per-layer costs profiled on the "
                  f"FP32 and all-int8 builds (all-int8 measured {decision['all_int8_ms']:.3f} ms); the mixed build "
                  f"measured {report['evaluation']['mixed']['latency_ms']:.3f} ms.", ""]
    lines += ["## Accuracy, agreement and latency", "",
              f"On {evaluation['data']} ({evaluation['images']} images), measured on {evaluation['measured_on']} "
              f"with {evaluation['threads']} thread(s), latency the median of {evaluation['latency_iterations']} "
              "runs.", ""]
    lines += _table(["build", "top-1", "same class as FP32", "output SQNR", "latency"], [
        [name, _pct(m["top1"]), _pct(m["agreement"]), f"{m['output_sqnr_db']:.1f} dB", f"{m['latency_ms']:.2f} ms"]
        for name, m in (("FP32", evaluation["fp32"]), ("all-int8", evaluation["all_int8"]),
                        ("mixed (this plan)", evaluation["mixed"]))])
    size = report["size"]
    lines += ["## Size", ""] + _table(["", "FP32", "all-int8", "mixed"], [
        ["weights"] + [f"{size['weights_bytes'][k] / 1e6:.2f} MB" for k in ("fp32", "all_int8", "mixed")],
        ["module (.vmfb)", f"{size['vmfb_bytes']['fp32'] / 1e6:.2f} MB", "-",
         f"{size['vmfb_bytes']['mixed'] / 1e6:.2f} MB"]])
    lines += ["## Sensitivity analysis", "",
              f"{analysis['inferences']} inferences of {analysis['samples']} calibration samples "
              f"({analysis['calibration_data']}) in {analysis['seconds']['ranking']:.1f} s (the chart: "
              f"{analysis['seconds']['plot']:.1f} s more); the score weighs weight SQNR, weight MSE, activation SQNR "
              f"and activation MSE {', '.join(f'{v:g}' for v in analysis['ratios'].values())}"
              f", on the {analysis['activation_error']} activation error (quantune_mlir/analysis/metrics.py).", ""]
    if report.get("one_at_a_time"):
        baseline = report["one_at_a_time"]
        lines += [f"The one-layer-at-a-time baseline took {baseline['inferences']} inferences and "
                  f"{baseline['seconds']:.1f} s: {baseline['analysis_speedup']:.1f}x the time.", ""]
    fp32_layers = set(report["fp32_layers"])
    lines += _table(["rank", "layer", "score", "weight SQNR", "activation SQNR (accumulated)", "local SQNR",
                     "activation MSE", "precision"], [
        [i + 1, f"`{e['layer']}`", f"{e['score']:.3f}", f"{e['weight_sqnr_db']:.1f} dB",
         f"{e['activation_sqnr_db']:.1f} dB",
         "-" if e["local_activation_sqnr_db"] is None else f"{e['local_activation_sqnr_db']:.1f} dB",
         f"{e['activation_mse']:.2e}", "FP32" if e["layer"] in fp32_layers else "int8"]
        for i, e in enumerate(analysis["ranked"])])
    if report["fp32_only_layers"]:
        lines += ["Always FP32 (cannot run int8): " + "; ".join(
            f"`{layer}`: {why}" for layer, why in report["fp32_only_layers"].items()), ""]
    if decision.get("uncompilable_plans"):
        lines += ["Plans iree-compile rejected, which the policy moved past: " + "; ".join(
            f"{len(p['fp32_layers'])} FP32 layer(s): {p['error']}" for p in decision["uncompilable_plans"]), ""]
    if report["compile_fallbacks"]:
        lines += ["Compiled again without speed-only flags after iree-compile rejected them (same values, other "
                  "speed): " + "; ".join(f"`{note['module']}` without {' '.join(note['dropped_flags'])} "
                                         f"({note['error']})" for note in report["compile_fallbacks"]), ""]
    if report["widened_weight_scales"]:
        lines += ["Weight scales widened so that the int32 bias fits (near-dead channels, as onnxruntime and TFLite "
                  "do): " + "; ".join(f"`{layer}`: {len(channels)} channel(s)"
                                      for layer, channels in report["widened_weight_scales"].items()), ""]
    if report["bias_corrected_layers"]:
        lines += [f"Bias correction: {len(report['bias_corrected_layers'])} int8 layer(s) have their bias shifted by "
                  "the mean error their int8 arithmetic adds on the calibration data (per channel; the values are in "
                  "the plan, `bias_correction`).", ""]
    if any(report["output_shifts"].values()):
        lines += ["Output shift: the bias of " + ", ".join(f"`{layer}`" for layer in report["output_shifts"]) +
                  ", whose results are the model's outputs, also takes " + ", ".join(
                      f"{100 * share:.0f} %" for share in report["output_shifts"].values()) +
                  " of the mean error the all-int8 analysis run left there (the share of its int8 layers this plan "
                  "keeps int8; `output_shifts` in the plan).", ""]
    if report["curve"]:
        lines += ["## Against the baselines", "", "Accuracy at equal numbers of FP32 layers (random: the mean of "
                  "its seeded draws).", ""]
        methods = list(dict.fromkeys(p["method"] for p in report["curve"]))
        ks = sorted({p["fp32_layers"] for p in report["curve"]})
        by = {(p["method"], p["fp32_layers"]): p for p in report["curve"]}
        lines += _table(["FP32 layers"] + methods, [[k] + [_pct(by[(m, k)]["top1"] if by[(m, k)]["top1"] is not None
                                                                else by[(m, k)]["agreement"]) for m in methods]
                                                     for k in ks])
    audit = report.get("audit")
    if audit:
        lines += ["## Kernel audit", "", f"{audit['target']}: {audit['dispatches_per_inference']} dispatches per "
                  "inference; verdicts " + ", ".join(f"{v}: {n}" for v, n in audit["verdicts"].items()) + ".", ""]
        if audit["planned_int8_not_integer"]:
            lines += ["**Planned int8 but not an integer kernel:** " + ", ".join(audit["planned_int8_not_integer"]),
                      ""]
    lines += ["## Plots", ""] + [f"![{name}]({Path(path).name})" for name, path in report["plots"].items()] + [""]
    lines += ["## How it was built", "", "iree-compile flags (FP32 / int8):", "", "```",
              " ".join(report["flags"]["fp32"]), " ".join(report["flags"]["int8"]), "```", ""]
    lines += ["Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()), ""]
    lines += ["Wall time: " + ", ".join(f"{k} {v:.1f} s" for k, v in report["seconds"].items()), ""]
    return "\n".join(lines)
