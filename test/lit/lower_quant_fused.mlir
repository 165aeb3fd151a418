// RUN: quantune-opt --quantune-lower-quant='kernels=x86_64-avx512vnni kernel-target=cpu=znver4 cost-model=false' %S/Inputs/depthwise_pointwise.mlir | FileCheck %s
// RUN: quantune-opt --quantune-lower-quant='kernels=x86_64-avx512vnni kernel-target=cpu=znver4 cost-model=false expose-int8=true' %S/Inputs/depthwise_pointwise.mlir | FileCheck %s --check-prefix=EXPOSED
// RUN: quantune-opt --quantune-lower-quant='kernels=aarch64-dotprod kernel-target=cpu_features=+neon,+dotprod,+reserve-x18 cost-model=false' %S/Inputs/depthwise_pointwise.mlir | FileCheck %s --check-prefix=A64
// RUN: quantune-opt --quantune-lower-quant='kernels=aarch64-i8mm kernel-target=cpu_features=+neon,+dotprod,+i8mm,+reserve-x18 cost-model=false' %S/Inputs/depthwise_pointwise.mlir | FileCheck %s --check-prefix=I8MM

// quantune-lower-quant on a depthwise layer "dw" (3x3, ReLU6, int8 out) whose output only the 1x1 conv "pw"
// reads: both run in one dispatch of the fused entry, which hands the depthwise output to the 1x1 conv row by
// row, so the int8 tensor between them is never written; on aarch64 the depthwise object of each library runs
// the 1x1 conv on that library's conv kernel (sdot, smmla).

// CHECK: stream.executable private @[[F:quantune_kernel_[0-9]+]]
// CHECK: stream.return %c4, %c1, %c1
// CHECK: func.func private @quantune_depthwise_conv_s8_avx512vnni(
// The depthwise geometry (H, W, C, OW, KH, KW, stride, pad_top, pad_left), its requantize (zero point -128,
// ReLU6 up to 112), then the 1x1 conv's channels (N, Np) and its requantize:
// CHECK: call @quantune_depthwise_conv_s8_avx512vnni({{.*}}, %c4_i64, %c4_i64, %c8_i64, %c4_i64, %c3_i64, %c3_i64, %c1_i64, %c1_i64, %c1_i64, %c-128_i64, %c-128_i64, %c112_i64, %c4_i64, %c16_i64, %c3_i64, %c-128_i64, %c127_i64,
// CHECK-LABEL: func.func @main
// CHECK: %[[X:.*]] = flow.dispatch @{{.*}}(%arg0) : (tensor<1x8x4x4xf32>) -> tensor<1x4x4x8xi8>
// The input, the zero-point row, the depthwise weights, bias and multipliers, the 1x1 conv's: one dispatch
// from the depthwise input to the 1x1 conv's output.
// CHECK-NEXT: %[[Y:.*]] = flow.dispatch @[[F]]::@[[F]](%[[X]], {{.*}}) : (tensor<1x4x4x8xi8>, tensor<64xi8>, tensor<768xi8>, tensor<64xi32>, tensor<64xf32>, tensor<128xi8>, tensor<16xi32>, tensor<16xf32>) -> tensor<1x4x4x4xi8>
// CHECK-NOT: flow.dispatch
// CHECK: linalg.generic {{.*}} ins(%[[Y]] : tensor<1x4x4x4xi8>)

// The analysis build returns every int8 tensor, the one between the layers too: two dispatches.
// EXPOSED: quantune.exposed = ["dw.input", "pw.input", "pw.output"]
// EXPOSED: %[[XE:.*]] = flow.dispatch {{.*}}(%arg0) : (tensor<1x8x4x4xf32>) -> tensor<1x4x4x8xi8>
// EXPOSED-NEXT: %[[DW:.*]] = flow.dispatch {{.*}}(%[[XE]], {{.*}} -> tensor<1x4x4x8xi8>
// EXPOSED: flow.dispatch {{.*}}(%[[DW]], {{.*}} -> tensor<1x4x4x4xi8>

// aarch64: the same fusion, the depthwise weights in the "taps" layout (16 channels x 12 taps padded from 9).
// A64: #hal.executable.object<{path = "kernels/depthwise_aarch64_dotprod.o"}>
// A64: call @quantune_depthwise_conv_s8_dotprod(
// A64-LABEL: func.func @main
// A64: %[[XA:.*]] = flow.dispatch {{.*}}(%arg0) : (tensor<1x8x4x4xf32>) -> tensor<1x4x4x8xi8>
// A64-NEXT: flow.dispatch {{.*}}(%[[XA]], {{.*}}) : (tensor<1x4x4x8xi8>, tensor<16xi8>, tensor<192xi8>, tensor<16xi32>, tensor<16xf32>, tensor<128xi8>, tensor<16xi32>, tensor<16xf32>) -> tensor<1x4x4x4xi8>
// A64-NOT: flow.dispatch
// I8MM: #hal.executable.object<{path = "kernels/depthwise_aarch64_i8mm.o"}>
// I8MM: call @quantune_depthwise_conv_s8_i8mm(
// I8MM-LABEL: func.func @main
// I8MM: flow.dispatch {{.*}} -> tensor<1x4x4x8xi8>
// I8MM-NEXT: flow.dispatch {{.*}} -> tensor<1x4x4x4xi8>
// I8MM-NOT: flow.dispatch
