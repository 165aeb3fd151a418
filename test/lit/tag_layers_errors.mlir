// RUN: not quantune-opt --quantune-tag-layers %s 2>&1 | FileCheck %s

// One layer that became two contractions cannot be planned per layer: the pass names it.
// CHECK: quantune-opt: error: layer 'fc' lowered to two contraction ops (linalg.matmul and linalg.matmul)
func.func @shared(%a: tensor<2x3xf32>, %b: tensor<3x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2x4xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<2x4xf32>) -> tensor<2x4xf32>
  %m0 = linalg.matmul ins(%a, %b : tensor<2x3xf32>, tensor<3x4xf32>) outs(%f : tensor<2x4xf32>) -> tensor<2x4xf32> loc("fc")
  %m1 = linalg.matmul ins(%a, %b : tensor<2x3xf32>, tensor<3x4xf32>) outs(%f : tensor<2x4xf32>) -> tensor<2x4xf32> loc("fc")
  return %m0, %m1 : tensor<2x4xf32>, tensor<2x4xf32>
}
