// RUN: quantune-opt --quantune-lower-quant='kernels=x86_64-avx512vnni kernel-target=cpu=znver4 cost-model=false' %S/lower_quant.mlir | FileCheck %s
// RUN: quantune-opt --quantune-lower-quant='kernels=x86_64-avx512vnni kernel-target=cpu=znver4 cost-model=false' %S/lower_quant.mlir | FileCheck %s --check-prefix=CONTRACT
// RUN: not quantune-opt --quantune-lower-quant='kernels=x86_64-avx512vnni' %S/lower_quant.mlir 2>&1 | FileCheck %s --check-prefix=NOCPU
// RUN: quantune-opt --quantune-lower-quant='kernels=aarch64-dotprod kernel-target=cpu_features=+neon,+dotprod,+reserve-x18 cost-model=false' %S/lower_quant.mlir | FileCheck %s --check-prefix=A64
// RUN: quantune-opt --quantune-lower-quant='kernels=aarch64-i8mm kernel-target=cpu_features=+neon,+dotprod,+i8mm,+reserve-x18 cost-model=false' %S/lower_quant.mlir | FileCheck %s --check-prefix=I8MM
// RUN: not quantune-opt --quantune-lower-quant='kernels=armv9-sme kernel-target=cpu=x' %S/lower_quant.mlir 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: rm -rf %t && mkdir -p %t && quantune-opt --quantune-lower-quant='kernels=x86_64-avx512vnni kernel-target=cpu=znver4 cost-model=false' %S/lower_quant.mlir -o %t/low.mlir && ls %t/kernels | FileCheck %s --check-prefix=PLACED

// quantune-lower-quant with the project's kernel library, on lower_quant.mlir's net: every int8 conv and
// linear layer becomes one dispatch of the linked VNNI kernel (a: 3x3 on 2 channels, b: 1x1, j: 3x3 with the
// residual add, d: stride 2 writing fp32, h: linear writing fp32); g (depthwise) keeps the integer linalg; the
// model input's fp32 -> int8 quantize is a kernel dispatch (IREE fuses the others into their producers).

// CONTRACT-NOT: quant.
// NOCPU: kernels=x86_64-avx512vnni needs kernel-target=cpu=NAME
// UNKNOWN: unknown kernel library 'armv9-sme': choose one of x86_64-avx512vnni, aarch64-i8mm, aarch64-dotprod

// aarch64: the sdot object, keyed by the exact feature list (IREE adds +reserve-x18), so a module compiled
// without dotprod (Cortex-A53/A72) fails to link; sdot multiplies signed bytes, so no bias correction.
// A64: #[[A64:.*]] = #hal.executable.target<"llvm-cpu", "embedded-elf-arm_64", {cpu_features = "+neon,+dotprod,+reserve-x18"}>
// A64: #hal.executable.object<{path = "kernels/conv_aarch64_dotprod.o"}>
// A64: call @quantune_conv_f32_dotprod(
// A64: call @quantune_conv_residual_s8_dotprod(
// A64: call @quantune_conv_s8_dotprod(
// A64-LABEL: func.func @main
// A64: linalg.depthwise_conv_2d_nhwc_hwc {quantune.layer = "g"

// aarch64 with i8mm: the smmla object, whose reduction steps 8 bytes (two pixels by two channels by 8 bytes an
// instruction): the model input's quantize writes a's 2 channels padded to 8, b's 4 input channels are padded to
// 8 by a copy, the packed weights are [K/8][16][8] (3 * 3 * 8 * 16 bytes), and h's 4 input features, not a
// multiple of 8, keep the integer linalg.
// I8MM: #hal.executable.target<"llvm-cpu", "embedded-elf-arm_64", {cpu_features = "+neon,+dotprod,+i8mm,+reserve-x18"}>
// I8MM: #hal.executable.object<{path = "kernels/conv_aarch64_i8mm.o"}>
// I8MM: call @quantune_conv_f32_i8mm(
// I8MM: call @quantune_conv_residual_s8_i8mm(
// I8MM: call @quantune_conv_s8_i8mm(
// I8MM-LABEL: func.func @main
// I8MM: %[[QA:.*]] = flow.dispatch {{.*}}(%arg0) : (tensor<1x2x6x6xf32>) -> tensor<1x6x6x8xi8>
// I8MM-NOT: tensor.pad
// I8MM: flow.dispatch {{.*}}(%[[QA]], {{.*}} : (tensor<1x6x6x8xi8>, tensor<8xi8>, tensor<1152xi8>, tensor<16xi32>, tensor<16xf32>) -> tensor<1x6x6x4xi8>
// I8MM: tensor.pad %{{.*}} low[0, 0, 0, 0] high[0, 0, 0, 4]
// I8MM: flow.dispatch {{.*}} : (tensor<1x6x6x8xi8>, tensor<8xi8>, tensor<128xi8>, tensor<16xi32>, tensor<16xf32>) -> tensor<1x6x6x4xi8>
// I8MM: linalg.depthwise_conv_2d_nhwc_hwc {quantune.layer = "g"
// I8MM: linalg.matmul {quantune.layer = "h"}

