// RUN: quantune-opt --split-input-file --quantune-depthwise-channels-last %s | FileCheck %s

// An FP32 depthwise conv in the model's NCHW layout runs channels-last: its input transposed to NHWC behind an
// optimization barrier (so that IREE does not fuse the transpose into the conv's dispatch), its weights and init
// transposed, and its result transposed back; strides, dilations and the layer id carry over.
// CHECK-LABEL: func.func @stride_two
// CHECK-SAME: (%[[X:.*]]: tensor<1x8x9x9xf32>)
// CHECK: %[[XT:.*]] = linalg.transpose ins(%[[X]] : tensor<1x8x9x9xf32>) outs(%{{.*}} : tensor<1x9x9x8xf32>) permutation = [0, 2, 3, 1]
// CHECK: %[[XB:.*]] = util.optimization_barrier %[[XT]] : tensor<1x9x9x8xf32>
// CHECK: %[[WT:.*]] = linalg.transpose ins(%{{.*}} : tensor<8x3x3xf32>) outs(%{{.*}} : tensor<3x3x8xf32>) permutation = [1, 2, 0]
// CHECK: %[[IT:.*]] = linalg.transpose ins(%{{.*}} : tensor<1x8x4x4xf32>) outs(%{{.*}} : tensor<1x4x4x8xf32>) permutation = [0, 2, 3, 1]
// CHECK: %[[Y:.*]] = linalg.depthwise_conv_2d_nhwc_hwc {quantune.layer = "dw", dilations = dense<1> : tensor<2xi64>, strides = dense<2> : tensor<2xi64>} ins(%[[XB]], %[[WT]] : tensor<1x9x9x8xf32>, tensor<3x3x8xf32>) outs(%[[IT]] : tensor<1x4x4x8xf32>)
// CHECK: %[[YT:.*]] = linalg.transpose ins(%[[Y]] : tensor<1x4x4x8xf32>) outs(%{{.*}} : tensor<1x8x4x4xf32>) permutation = [0, 3, 1, 2]
// CHECK-NOT: linalg.depthwise_conv_2d_nchw_chw
// CHECK: return %[[YT]]
func.func @stride_two(%x: tensor<1x8x9x9xf32>) -> tensor<1x8x4x4xf32> {
  %w = arith.constant dense<0.5> : tensor<8x3x3xf32>
  %c = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<1x8x4x4xf32>
  %i = linalg.fill ins(%c : f32) outs(%e : tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
  %y = linalg.depthwise_conv_2d_nchw_chw {quantune.layer = "dw", dilations = dense<1> : vector<2xi64>, strides = dense<2> : vector<2xi64>} ins(%x, %w : tensor<1x8x9x9xf32>, tensor<8x3x3xf32>) outs(%i : tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
  return %y : tensor<1x8x4x4xf32>
}

// -----

// Depthwise convs that are channels-last already (the int8 ones quantune-lower-quant writes) and those on
// integers are left as they are.
// CHECK-LABEL: func.func @left_alone
// CHECK-NOT: linalg.transpose
// CHECK-NOT: util.optimization_barrier
// CHECK: linalg.depthwise_conv_2d_nhwc_hwc
// CHECK: linalg.depthwise_conv_2d_nchw_chw {{.*}} -> tensor<1x8x7x7xi32>
func.func @left_alone(%x: tensor<1x9x9x8xf32>, %q: tensor<1x8x9x9xi8>) -> (tensor<1x7x7x8xf32>, tensor<1x8x7x7xi32>) {
  %w = arith.constant dense<0.5> : tensor<3x3x8xf32>
  %wq = arith.constant dense<3> : tensor<8x3x3xi8>
  %c = arith.constant 0.0 : f32
  %ci = arith.constant 0 : i32
  %e = tensor.empty() : tensor<1x7x7x8xf32>
  %i = linalg.fill ins(%c : f32) outs(%e : tensor<1x7x7x8xf32>) -> tensor<1x7x7x8xf32>
  %y = linalg.depthwise_conv_2d_nhwc_hwc {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%x, %w : tensor<1x9x9x8xf32>, tensor<3x3x8xf32>) outs(%i : tensor<1x7x7x8xf32>) -> tensor<1x7x7x8xf32>
  %ei = tensor.empty() : tensor<1x8x7x7xi32>
  %ii = linalg.fill ins(%ci : i32) outs(%ei : tensor<1x8x7x7xi32>) -> tensor<1x8x7x7xi32>
  %yq = linalg.depthwise_conv_2d_nchw_chw {dilations = dense<1> : vector<2xi64>, strides = dense<1> : vector<2xi64>} ins(%q, %wq : tensor<1x8x9x9xi8>, tensor<8x3x3xi8>) outs(%ii : tensor<1x8x7x7xi32>) -> tensor<1x8x7x7xi32>
  return %y, %yq : tensor<1x7x7x8xf32>, tensor<1x8x7x7xi32>
}
