// RUN: not quantune-opt --quantune-apply-plan=plan=%S/Inputs/unknown_layer_plan.json %s 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: not quantune-opt --quantune-apply-plan=plan=%S/Inputs/uncalibrated_plan.json %s 2>&1 | FileCheck %s --check-prefix=UNCALIBRATED
// RUN: not quantune-opt --quantune-apply-plan=plan=%S/Inputs/no_such_plan.json %s 2>&1 | FileCheck %s --check-prefix=MISSING
// RUN: not quantune-opt --quantune-apply-plan='plan=%S/Inputs/calibrated_fc_plan.json strict=true' %S/Inputs/untransposed_linear.mlir 2>&1 | FileCheck %s --check-prefix=STRICT
// RUN: quantune-opt --quantune-apply-plan=plan=%S/Inputs/calibrated_fc_plan.json %S/Inputs/untransposed_linear.mlir 2>&1 | FileCheck %s --check-prefix=FALLBACK
// RUN: not quantune-opt --quantune-apply-plan=plan=%S/Inputs/calibrated_fc_plan.json %S/Inputs/nan_weight_linear.mlir 2>&1 | FileCheck %s --check-prefix=NAN

// UNKNOWN: error: {{.*}}unknown_layer_plan.json: layer 'fc1' is not in the model (did you mean fc?)
// UNCALIBRATED: error: layer 'fc' has no input quantization parameters in the plan: calibrate it first
// MISSING: error: {{.*}}no_such_plan.json: no such plan file
// A layer planned int8 that cannot be lowered: an error under strict, else a warning and the layer stays fp32.
// STRICT: error: layer 'fc' cannot run int8: its weight is not a transposed constant (expected the form both importers give nn.Linear) (drop --strict to keep it fp32 instead)
// FALLBACK: layer 'fc' cannot run int8: its weight is not a transposed constant {{.*}}; it stays fp32
// FALLBACK-NOT: quant.
// FALLBACK: linalg.matmul {quantune.layer = "fc"} ins(%arg0, %{{.*}} : tensor<2x3xf32>, tensor<3x4xf32>)
// NAN: error: layer 'fc': weights hold NaN or Inf
func.func @main(%x: tensor<2x3xf32>) -> tensor<2x4xf32> {
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0], [1.0, 0.5, 0.25]]> : tensor<4x3xf32>
  %e = tensor.empty() : tensor<3x4xf32>
  %wt = linalg.transpose ins(%w : tensor<4x3xf32>) outs(%e : tensor<3x4xf32>) permutation = [1, 0]
  %o = tensor.empty() : tensor<2x4xf32>
  %f = linalg.fill ins(%zero : f32) outs(%o : tensor<2x4xf32>) -> tensor<2x4xf32>
  %m = linalg.matmul {quantune.layer = "fc"} ins(%x, %wt : tensor<2x3xf32>, tensor<3x4xf32>) outs(%f : tensor<2x4xf32>) -> tensor<2x4xf32>
  return %m : tensor<2x4xf32>
}
