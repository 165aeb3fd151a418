// RUN: not quantune-opt --quantune-lower-quant %S/Inputs/quant_linear_uint8.mlir 2>&1 | FileCheck %s --check-prefix=UINT8
// RUN: not quantune-opt --quantune-lower-quant %S/Inputs/quant_linear_weight_only.mlir 2>&1 | FileCheck %s --check-prefix=HALF
// RUN: not quantune-opt --quantune-lower-quant %S/Inputs/quant_linear_bias_overflow.mlir 2>&1 | FileCheck %s --check-prefix=BIAS
// RUN: quantune-opt --quantune-lower-quant %s | FileCheck %s --check-prefix=VALID

// The inputs are one linear layer "fc" in the form quantune-apply-plan writes, each broken in one way.
// UINT8: error: 'fc.input': uint8 activations are not lowered; use int8 (IREE 3.13 has no u8 x s8 integer kernels
// HALF: error: layer 'fc': quantize both operands of a contraction or neither (its weight alone is quantized)
// BIAS: error: layer 'fc': the quantized bias overflows int32 (input scale 0.1 is too small for its bias); recalibrate or keep the layer fp32

// This file itself is valid: an int8 argument read as fp32 lowers to an elementwise dequantize.
// VALID-LABEL: func.func @main
// VALID: arith.sitofp
// VALID-NOT: quant.
func.func @main(%x: tensor<2xi8>) -> tensor<2xf32> {
  %q = quant.scast %x : tensor<2xi8> to tensor<2x!quant.uniform<i8:f32, 5.0e-1:1>>
  %d = quant.dcast %q : tensor<2x!quant.uniform<i8:f32, 5.0e-1:1>> to tensor<2xf32>
  return %d : tensor<2xf32>
}
