// int8 convolution (implicit GEMM) with the requantize epilogue inside, for x86-64 with AVX-512 VNNI.
//
// One call computes, for output pixels [m0, m0 + mcount) and output channels [n0, n0 + ncount) of a batch-1
// channels-last convolution (linear layers are the 1x1 case on a 1x1 image), exactly what
// quantune-lower-quant's integer linalg computes (quantization.requantize): acc = sum x*w over (kh, kw, c),
// t = acc + bias, p = float(t) * mult (+ float(residual - residual_zp) * residual_mult) in float32 without
// fused multiply-adds (the object is built with -ffp-contract=off), clamped to [lo - y_zp, hi - y_zp],
// rounded half to even, y = that + y_zp as int8.
//
// - x: the input, [H][W][C] int8, C a multiple of 4. There is no im2col buffer: each output pixel's row of the
//   GEMM is read from x where it lies, 4 channels at a time; a tap in the padding reads zrow, C bytes of the
//   input zero point (conv_common.h taps), so the padding costs no dispatch.
// - w: int8, K = KH*KW*C in (kh, kw, c) order by Np (the output channels padded to 16), in blocks of 64
//   channels (conv_common.h block_weights).
// - vpdpbusd multiplies unsigned by signed bytes: x ^ 0x80 is x + 128 as u8, and the bias carries the
//   -128 * sum(w) this adds (quantune_mlir/kernels/__init__.py packs it).
// - bias (i32) and mult (f32) have Np entries; y and residual are [OH*OW][N] int8.
// - At an int8 -> fp32 boundary the _f32 entry writes float(acc + bias) * scale instead, in the model's
//   channels-first layout ([N][OH*OW]), which is the fp32 layers' layout: the dequantize costs no dispatch.
//
// Freestanding: no libc, no globals; IREE links the object into its dispatch library (hal.executable.objects).
#include "conv_x86_64_avx512vnni.h"

QUANTUNE_CONV_ENTRIES(avx512vnni)
