// RUN: quantune-opt --split-input-file --quantune-tag-layers %s | FileCheck %s

// A conv whose location names its layer gets the id as quantune.layer; the bias add next to it does not.
// CHECK-LABEL: func.func @conv
// CHECK: linalg.conv_2d_nchw_fchw {quantune.layer = "layer1.0.conv1"
// CHECK-NOT: quantune.layer
// CHECK: return
func.func @conv(%x: tensor<1x4x8x8xf32>, %w: tensor<8x4x3x3xf32>, %b: tensor<8xf32>) -> tensor<1x8x6x6xf32> {
  %zero = arith.constant 0.0 : f32
  %init = tensor.empty() : tensor<1x8x6x6xf32>
  %fill = linalg.fill ins(%zero : f32) outs(%init : tensor<1x8x6x6xf32>) -> tensor<1x8x6x6xf32>
  %conv = linalg.conv_2d_nchw_fchw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x, %w : tensor<1x4x8x8xf32>, tensor<8x4x3x3xf32>) outs(%fill : tensor<1x8x6x6xf32>)
      -> tensor<1x8x6x6xf32> loc(#conv_loc)
  %biased = linalg.generic {indexing_maps = [affine_map<(n, c, h, w) -> (n, c, h, w)>,
                                             affine_map<(n, c, h, w) -> (c)>,
                                             affine_map<(n, c, h, w) -> (n, c, h, w)>],
                            iterator_types = ["parallel", "parallel", "parallel", "parallel"]}
      ins(%conv, %b : tensor<1x8x6x6xf32>, tensor<8xf32>) outs(%init : tensor<1x8x6x6xf32>) {
  ^bb0(%acc: f32, %bias: f32, %out: f32):
    %sum = arith.addf %acc, %bias : f32
    linalg.yield %sum : f32
  } -> tensor<1x8x6x6xf32> loc(#conv_loc)
  return %biased : tensor<1x8x6x6xf32>
}
#file = loc("resnet.py":42:0)
#conv_loc = loc("layer1.0.conv1"(#file))

// -----

// Depthwise convs and the matmul of a linear layer are layers too; a NameLoc nested in a call site counts.
// CHECK-LABEL: func.func @depthwise_and_linear
// CHECK: linalg.depthwise_conv_2d_nchw_chw
// CHECK-SAME: quantune.layer = "features.1.conv.0.0"
// CHECK: linalg.matmul
// CHECK-SAME: quantune.layer = "classifier.1"
func.func @depthwise_and_linear(%x: tensor<1x4x5x5xf32>, %w: tensor<4x3x3xf32>, %a: tensor<1x36xf32>,
                                %m: tensor<36x10xf32>) -> (tensor<1x4x3x3xf32>, tensor<1x10xf32>) {
  %zero = arith.constant 0.0 : f32
  %e0 = tensor.empty() : tensor<1x4x3x3xf32>
  %f0 = linalg.fill ins(%zero : f32) outs(%e0 : tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32>
  %dw = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>}
      ins(%x, %w : tensor<1x4x5x5xf32>, tensor<4x3x3xf32>) outs(%f0 : tensor<1x4x3x3xf32>) -> tensor<1x4x3x3xf32>
      loc(callsite("features.1.conv.0.0"("mobilenet.py":7:0) at "model.py":1:0))
  %e1 = tensor.empty() : tensor<1x10xf32>
  %f1 = linalg.fill ins(%zero : f32) outs(%e1 : tensor<1x10xf32>) -> tensor<1x10xf32>
  %mm = linalg.matmul ins(%a, %m : tensor<1x36xf32>, tensor<36x10xf32>) outs(%f1 : tensor<1x10xf32>)
      -> tensor<1x10xf32> loc("classifier.1")
  return %dw, %mm : tensor<1x4x3x3xf32>, tensor<1x10xf32>
}

// -----

// A contraction without a layer name (activation x activation) stays untagged.
// CHECK-LABEL: func.func @no_layer
// CHECK-NOT: quantune.layer
func.func @no_layer(%a: tensor<2x3xf32>, %b: tensor<3x4xf32>) -> tensor<2x4xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2x4xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<2x4xf32>) -> tensor<2x4xf32>
  %mm = linalg.matmul ins(%a, %b : tensor<2x3xf32>, tensor<3x4xf32>) outs(%f : tensor<2x4xf32>)
      -> tensor<2x4xf32> loc("model.py":3:0)
  return %mm : tensor<2x4xf32>
}
