// RUN: quantune-opt --quantune-lower-quant='kernels=x86_64-avx512vnni kernel-target=cpu=znver4 cost-model=false' %S/Inputs/depthwise_pointwise_expand.mlir | FileCheck %s
// RUN: quantune-opt --quantune-lower-quant='kernels=x86_64-avx512vnni kernel-target=cpu=znver4 cost-model=false expose-int8=true' %S/Inputs/depthwise_pointwise_expand.mlir | FileCheck %s --check-prefix=EXPOSED
// RUN: quantune-opt --quantune-lower-quant='kernels=aarch64-dotprod kernel-target=cpu_features=+neon,+dotprod,+reserve-x18 cost-model=false' %S/Inputs/depthwise_pointwise_expand.mlir | FileCheck %s --check-prefix=A64
// RUN: quantune-opt --quantune-lower-quant='kernels=aarch64-i8mm kernel-target=cpu_features=+neon,+dotprod,+i8mm,+reserve-x18 cost-model=false' %S/Inputs/depthwise_pointwise_expand.mlir | FileCheck %s --check-prefix=I8MM
// RUN: sed -e 's|    %ex_bias = arith.constant|    %early = arith.negf %y : tensor<1x4x4x4xf32>\n    %ex_bias = arith.constant|' -e 's|return %y, %z|return %early, %z|' %S/Inputs/depthwise_pointwise_expand.mlir | quantune-opt --quantune-lower-quant='kernels=x86_64-avx512vnni kernel-target=cpu=znver4 cost-model=false' | FileCheck %s --check-prefix=EARLY

// quantune-lower-quant on a depthwise layer "dw", the 1x1 conv "pw" that reads its output, and the 1x1 conv "ex"
// (an inverted-residual block's expansion) that reads pw's output, which the function also returns: the three
// run in one dispatch of the fused entry with two results, pw's output (returned) and ex's. ex reads each row
// of pw's output as soon as it is written; a 1x1 conv needs no other row, so no row is computed twice.

// CHECK: stream.executable private @[[F:quantune_kernel_[0-9]+]]
// CHECK: stream.return %c4, %c1, %c1
// CHECK: func.func private @quantune_depthwise_conv_expand_s8_avx512vnni(
// The depthwise geometry and requantize, the 1x1 conv's channels (N 4, Np 16) and requantize, the workgroup's
// rows, then ex's output buffer, its channels (N2 8, Np2 16) and requantize (zero point -5, no clamp):
// CHECK: call @quantune_depthwise_conv_expand_s8_avx512vnni({{.*}}, %c4_i64, %c4_i64, %c8_i64, %c4_i64, %c3_i64, %c3_i64, %c1_i64, %c1_i64, %c1_i64, %c-128_i64, %c-128_i64, %c112_i64, %c4_i64, %c16_i64, %c3_i64, %c-128_i64, %c127_i64, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %c8_i64, %c16_i64, %c-5_i64, %c-128_i64, %c127_i64)
// CHECK-LABEL: func.func @main
// CHECK: %[[X:.*]] = flow.dispatch @{{.*}}(%arg0) : (tensor<1x8x4x4xf32>) -> tensor<1x4x4x8xi8>
// The input, the zero-point row, the depthwise weights, bias and multipliers, pw's, ex's: one dispatch.
// CHECK-NEXT: %[[Y:.*]]:2 = flow.dispatch @[[F]]::@[[F]](%[[X]], {{.*}}) : (tensor<1x4x4x8xi8>, tensor<64xi8>, tensor<768xi8>, tensor<64xi32>, tensor<64xf32>, tensor<128xi8>, tensor<16xi32>, tensor<16xf32>, tensor<64xi8>, tensor<16xi32>, tensor<16xf32>) -> (tensor<1x4x4x4xi8>, tensor<1x4x4x8xi8>)
// CHECK-NOT: flow.dispatch
// Both results dequantized for the return, after the dispatch that writes them:
// CHECK: linalg.generic {{.*}} ins(%[[Y]]#0 : tensor<1x4x4x4xi8>)
// CHECK: linalg.generic {{.*}} ins(%[[Y]]#1 : tensor<1x4x4x8xi8>)

// The analysis build returns every int8 tensor: a dispatch per layer.
// EXPOSED: quantune.exposed = ["dw.input", "pw.input", "pw.output", "ex.output"
// EXPOSED: flow.dispatch {{.*}}(%arg0) : (tensor<1x8x4x4xf32>) -> tensor<1x4x4x8xi8>
// EXPOSED-NEXT: flow.dispatch {{.*}} -> tensor<1x4x4x8xi8>
// EXPOSED-NEXT: flow.dispatch {{.*}} -> tensor<1x4x4x4xi8>
// EXPOSED: flow.dispatch {{.*}} -> tensor<1x4x4x8xi8>

// aarch64 dotprod: the same three layers in one dispatch (pw's 4 output channels are one sdot step).
// A64: call @quantune_depthwise_conv_expand_s8_dotprod(
// A64-LABEL: func.func @main
// A64: flow.dispatch {{.*}}(%arg0) : (tensor<1x8x4x4xf32>) -> tensor<1x4x4x8xi8>
// A64-NEXT: flow.dispatch {{.*}} -> (tensor<1x4x4x4xi8>, tensor<1x4x4x8xi8>)
// A64-NOT: flow.dispatch

// aarch64 i8mm: smmla steps over 8 input channels, and pw writes 4 a pixel, so ex reads a padded copy in a
// dispatch of its own; dw and pw stay fused.
// I8MM: call @quantune_depthwise_conv_s8_i8mm(
// I8MM-LABEL: func.func @main
// I8MM: flow.dispatch {{.*}}(%arg0) : (tensor<1x8x4x4xf32>) -> tensor<1x4x4x8xi8>
// I8MM-NEXT: flow.dispatch {{.*}} -> tensor<1x4x4x4xi8>
// I8MM: flow.dispatch {{.*}} -> tensor<1x4x4x8xi8>

// An fp32 op reading pw's output before ex (dequantized where the IR reads it, before ex's place): ex keeps a
// dispatch of its own, after the fused depthwise + 1x1 one.
// EARLY: call @quantune_depthwise_conv_s8_avx512vnni(
// EARLY-LABEL: func.func @main
// EARLY: flow.dispatch {{.*}}(%arg0) : (tensor<1x8x4x4xf32>) -> tensor<1x4x4x8xi8>
// EARLY-NEXT: %[[PW:.*]] = flow.dispatch {{.*}} -> tensor<1x4x4x4xi8>
// EARLY: arith.negf
// EARLY: flow.dispatch {{.*}}(%[[PW]], {{.*}} -> tensor<1x4x4x8xi8>
