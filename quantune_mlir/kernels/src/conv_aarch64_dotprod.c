// int8 convolution (implicit GEMM) with the requantize epilogue inside, for aarch64 with the dot-product
// extension (armv8.2-a+dotprod: Cortex-A55/A76 and later). The same computation and calling convention as
// conv_x86_64_avx512vnni.c (see there), with `sdot` on 6 output pixels x 16 output channels per register
// tile. sdot multiplies signed bytes, so the int8 activations enter as they are and the bias carries no
// correction (KernelLibrary.unsigned_activations is false).
//
// Freestanding: no libc, no globals; IREE links the object into its dispatch library (hal.executable.objects).
#include "conv_common.h"
#include <arm_neon.h>

#define ROWS 6  // output pixels per register tile: 6 x 4 accumulators of 4 channels, 24 of 32 registers


static inline __attribute__((always_inline)) int8x16_t load4_dup(const int8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

// 16 output channels of one pixel: bias, then float32 requantize (or dequantize), stored with a scalar tail.
static inline __attribute__((always_inline)) void epilogue16(const int32x4_t acc[4], int64_t row, int64_t n,
                                                             const conv_args* a, enum output out) {
  int64_t left = a->N - n;
  int32x4_t t[4];
  float32x4_t p[4];
  for (int v = 0; v < 4; ++v) {
    t[v] = vaddq_s32(acc[v], vld1q_s32(a->bias + n + 4 * v));
    p[v] = vmulq_f32(vcvtq_f32_s32(t[v]), vld1q_f32(a->mult + n + 4 * v));
  }
  if (out == FLOAT32) {
    float values[16];
    for (int v = 0; v < 4; ++v) vst1q_f32(values + 4 * v, p[v]);
    for (int64_t j = 0; j < 16 && j < left; ++j) a->y_f32[(n + j) * a->pixels + row] = values[j];
    return;
  }
  if (out == INT8_RESIDUAL) {
    int8_t bytes[16] = {0};
    const int8_t* source = a->residual + row * a->N + n;
    for (int64_t j = 0; j < 16 && j < left; ++j) bytes[j] = source[j];
    int8x16_t r = vld1q_s8(bytes);
    int16x8_t r_lo = vmovl_s8(vget_low_s8(r)), r_hi = vmovl_high_s8(r);
    int32x4_t r32[4] = {vmovl_s16(vget_low_s16(r_lo)), vmovl_high_s16(r_lo), vmovl_s16(vget_low_s16(r_hi)),
                        vmovl_high_s16(r_hi)};
    for (int v = 0; v < 4; ++v) {
      float32x4_t rf = vcvtq_f32_s32(vsubq_s32(r32[v], vdupq_n_s32(a->residual_zp)));
      p[v] = vaddq_f32(p[v], vmulq_f32(rf, vdupq_n_f32(a->residual_mult)));
    }
  }
  int32x4_t q[4];
  for (int v = 0; v < 4; ++v) {
    float32x4_t c = vminq_f32(vmaxq_f32(p[v], vdupq_n_f32((float)(a->lo - a->y_zp))),
                              vdupq_n_f32((float)(a->hi - a->y_zp)));
    q[v] = vaddq_s32(vcvtnq_s32_f32(c), vdupq_n_s32(a->y_zp));  // fcvtns: round half to even
  }
  int8x16_t bytes = vcombine_s8(vmovn_s16(vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]))),
                                vmovn_s16(vcombine_s16(vmovn_s32(q[2]), vmovn_s32(q[3]))));
  int8_t* target = a->y + row * a->N + n;
  if (left >= 16) {
    vst1q_s8(target, bytes);
  } else {
    int8_t values[16];
    vst1q_s8(values, bytes);
    for (int64_t j = 0; j < left; ++j) target[j] = values[j];
  }
}

// One register tile: `rows` output pixels from `row` on, by 16 output channels from n on.
static inline __attribute__((always_inline)) void tile(const conv_args* a, int64_t row, int64_t n, int rows,
                                                       enum output out) {
  int32x4_t acc[ROWS][4];
  const int8_t* base[ROWS];
  for (int r = 0; r < rows; ++r) {
    int64_t oh = (row + r) / a->OW, ow = (row + r) % a->OW;
    base[r] = a->x + (oh * a->stride * a->Wp + ow * a->stride) * a->C;
    for (int v = 0; v < 4; ++v) acc[r][v] = vdupq_n_s32(0);
  }
  const int8_t* w = a->w + n * 4;
  // one flat loop over K/4 (the reduction in (kh, kw, c) order) keeps the accumulators in registers
  int64_t steps = a->KH * a->KW * a->C / 4, c = 0, kw = 0, offset = 0;
  for (int64_t s = 0; s < steps; ++s, w += a->Np * 4) {
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
        offset += (a->Wp - a->KW) * a->C;
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
