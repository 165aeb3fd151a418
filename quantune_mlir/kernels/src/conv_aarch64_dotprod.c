// int8 convolution (implicit GEMM) with the requantize epilogue inside, for aarch64 with the dot-product
// extension (armv8.2-a+dotprod: Cortex-A55/A76 and later). The same computation and calling convention as
// conv_x86_64_avx512vnni.c (see there), with `sdot` on 6 output pixels x 16 output channels per register
// tile. sdot multiplies signed bytes, so the int8 activations enter as they are and the bias carries no
// correction (KernelLibrary.unsigned_activations is false).
//
// Freestanding: no libc, no globals; IREE links the object into its dispatch library (hal.executable.objects).
#include "conv_common.h"
#include <arm_neon.h>
#include "epilogue_aarch64.h"

#define ROWS 6  // output pixels per register tile: 6 x 4 accumulators of 4 channels, 24 of 32 registers

static inline __attribute__((always_inline)) int8x16_t load4_dup(const int8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

// One register tile: `rows` output pixels from `row` on, by 16 output channels from n on.
static inline __attribute__((always_inline)) void tile(const conv_args* a, int64_t row, int64_t n, int rows,
                                                       enum output out) {
  int32x4_t acc[ROWS][4];
  const int8_t* base[ROWS];
  for (int r = 0; r < rows; ++r) {
    int64_t oh = (row + r) / a->OW, ow = (row + r) % a->OW;
    base[r] = a->x + (oh * a->stride * a->W + ow * a->stride) * a->C;
    for (int v = 0; v < 4; ++v) acc[r][v] = vld1q_s32(a->bias + n + 4 * v);  // the bias, added once
  }
  int64_t step;
  const int8_t* w = block_weights(a, n, &step);
  // one flat loop over K/4 (the reduction in (kh, kw, c) order) keeps the accumulators in registers
  int64_t steps = a->KH * a->KW * a->C / 4, c = 0, kw = 0, offset = 0;
  for (int64_t s = 0; s < steps; ++s, w += step) {
    int8x16_t b[4];
    for (int v = 0; v < 4; ++v) b[v] = vld1q_s8(w + 16 * v);
    for (int r = 0; r < rows; ++r) {
      int8x16_t x = load4_dup(base[r] + offset + c);
      for (int v = 0; v < 4; ++v) acc[r][v] = vdotq_s32(acc[r][v], b[v], x);
    }
    c += 4;
    if (c == a->C) {
      c = 0;
      offset += a->C;
      if (++kw == a->KW) {
        kw = 0;
        offset += (a->W - a->KW) * a->C;
      }
    }
  }
  for (int r = 0; r < rows; ++r) epilogue16(acc[r], row + r, n, a, out);
}

static inline __attribute__((always_inline)) void conv(const conv_args* a, int64_t m0, int64_t mcount, int64_t n0,
                                                       int64_t ncount, enum output out) {
  for (int64_t n = n0; n < n0 + ncount; n += 16) {
    for (int64_t row = m0; row < m0 + mcount; row += ROWS) {
      switch (m0 + mcount - row >= ROWS ? ROWS : (int)(m0 + mcount - row)) {
        case 1: tile(a, row, n, 1, out); break;
        case 2: tile(a, row, n, 2, out); break;
        case 3: tile(a, row, n, 3, out); break;
        case 4: tile(a, row, n, 4, out); break;
        case 5: tile(a, row, n, 5, out); break;
        default: tile(a, row, n, 6, out); break;
      }
    }
  }
}

QUANTUNE_CONV_ENTRIES(dotprod)
