// int8 depthwise convolution with the requantize epilogue inside, for aarch64 with the dot-product extension:
// the computation of depthwise_x86_64_avx512.c (see there) with `sdot` over taps, four taps of one channel per
// 32-bit lane. Four taps' 16 channels are interleaved byte-wise, then pair-wise (zip1/zip2), which leaves the
// channels in their own order: lane j of vector v is channel 4v + j.
//
// - x: the input, [H][W][C] int8, unpadded; a tap in the padding reads zrow, C bytes of the input zero point.
// - w: [Cp/16][groups of 4 taps][16][4] int8: per block of 16 channels and group of taps (kh, kw in row-major
//   order, the last group padded with zero taps), each channel's four weights.
// - bias (i32) and mult (f32): Cp entries. y: [OH][OW][C] int8.
//
// Include after the library's conv kernel header (conv_aarch64_dotprod.h or conv_aarch64_i8mm.h), whose conv()
// runs the 1x1 conv of the fused entries (depthwise_entries.h).
#pragma once
#include "conv_common.h"
#include <arm_neon.h>
#include "epilogue_aarch64.h"

#define MAX_GROUPS 7  // up to 5x5 kernels

// 16 channels of one tap; at the channel tail only what lies inside the row (the weights there are zero).
static inline __attribute__((always_inline)) int8x16_t load_tap(const int8_t* p, int64_t left) {
  if (left >= 16) return vld1q_s8(p);
  int8_t bytes[16] = {0};
  for (int64_t j = 0; j < left; ++j) bytes[j] = p[j];
  return vld1q_s8(bytes);
}

// The 16 channels from c on of tap (ih, iw), or of the zero-point row where that lies in the padding.
static inline __attribute__((always_inline)) const int8_t* tap(const conv_args* a, int64_t ih, int64_t iw,
                                                               int64_t c, int border) {
  return (border ? tap_address(a, ih, iw) : a->x + (ih * a->W + iw) * a->C) + c;
}

// One output pixel's 16 channels from c on; border: some of its taps may lie in the padding.
static inline __attribute__((always_inline)) void pixel(const conv_args* a, int8x16_t weights[][4], int64_t c,
                                                        int64_t left, const int64_t KH, const int64_t KW, int64_t oh,
                                                        int64_t ow, int64_t first_row, int border) {
  const int64_t taps = KH * KW, groups = (taps + 3) / 4;
  int64_t ih0 = oh * a->stride - a->pad_top, iw0 = ow * a->stride - a->pad_left;
  int32x4_t acc[4];
  for (int v = 0; v < 4; ++v) acc[v] = vld1q_s32(a->bias + c + 4 * v);  // the bias, added once
  for (int64_t g = 0; g < groups; ++g) {
    int8x16_t t[4];
    for (int k = 0; k < 4; ++k) {
      int64_t i = 4 * g + k;
      t[k] = i < taps ? load_tap(tap(a, ih0 + i / KW, iw0 + i % KW, c, border), left) : vdupq_n_s8(0);
    }
    int16x8_t low01 = vreinterpretq_s16_s8(vzip1q_s8(t[0], t[1])), high01 = vreinterpretq_s16_s8(vzip2q_s8(t[0], t[1]));
    int16x8_t low23 = vreinterpretq_s16_s8(vzip1q_s8(t[2], t[3])), high23 = vreinterpretq_s16_s8(vzip2q_s8(t[2], t[3]));
    acc[0] = vdotq_s32(acc[0], vreinterpretq_s8_s16(vzip1q_s16(low01, low23)), weights[g][0]);
    acc[1] = vdotq_s32(acc[1], vreinterpretq_s8_s16(vzip2q_s16(low01, low23)), weights[g][1]);
    acc[2] = vdotq_s32(acc[2], vreinterpretq_s8_s16(vzip1q_s16(high01, high23)), weights[g][2]);
    acc[3] = vdotq_s32(acc[3], vreinterpretq_s8_s16(vzip2q_s16(high01, high23)), weights[g][3]);
  }
  epilogue16(acc, (oh - first_row) * a->OW + ow, c, a, INT8);
}

static inline __attribute__((always_inline)) void depthwise(const conv_args* a, const int8_t* w, int64_t Cp,
                                                            const int64_t KH, const int64_t KW, int64_t first_row,
                                                            int64_t oh0, int64_t ohcount) {
  const int64_t groups = (KH * KW + 3) / 4;
  for (int64_t c = 0; c < Cp; c += 16) {
    int64_t left = a->C - c;
    int8x16_t weights[MAX_GROUPS][4];
    for (int64_t g = 0; g < groups; ++g)
      for (int v = 0; v < 4; ++v) weights[g][v] = vld1q_s8(w + ((c / 16) * groups + g) * 64 + 16 * v);
    for (int64_t oh = oh0; oh < oh0 + ohcount; ++oh) {
      int64_t first = a->OW, last = a->OW;  // [first, last): all taps inside
      int64_t ih0 = oh * a->stride - a->pad_top;
      if (ih0 >= 0 && ih0 + KH <= a->H) inside_columns(a->W, a->OW, KW, a->stride, a->pad_left, &first, &last);
      int64_t ow = 0;
      for (; ow < first; ++ow) pixel(a, weights, c, left, KH, KW, oh, ow, first_row, 1);
      for (; ow < last; ++ow) pixel(a, weights, c, left, KH, KW, oh, ow, first_row, 0);
      for (; ow < a->OW; ++ow) pixel(a, weights, c, left, KH, KW, oh, ow, first_row, 1);
    }
  }
}

// Output rows [oh0, oh0 + ohcount) into y, which holds the output from row first_row on.
static inline __attribute__((always_inline)) void depthwise_rows(
    const int8_t* x, const int8_t* zrow, const int8_t* w, const int32_t* bias, const float* mult, int8_t* y,
    int64_t first_row, int64_t H, int64_t W, int64_t C, int64_t OW, int64_t KH, int64_t KW, int64_t stride,
    int64_t pad_top, int64_t pad_left, int64_t y_zp, int64_t lo, int64_t hi, int64_t oh0, int64_t ohcount) {
  const int64_t Cp = (C + 15) / 16 * 16;
  // the epilogue reads the output's channel count as N and its pixels as rows of N
  conv_args a = {.x = x, .zrow = zrow, .bias = bias, .mult = mult, .y = y, .H = H, .W = W, .pad_top = pad_top,
                 .pad_left = pad_left, .C = C, .OW = OW, .N = C, .Np = Cp, .KH = KH, .KW = KW, .stride = stride,
                 .y_zp = (int32_t)y_zp, .lo = (int32_t)lo, .hi = (int32_t)hi};
  if (KH == 3 && KW == 3)  // MobileNet's: unrolled, three groups of taps in registers
    depthwise(&a, w, Cp, 3, 3, first_row, oh0, ohcount);
  else
    depthwise(&a, w, Cp, KH, KW, first_row, oh0, ohcount);
}
