// RUN: quantune-opt --quantune-apply-plan=plan=%S/Inputs/rounded_weights_plan.json %s | FileCheck %s
// RUN: not quantune-opt --quantune-apply-plan=plan=%S/Inputs/rounded_weights_other_plan.json %s 2>&1 | FileCheck %s --check-prefix=MISSING

// A plan naming rounded weights: the layer they were rounded for takes them (49 and -13 where rounding 0.5 / 0.01
// and -0.25 / 0.02 to nearest gives 50 and -12); a layer the file does not hold rounds to nearest.
// CHECK-LABEL: func.func @main
// CHECK: arith.constant dense<{{\[}}{{\[}}{{\[}}[49]]], {{\[}}{{\[}}[-13]]]]> : tensor<2x1x1x1xi8>
// CHECK: linalg.conv_2d_nchw_fchw {quantune.layer = "conv"
// CHECK: arith.constant dense<{{\[}}{{\[}}{{\[}}[25]], {{\[}}[50]]], {{\[}}{{\[}}[75]], {{\[}}[100]]]]> : tensor<2x2x1x1xi8>
// CHECK: linalg.conv_2d_nchw_fchw {quantune.layer = "conv2"

// MISSING: rounded_weights_0000000000000000.npz: cannot read the plan's rounded weights
// MISSING-SAME: run the analysis (or `quantune quantize`) again to write them
func.func @main(%x: tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32> {
  %zero = arith.constant 0.0 : f32
  %w = arith.constant dense<[[[[0.5]]], [[[-0.25]]]]> : tensor<2x1x1x1xf32>
  %e = tensor.empty() : tensor<1x2x4x4xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %c = linalg.conv_2d_nchw_fchw {quantune.layer = "conv", dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32>) outs(%f : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %w2 = arith.constant dense<[[[[0.25]], [[0.5]]], [[[0.75]], [[1.0]]]]> : tensor<2x2x1x1xf32>
  %e2 = tensor.empty() : tensor<1x2x4x4xf32>
  %f2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %c2 = linalg.conv_2d_nchw_fchw {quantune.layer = "conv2", dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%c, %w2 : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) outs(%f2 : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  return %c2 : tensor<1x2x4x4xf32>
}
