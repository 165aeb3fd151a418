// RUN: quantune-opt --quantune-expose-layer-outputs %s | FileCheck %s

// A conv's result and a linear layer's bias add (same layer location) become extra results, in IR order,
// after the model's own result.
// CHECK-LABEL: func.func @main
// CHECK-SAME: -> (tensor<1x10xf32>, tensor<1x4x3x3xf32>, tensor<1x10xf32>)
// CHECK: %[[CONV:.+]] = linalg.conv_2d_nchw_fchw {quantune.layer = "conv",
// CHECK: %[[MM:.+]] = linalg.matmul {quantune.layer = "fc"}
// CHECK: %[[BIAS:.+]] = linalg.generic
// CHECK: %[[LOGITS:.+]] = linalg.generic
// CHECK: return %[[LOGITS]], %[[CONV]], %[[BIAS]] : tensor<1x10xf32>, tensor<1x4x3x3xf32>, tensor<1x10xf32>
#id = affine_map<(i, j) -> (i, j)>
#row = affine_map<(i, j) -> (j)>
func.func @main(%x: tensor<1x1x5x5xf32>, %w: tensor<4x1x3x3xf32>, %m: tensor<36x10xf32>, %b: tensor<10xf32>)
    -> tensor<1x10xf32> {
  %zero = arith.constant 0.0 : f32
  %e0 = tensor.empty() : tensor<1x4x3x3xf32>
  %f0 = linalg.fill ins(%zero : f32) outs(%e0 : tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32>
  %conv = linalg.conv_2d_nchw_fchw {quantune.layer = "conv", dilations = dense<1> : vector<2xi64>,
                                    strides = dense<1> : vector<2xi64>}
      ins(%x, %w : tensor<1x1x5x5xf32>, tensor<4x1x3x3xf32>) outs(%f0 : tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32>
  %flat = tensor.collapse_shape %conv [[0], [1, 2, 3]] : tensor<1x4x3x3xf32> into tensor<1x36xf32>
  %e1 = tensor.empty() : tensor<1x10xf32>
  %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<1x10xf32>) -> tensor<1x10xf32>
  %mm = linalg.matmul {quantune.layer = "fc"} ins(%flat, %m : tensor<1x36xf32>, tensor<36x10xf32>)
      outs(%f1 : tensor<1x10xf32>) -> tensor<1x10xf32> loc("fc")
  %biased = linalg.generic {indexing_maps = [#id, #row, #id], iterator_types = ["parallel", "parallel"]}
      ins(%mm, %b : tensor<1x10xf32>, tensor<10xf32>) outs(%e1 : tensor<1x10xf32>) {
  ^bb0(%a: f32, %c: f32, %o: f32):
    %s = arith.addf %a, %c : f32
    linalg.yield %s : f32
  } -> tensor<1x10xf32> loc("fc")
  %logits = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%biased : tensor<1x10xf32>) outs(%e1 : tensor<1x10xf32>) {
  ^bb0(%a: f32, %o: f32):
    %t = arith.mulf %a, %a : f32
    linalg.yield %t : f32
  } -> tensor<1x10xf32>
  return %logits : tensor<1x10xf32>
}
