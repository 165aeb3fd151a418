// int8 convolution (implicit GEMM) with the requantize epilogue inside, for aarch64 with the dot-product
// extension (armv8.2-a+dotprod: Cortex-A55/A76 and later). The same computation and calling convention as
// conv_x86_64_avx512vnni.c (see there), with `sdot` on 6 output pixels x 16 output channels per register
// tile. sdot multiplies signed bytes, so the int8 activations enter as they are and the bias carries no
// correction (KernelLibrary.unsigned_activations is false).
#pragma once
#include "conv_common.h"
#include <arm_neon.h>
#include "epilogue_aarch64.h"

#define ROWS MAX_TILE_ROWS  // output pixels per register tile: 6 x 4 accumulators of 4 channels, 24 of 32 registers

static inline __attribute__((always_inline)) int8x16_t load4_dup(const int8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

// One register tile: `rows` output pixels from `row` on (their first taps at ih, iw), by 16 output channels from
// n on; border: some of its pixels' taps lie in the padding.
static inline __attribute__((always_inline)) void tile(const conv_args* a, int64_t row, const int64_t ih[],
                                                       const int64_t iw[], int64_t n, int rows, enum output out,
                                                       int border) {
  int32x4_t acc[ROWS][4];
  for (int r = 0; r < rows; ++r)
    for (int v = 0; v < 4; ++v) acc[r][v] = vld1q_s32(a->bias + n + 4 * v);  // the bias, added once
  int64_t step;
  const int8_t* w = block_weights(a, n, 4, &step);
  // inside the input, a kernel row's taps lie side by side: one run of KW * C bytes; on the border, tap by tap
  const int64_t runs = border ? a->KW : 1, run = border ? a->C : a->KW * a->C;
  for (int64_t kh = 0; kh < a->KH; ++kh) {
    for (int64_t kw = 0; kw < runs; ++kw) {
      const int8_t* at[ROWS];
      tap_rows(a, ih, iw, rows, kh, kw, border, at);
      for (int64_t c = 0; c < run; c += 4, w += step) {
        int8x16_t b[4];
        for (int v = 0; v < 4; ++v) b[v] = vld1q_s8(w + 16 * v);
        for (int r = 0; r < rows; ++r) {
          int8x16_t x = load4_dup(at[r] + c);
          for (int v = 0; v < 4; ++v) acc[r][v] = vdotq_s32(acc[r][v], b[v], x);
        }
      }
    }
  }
  // unrolled, or the accumulators would live in memory, stored at every step of the reduction
#pragma clang loop unroll(full)
  for (int r = 0; r < rows; ++r) epilogue16(acc[r], row + r, n, a, out);
}

#include "conv_aarch64.h"
