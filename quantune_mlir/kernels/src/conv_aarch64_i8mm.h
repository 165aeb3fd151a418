// int8 convolution (implicit GEMM) with the requantize epilogue inside, for aarch64 with the int8 matrix
// multiply extension (armv8.6-a+i8mm: Cortex-A510/A710/X2, Neoverse N2/V1). The computation and calling
// convention of conv_aarch64_dotprod.h, with `smmla`: it multiplies two output pixels' 8 reduction bytes by two
// output channels' 8 weight bytes into a 2x2 block of int32 sums, 32 multiply-accumulates an instruction where
// sdot does 16. The register tile is 6 pixels (3 pairs) x 16 channels (8 pairs): 24 accumulators of 32
// registers. The reduction steps 8 bytes, so C is a multiple of 8 (the rewrite pads a stem's channels) and the
// weights are packed [K/8][width][8] (KernelLibrary.reduction_group).
#pragma once
#include "conv_common.h"
#include <arm_neon.h>
#include "epilogue_aarch64.h"

#define PAIRS (MAX_TILE_ROWS / 2)

// One register tile: `rows` output pixels from `row` on (their first taps at ih, iw), by 16 output channels from
// n on; border: some of its pixels' taps lie in the padding. acc[p][v] holds pixels 2p, 2p+1 by channels
// n+2v, n+2v+1 as [2p, 2v], [2p, 2v+1], [2p+1, 2v], [2p+1, 2v+1].
static inline __attribute__((always_inline)) void tile(const conv_args* a, int64_t row, const int64_t ih[],
                                                       const int64_t iw[], int64_t n, int rows, enum output out,
                                                       int border) {
  const int pairs = (rows + 1) / 2;
  int32x4_t acc[PAIRS][8];
  for (int p = 0; p < pairs; ++p)
    for (int v = 0; v < 8; ++v) {
      int32x2_t bias = vld1_s32(a->bias + n + 2 * v);  // the bias, added once
      acc[p][v] = vcombine_s32(bias, bias);
    }
  int64_t step;
  const int8_t* w = block_weights(a, n, 8, &step);
  // inside the input, a kernel row's taps lie side by side: one run of KW * C bytes; on the border, tap by tap
  const int64_t runs = border ? a->KW : 1, run = border ? a->C : a->KW * a->C;
  for (int64_t kh = 0; kh < a->KH; ++kh) {
    for (int64_t kw = 0; kw < runs; ++kw) {
      const int8_t* at[MAX_TILE_ROWS];
      tap_rows(a, ih, iw, rows, kh, kw, border, at);
      if (rows & 1) at[rows] = at[rows - 1];  // the last pair's second pixel: a copy of the first, never stored
      for (int64_t c = 0; c < run; c += 8, w += step) {
        int8x16_t x[PAIRS];
        for (int p = 0; p < pairs; ++p) x[p] = vcombine_s8(vld1_s8(at[2 * p] + c), vld1_s8(at[2 * p + 1] + c));
        for (int v = 0; v < 8; ++v) {
          int8x16_t b = vld1q_s8(w + 16 * v);
          for (int p = 0; p < pairs; ++p) acc[p][v] = vmmlaq_s32(acc[p][v], x[p], b);
        }
      }
    }
  }
  // unrolled, or the accumulators would live in memory, stored at every step of the reduction
#pragma clang loop unroll(full)
  for (int p = 0; p < pairs; ++p) {
    int32x4_t first[4], second[4];  // 16 channels of pixel 2p, of pixel 2p+1
    for (int q = 0; q < 4; ++q) {
      int64x2_t low = vreinterpretq_s64_s32(acc[p][2 * q]), high = vreinterpretq_s64_s32(acc[p][2 * q + 1]);
      first[q] = vreinterpretq_s32_s64(vzip1q_s64(low, high));
      second[q] = vreinterpretq_s32_s64(vzip2q_s64(low, high));
    }
    epilogue16(first, row + 2 * p, n, a, out);
    if (2 * p + 1 < rows) epilogue16(second, row + 2 * p + 1, n, a, out);
  }
}

#include "conv_aarch64.h"
