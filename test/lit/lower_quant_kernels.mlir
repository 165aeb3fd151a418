// RUN: quantune-opt --quantune-lower-quant='kernels=x86_64-avx512vnni kernel-cpu=znver4' %S/lower_quant.mlir | FileCheck %s
// RUN: quantune-opt --quantune-lower-quant='kernels=x86_64-avx512vnni kernel-cpu=znver4' %S/lower_quant.mlir | FileCheck %s --check-prefix=CONTRACT
// RUN: not quantune-opt --quantune-lower-quant='kernels=x86_64-avx512vnni' %S/lower_quant.mlir 2>&1 | FileCheck %s --check-prefix=NOCPU
// RUN: not quantune-opt --quantune-lower-quant='kernels=armv9-sme kernel-cpu=x' %S/lower_quant.mlir 2>&1 | FileCheck %s --check-prefix=UNKNOWN

// quantune-lower-quant with the project's kernel library, on lower_quant.mlir's net: the int8 -> int8 conv
// layers it can run (b: 1x1, j: 3x3 with the residual add) become one dispatch each of the linked VNNI kernel;
// the rest keep the integer linalg: a (2 input channels, not a multiple of 4), g (depthwise), and d and h
// (their outputs stay fp32, so the epilogue dequantizes).

// CONTRACT-NOT: quant.
// NOCPU: kernels=x86_64-avx512vnni needs kernel-cpu
// UNKNOWN: unknown kernel library 'armv9-sme': choose one of x86_64-avx512vnni

// The object is keyed by the CPU: a module compiled for another CPU fails to link instead of faulting there.
// CHECK: #[[TARGET:.*]] = #hal.executable.target<"llvm-cpu", "embedded-elf-x86_64", {cpu = "znver4"}>
// j's executable: its workgroups split the 36 output pixels in row blocks of 6 and the channels in blocks of 64;
// each workgroup calls the residual variant of the kernel on its share.
// CHECK: stream.executable private @[[J:quantune_kernel_[0-9]+]] attributes {hal.executable.objects = #hal.executable.objects<{#[[TARGET]] = [#hal.executable.object<{path = "{{.*}}/conv_x86_64_avx512vnni.o"}>]}>}
// CHECK: stream.executable.export public @[[J]] workgroups() -> (index, index, index)
// CHECK: stream.return %c6, %c1, %c1
// CHECK: func.func private @quantune_conv_residual_s8_avx512vnni({{.*}}) attributes {hal.import.static, llvm.bareptr = true}
// CHECK: stream.binding.subspan %arg0[%c0] : !stream.binding -> memref<256xi8>
// CHECK: stream.binding.subspan %arg1[%c0] : !stream.binding -> memref<576xi8>
// CHECK: call @quantune_conv_residual_s8_avx512vnni(
// b's executable: the variant without a residual.
// CHECK: stream.executable private @[[B:quantune_kernel_[0-9]+]]
// CHECK: call @quantune_conv_s8_avx512vnni(
// CHECK-LABEL: func.func @main
// a: IREE's im2col and an int8 matmul, as without kernels.
// CHECK: linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<36x18xi8>, tensor<18x4xi8>)
// b: the packed weights [K/4][channels padded to 16][4], the bias with -128 * sum(w) folded in (the kernel
// reads x ^ 0x80 as u8), the multipliers, and a's int8 output in; int8 out.
// CHECK: %[[BOUT:.*]] = flow.dispatch @[[B]]::@[[B]](%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (tensor<1x6x6x4xi8>, tensor<1x16x4xi8>, tensor<16xi32>, tensor<16xi64>) -> tensor<1x6x6x4xi8>
// j: padded with the input zero point before the dispatch, b's output as the residual.
// CHECK: %[[JIN:.*]] = tensor.pad %[[BOUT]] low[0, 1, 1, 0] high[0, 1, 1, 0]
// CHECK: flow.dispatch @[[J]]::@[[J]](%[[JIN]], %{{.*}}, %{{.*}}, %{{.*}}, %[[BOUT]]) : (tensor<1x8x8x4xi8>, tensor<9x16x4xi8>, tensor<16xi32>, tensor<16xi64>, tensor<1x6x6x4xi8>) -> tensor<1x6x6x4xi8>
// CHECK: linalg.depthwise_conv_2d_nhwc_hwc {quantune.layer = "g"
// CHECK: linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<9x36xi8>, tensor<36x4xi8>)
// CHECK: linalg.matmul {quantune.layer = "h"}
// CHECK-NOT: flow.dispatch
