// The x86-64 AVX-512 VNNI conv kernel's code (conv_x86_64_avx512vnni.c describes it), for the conv entry
// points and for the depthwise kernel's fused depthwise + 1x1 entries.
#pragma once
#include "conv_common.h"
#include <immintrin.h>

#define ROWS MAX_TILE_ROWS  // output pixels per register tile: 6 x 4 zmm accumulators, 24 of 32 registers


static inline __attribute__((always_inline)) int32_t load4(const int8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return v ^ (int32_t)0x80808080u;
}

// 16 * vectors channels of one output pixel from n on, requantized and stored as int8: p = float(acc) * mult
// (+ float(residual - residual_zp) * residual_mult), q = roundeven(min(p, hi - y_zp)), then q + y_zp in int16
// and int8 with saturation (two packs for four vectors instead of four narrowing moves), then max(lo). That is
// clamp(p, lo - y_zp, hi - y_zp) rounded + y_zp (quantization.requantize) for every p: between the bounds
// nothing saturates, and below lo - y_zp every step stays at or under lo (a float below int32 converts to
// INT_MIN, which saturates down); the float min keeps a large positive p from converting to INT_MIN.
static inline __attribute__((always_inline)) void store_int8(const __m512i acc[4], int vectors, int64_t row,
                                                             int64_t n, const conv_args* a, enum output out) {
  int64_t left = a->N - n < 16 * vectors ? a->N - n : 16 * vectors;
  __mmask64 mask = left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
  __m512i q[4];
  for (int v = 0; v < 4; ++v) {
    if (v >= vectors) {
      q[v] = _mm512_setzero_si512();
      continue;
    }
    __m512 p = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[v]), _mm512_loadu_ps(a->mult + n + 16 * v));
    if (out == INT8_RESIDUAL) {
      __m128i bytes = _mm_maskz_loadu_epi8((__mmask16)(mask >> (16 * v)), a->residual + row * a->N + n + 16 * v);
      __m512i r = _mm512_sub_epi32(_mm512_cvtepi8_epi32(bytes), _mm512_set1_epi32(a->residual_zp));
      p = _mm512_add_ps(p, _mm512_mul_ps(_mm512_cvtepi32_ps(r), _mm512_set1_ps(a->residual_mult)));
    }
    p = _mm512_min_ps(p, _mm512_set1_ps((float)(a->hi - a->y_zp)));
    q[v] = _mm512_cvt_roundps_epi32(p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  const __m512i zero_point = _mm512_set1_epi16((int16_t)a->y_zp);
  __m512i bytes = _mm512_packs_epi16(_mm512_adds_epi16(_mm512_packs_epi32(q[0], q[1]), zero_point),
                                     _mm512_adds_epi16(_mm512_packs_epi32(q[2], q[3]), zero_point));
  // dword 4L + v holds channels 16v + 4L .. + 3, which belong at dword 4v + L
  const __m512i order = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
  bytes = _mm512_max_epi8(_mm512_permutexvar_epi32(order, bytes), _mm512_set1_epi8((char)a->lo));
  _mm512_mask_storeu_epi8(a->y + row * a->N + n, mask, bytes);
}

// 16 channels of one output pixel from n on at an int8 -> fp32 boundary: float(acc) * mult, channels first.
static inline __attribute__((always_inline)) void store_f32(__m512i acc, int64_t row, int64_t n,
                                                            const conv_args* a) {
  int64_t left = a->N - n;
  __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
  __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_loadu_ps(a->mult + n));
  __m512i channel_offsets = _mm512_mullo_epi32(
      _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32((int32_t)a->pixels));
  _mm512_mask_i32scatter_ps(a->y_f32 + n * a->pixels + row, mask, channel_offsets, y, 4);
}

// One register tile: `rows` output pixels from `row` on (their first taps at ih, iw), by 16*vectors output
// channels from n on; border: some of its pixels' taps lie in the padding.
static inline __attribute__((always_inline)) void tile(const conv_args* a, int64_t row, const int64_t ih[],
                                                       const int64_t iw[], int64_t n, int rows, int vectors,
                                                       enum output out, int border) {
  __m512i acc[ROWS][4];
  for (int r = 0; r < rows; ++r)
    for (int v = 0; v < vectors; ++v) acc[r][v] = _mm512_loadu_si512(a->bias + n + 16 * v);  // added once
  int64_t step;
  const int8_t* w = block_weights(a, n, 4, &step);
  // inside the input, a kernel row's taps lie side by side: one run of KW * C bytes; on the border, tap by tap
  const int64_t runs = border ? a->KW : 1, run = border ? a->C : a->KW * a->C;
  for (int64_t kh = 0; kh < a->KH; ++kh) {
    for (int64_t kw = 0; kw < runs; ++kw) {
      const int8_t* at[ROWS];
      tap_rows(a, ih, iw, rows, kh, kw, border, at);
      for (int64_t c = 0; c < run; c += 4, w += step) {
        __m512i b[4];
        for (int v = 0; v < vectors; ++v) b[v] = _mm512_loadu_si512(w + 64 * v);
        for (int r = 0; r < rows; ++r) {
          __m512i x = _mm512_set1_epi32(load4(at[r] + c));
          for (int v = 0; v < vectors; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], x, b[v]);
        }
      }
    }
  }
  // unrolled, or the accumulators would live in memory, stored at every step of the reduction
#pragma clang loop unroll(full)
  for (int r = 0; r < rows; ++r) {
    if (out == FLOAT32)
      for (int v = 0; v < vectors; ++v) store_f32(acc[r][v], row + r, n + 16 * v, a);
    else
      store_int8(acc[r], vectors, row + r, n, a, out);
  }
}

#define TILE_CASE(R, V)                                 \
  case (R) * 8 + (V):                                   \
    if (border)                                         \
      tile(a, row, ih, iw, n, R, V, out, 1);            \
    else                                                \
      tile(a, row, ih, iw, n, R, V, out, 0);            \
    break;
#define TILE_ROWS(R) TILE_CASE(R, 1) TILE_CASE(R, 2) TILE_CASE(R, 3) TILE_CASE(R, 4)

static inline __attribute__((always_inline)) void conv(const conv_args* a, int64_t m0, int64_t mcount, int64_t n0,
                                                       int64_t ncount, enum output out) {
  for (int64_t n = n0; n < n0 + ncount; n += 64) {
    int vectors = (int)((n0 + ncount - n) >= 64 ? 4 : (n0 + ncount - n + 15) / 16);
    for (int64_t row = m0; row < m0 + mcount; row += ROWS) {
      int rows = (int)(m0 + mcount - row >= ROWS ? ROWS : m0 + mcount - row);
      int64_t ih[ROWS], iw[ROWS];
      int border = first_taps(a, row, rows, ih, iw);
      switch (rows * 8 + vectors) {
        TILE_ROWS(1) TILE_ROWS(2) TILE_ROWS(3) TILE_ROWS(4) TILE_ROWS(5) TILE_ROWS(6)
      }
    }
  }
}

