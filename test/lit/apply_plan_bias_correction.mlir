// RUN: quantune-opt --quantune-apply-plan=plan=%S/Inputs/bias_correction_plan.json %s | FileCheck %s
// RUN: not quantune-opt --quantune-apply-plan=plan=%S/Inputs/bias_correction_count_plan.json %s 2>&1 | FileCheck %s --check-prefix=COUNT
// RUN: not quantune-opt --quantune-apply-plan=plan=%S/Inputs/unbiased_conv_plan.json %S/Inputs/unbiased_conv.mlir 2>&1 | FileCheck %s --check-prefix=NOBIAS

// A plan's bias_correction is added to the layer's FP32 bias: the conv's broadcast and the linear layer's bias
// add read a new constant (bias + correction), and the fp32 conv that shared the conv's bias constant keeps it.
// CHECK-LABEL: func.func @main
// CHECK-DAG: %[[SHARED:.*]] = arith.constant dense<[1.000000e+00, 2.000000e+00]> : tensor<2xf32>
// CHECK-DAG: %[[CONV_BIAS:.*]] = arith.constant dense<[1.250000e+00, 1.500000e+00]> : tensor<2xf32>
// CHECK: linalg.broadcast ins(%[[CONV_BIAS]] : tensor<2xf32>)
// CHECK: linalg.conv_2d_nchw_fchw {quantune.layer = "conv"
// CHECK: linalg.broadcast ins(%[[SHARED]] : tensor<2xf32>)
// CHECK: linalg.conv_2d_nchw_fchw {quantune.layer = "other"
// CHECK: %[[FC_BIAS:.*]] = arith.constant dense<[6.250000e-01, -2.500000e-01]> : tensor<2xf32>
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %[[FC_BIAS]] : tensor<1x2xf32>, tensor<2xf32>)

// COUNT: error: layer 'conv': the plan gives 1 bias corrections for 2 output channels
// NOBIAS: error: layer 'conv': the plan corrects the bias of a layer that adds none; drop its bias_correction
func.func @main(%x: tensor<1x1x4x4xf32>) -> tensor<1x2xf32> {
  %zero = arith.constant 0.0 : f32
  %bias = arith.constant dense<[1.0, 2.0]> : tensor<2xf32>
  %w = arith.constant dense<[[[[0.5]]], [[[-0.25]]]]> : tensor<2x1x1x1xf32>
  %e = tensor.empty() : tensor<1x2x4x4xf32>
  %b = linalg.broadcast ins(%bias : tensor<2xf32>) outs(%e : tensor<1x2x4x4xf32>) dimensions = [0, 2, 3]
  %c = linalg.conv_2d_nchw_fchw {quantune.layer = "conv", dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x1x4x4xf32>, tensor<2x1x1x1xf32>) outs(%b : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %w2 = arith.constant dense<[[[[1.0]], [[2.0]]], [[[3.0]], [[4.0]]]]> : tensor<2x2x1x1xf32>
  %e2 = tensor.empty() : tensor<1x2x4x4xf32>
  %b2 = linalg.broadcast ins(%bias : tensor<2xf32>) outs(%e2 : tensor<1x2x4x4xf32>) dimensions = [0, 2, 3]
  %c2 = linalg.conv_2d_nchw_fchw {quantune.layer = "other", dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%c, %w2 : tensor<1x2x4x4xf32>, tensor<2x2x1x1xf32>) outs(%b2 : tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %s = tensor.collapse_shape %c2 [[0], [1, 2, 3]] : tensor<1x2x4x4xf32> into tensor<1x32xf32>
  %f = tensor.extract_slice %s[0, 0] [1, 2] [1, 1] : tensor<1x32xf32> to tensor<1x2xf32>
  %wl = arith.constant dense<[[1.0, 0.5], [0.25, 1.0]]> : tensor<2x2xf32>
  %el = tensor.empty() : tensor<2x2xf32>
  %wt = linalg.transpose ins(%wl : tensor<2x2xf32>) outs(%el : tensor<2x2xf32>) permutation = [1, 0]
  %o = tensor.empty() : tensor<1x2xf32>
  %fill = linalg.fill ins(%zero : f32) outs(%o : tensor<1x2xf32>) -> tensor<1x2xf32>
  %m = linalg.matmul {quantune.layer = "fc"} ins(%f, %wt : tensor<1x2xf32>, tensor<2x2xf32>) outs(%fill : tensor<1x2xf32>) -> tensor<1x2xf32>
  %lb = arith.constant dense<[0.5, -0.25]> : tensor<2xf32>
  %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d1)>, affine_map<(d0, d1) -> (d0, d1)>], iterator_types = ["parallel", "parallel"]} ins(%m, %lb : tensor<1x2xf32>, tensor<2xf32>) outs(%o : tensor<1x2xf32>) {
  ^bb0(%a: f32, %bb: f32, %out: f32):
    %sum = arith.addf %a, %bb : f32
    linalg.yield %sum : f32
  } -> tensor<1x2xf32>
  return %r : tensor<1x2xf32>
}