// The object is keyed by the CPU: a module compiled for another CPU fails to link instead of faulting there.
// CHECK: #[[TARGET:.*]] = #hal.executable.target<"llvm-cpu", "embedded-elf-x86_64", {cpu = "znver4"}>
// The executables come in reverse order of the layers: h's and d's write f32.
// CHECK: stream.executable private @[[HK:quantune_kernel_[0-9]+]]
// CHECK: call @quantune_conv_f32_avx512vnni(
// CHECK: stream.executable private @[[D:quantune_kernel_[0-9]+]]
// CHECK: call @quantune_conv_f32_avx512vnni(
// j's executable: its workgroups split the 36 output pixels in row blocks of 6 and the channels in blocks of 64;
// each workgroup calls the residual variant of the kernel on its share of the unpadded 6x6 input, with the
// row of the input zero point that the kernel reads in the padding (one row and column above and left).
// CHECK: stream.executable private @[[J:quantune_kernel_[0-9]+]] attributes {hal.executable.objects = #hal.executable.objects<{#[[TARGET]] = [#hal.executable.object<{path = "kernels/conv_x86_64_avx512vnni.o"}>]}>}
// CHECK: stream.executable.export public @[[J]] workgroups() -> (index, index, index)
// CHECK: stream.return %c6, %c1, %c1
// CHECK: func.func private @quantune_conv_residual_s8_avx512vnni({{.*}}) attributes {hal.import.static, llvm.bareptr = true}
// CHECK: stream.binding.subspan %arg0[%c0] : !stream.binding -> memref<144xi8>
// CHECK: stream.binding.subspan %arg1[%c0] : !stream.binding -> memref<4xi8>
// CHECK: stream.binding.subspan %arg2[%c0] : !stream.binding -> memref<576xi8>
// H, W, C, OW, N, Np, KH, KW, stride, pad_top, pad_left:
// CHECK: call @quantune_conv_residual_s8_avx512vnni({{.*}}, %c6_i64, %c6_i64, %c4_i64, %c6_i64, %c4_i64, %c16_i64, %c3_i64, %c3_i64, %c1_i64, %c1_i64, %c1_i64,
// b's executable: the variant without a residual.
// CHECK: stream.executable private @[[B:quantune_kernel_[0-9]+]]
// CHECK: call @quantune_conv_s8_avx512vnni(
// CHECK: stream.executable private @[[A_EXE:quantune_kernel_[0-9]+]]
// The model input's quantize (2 channels, 6x6 pixels, zero point -3) is a kernel too: fp32 NCHW in, int8 NHWC out,
// its channels padded to 4 (the conv kernel's 4-byte groups) with the zero point.
// CHECK: stream.executable private @[[QK:quantune_kernel_[0-9]+]]
// CHECK: call @quantune_quantize_s8_avx512(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %c2_i64, %c4_i64, %c36_i64, %{{.*}}, %c-3_i64, %c-128_i64, %c127_i64,
// CHECK-LABEL: func.func @main
// CHECK: %[[X:.*]] = flow.dispatch @[[QK]]::@[[QK]](%arg0) : (tensor<1x2x6x6xf32>) -> tensor<1x6x6x4xi8>
// a reads the quantize's 4 channels as they are (zero weights for the 2 padding ones, so their value never
// counts) and pads spatially in the kernel: no pad dispatch.
// CHECK-NOT: tensor.pad
// CHECK: %[[AOUT:.*]] = flow.dispatch @[[A_EXE]]::@[[A_EXE]](%[[X]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (tensor<1x6x6x4xi8>, tensor<4xi8>, tensor<576xi8>, tensor<16xi32>, tensor<16xf32>) -> tensor<1x6x6x4xi8>
// b: the packed weights (blocks of 64 channels, each [K/4][width][4], the channels padded to 16), the bias with -128 * sum(w) folded in (the kernel
// reads x ^ 0x80 as u8), the multipliers, and a's int8 output in; int8 out.
// CHECK: %[[BOUT:.*]] = flow.dispatch @[[B]]::@[[B]](%[[AOUT]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (tensor<1x6x6x4xi8>, tensor<4xi8>, tensor<64xi8>, tensor<16xi32>, tensor<16xf32>) -> tensor<1x6x6x4xi8>
// j: padded in the kernel (no pad dispatch), b's output as the residual.
// CHECK-NOT: tensor.pad
// CHECK: flow.dispatch @[[J]]::@[[J]](%[[BOUT]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[BOUT]]) : (tensor<1x6x6x4xi8>, tensor<4xi8>, tensor<576xi8>, tensor<16xi32>, tensor<16xf32>, tensor<1x6x6x4xi8>) -> tensor<1x6x6x4xi8>
// CHECK: linalg.depthwise_conv_2d_nhwc_hwc {quantune.layer = "g"
// d's output stays fp32: the kernel writes float(acc + bias) * scale in the model's NCHW, no dequantize dispatch.
// CHECK: flow.dispatch @[[D]]::@[[D]](%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (tensor<1x6x6x4xi8>, tensor<4xi8>, tensor<576xi8>, tensor<16xi32>, tensor<16xf32>) -> tensor<1x4x3x3xf32>
// h: a 1x1 conv on a 1x1 image, its f32 logits collapsed back to [batch][classes].
// CHECK: %[[HIN:.*]] = tensor.expand_shape %{{.*}} {{\[\[}}0, 1, 2], [3]] output_shape [1, 1, 1, 4] : tensor<1x4xi8> into tensor<1x1x1x4xi8>
// CHECK: %[[H:.*]] = flow.dispatch @[[HK]]::@[[HK]](%[[HIN]], {{.*}}) -> tensor<1x3x1x1xf32>
// CHECK: %[[LOGITS:.*]] = tensor.collapse_shape %[[H]] {{\[\[}}0], [1, 2, 3]] : tensor<1x3x1x1xf32> into tensor<1x3xf32>
// CHECK: return %[[LOGITS]]
// CHECK-NOT: linalg.matmul

// With -o, the objects the MLIR links (by paths relative to its folder) and their assembly lie beside it.
// PLACED: conv_x86_64_avx512vnni.o
// PLACED-NEXT: conv_x86_64_avx512vnni.s
// PLACED-NEXT: quantize_x86_64_avx512.o
// PLACED-NEXT: quantize_x86_64_avx512.s
