// int8 convolution (implicit GEMM) with the requantize epilogue inside, for x86-64 with AVX-512 VNNI.
//
// One call computes, for output pixels [m0, m0 + mcount) and output channels [n0, n0 + ncount) of a batch-1
// channels-last convolution (linear layers are the 1x1 case on a 1x1 image), exactly what
// quantune-lower-quant's integer linalg computes: acc = sum x*w over (kh, kw, c), t = acc + bias,
// p = t * mult (+ (residual - residual_zp) * residual_mult), q = p >> shift rounding half to even,
// y = clamp(q + y_zp, lo, hi) as int8.
//
// - x: the zero-point padded input, [Hp][Wp][C] int8, C a multiple of 4. There is no im2col buffer: each output
//   pixel's row of the GEMM is read from x where it lies, 4 channels at a time.
// - w: [K/4][Np][4] int8 with K = KH*KW*C in (kh, kw, c) order and Np the output channels padded to 16.
// - vpdpbusd multiplies unsigned by signed bytes: x ^ 0x80 is x + 128 as u8, and the bias carries the
//   -128 * sum(w) this adds (quantune_mlir/kernels/__init__.py packs it).
// - bias (i32) and mult (i64) have Np entries; y and residual are [OH*OW][N] int8.
// - At an int8 -> fp32 boundary the _f32 entry writes float(acc + bias) * scale instead, in the model's
//   channels-first layout ([N][OH*OW]), which is the fp32 layers' layout: the dequantize costs no dispatch.
//
// Freestanding: no libc, no globals; IREE links the object into its dispatch library (hal.executable.objects).
#include <stddef.h>
#include <stdint.h>
#include <immintrin.h>

#define ROWS 6  // output pixels per register tile: 6 x 4 zmm accumulators of 16 channels, 24 of 32 registers

typedef struct {
  const int8_t* x;
  const int8_t* w;
  const int32_t* bias;
  const int64_t* mult;
  const int8_t* residual;
  int8_t* y;
  const float* scale;
  float* y_f32;
  int64_t pixels;
  int64_t Wp, C, OW, N, Np, KH, KW, stride;
  int64_t shift, y_zp, lo, hi, residual_zp, residual_mult;
} conv_args;

static inline __attribute__((always_inline)) int32_t load4(const int8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return v ^ (int32_t)0x80808080u;
}

// 8 requantized lanes: t (i64) times mult, plus the residual term, shifted with round half to even, clamped.
static inline __attribute__((always_inline)) __m128i requantize8(__m512i t, __m512i mult, __m512i residual,
                                                                 const conv_args* a, int with_residual) {
  __m512i p = _mm512_mullo_epi64(t, mult);
  if (with_residual) {
    __m512i r = _mm512_sub_epi64(residual, _mm512_set1_epi64(a->residual_zp));
    p = _mm512_add_epi64(p, _mm512_mullo_epi64(r, _mm512_set1_epi64(a->residual_mult)));
  }
  __m128i shift = _mm_cvtsi64_si128(a->shift);
  __m512i floor = _mm512_sra_epi64(p, shift);
  __m512i odd = _mm512_and_si512(floor, _mm512_set1_epi64(1));
  __m512i half = _mm512_set1_epi64(((int64_t)1 << (a->shift - 1)) - 1);
  __m512i q = _mm512_sra_epi64(_mm512_add_epi64(p, _mm512_add_epi64(half, odd)), shift);
  q = _mm512_add_epi64(q, _mm512_set1_epi64(a->y_zp));
  q = _mm512_max_epi64(q, _mm512_set1_epi64(a->lo));
  q = _mm512_min_epi64(q, _mm512_set1_epi64(a->hi));
  return _mm512_cvtepi64_epi8(q);
}

enum output { INT8, INT8_RESIDUAL, FLOAT32 };

static inline __attribute__((always_inline)) void epilogue16(__m512i acc, int64_t row, int64_t n,
                                                             const conv_args* a, enum output out) {
  int64_t left = a->N - n;
  __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
  __m512i t = _mm512_add_epi32(acc, _mm512_loadu_si512(a->bias + n));
  if (out == FLOAT32) {
    __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(t), _mm512_loadu_ps(a->scale + n));
    __m512i channel_offsets = _mm512_mullo_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32((int32_t)a->pixels));
    _mm512_mask_i32scatter_ps(a->y_f32 + n * a->pixels + row, mask, channel_offsets, y, 4);
    return;
  }
  int with_residual = out == INT8_RESIDUAL;
  __m512i t_lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(t));
  __m512i t_hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(t, 1));
  __m512i r_lo = _mm512_setzero_si512(), r_hi = _mm512_setzero_si512();
  if (with_residual) {
    __m128i r = _mm_maskz_loadu_epi8(mask, a->residual + row * a->N + n);
    r_lo = _mm512_cvtepi8_epi64(r);
    r_hi = _mm512_cvtepi8_epi64(_mm_srli_si128(r, 8));
  }
  __m128i lo = requantize8(t_lo, _mm512_loadu_si512(a->mult + n), r_lo, a, with_residual);
  __m128i hi = requantize8(t_hi, _mm512_loadu_si512(a->mult + n + 8), r_hi, a, with_residual);
  _mm_mask_storeu_epi8(a->y + row * a->N + n, mask, _mm_unpacklo_epi64(lo, hi));
}

// One register tile: `rows` output pixels from `row` on, by 16*vectors output channels from n on.
static inline __attribute__((always_inline)) void tile(const conv_args* a, int64_t row, int64_t n, int rows,
                                                       int vectors, enum output out) {
  __m512i acc[ROWS][4];
  const int8_t* base[ROWS];
  for (int r = 0; r < rows; ++r) {
    int64_t oh = (row + r) / a->OW, ow = (row + r) % a->OW;
    base[r] = a->x + (oh * a->stride * a->Wp + ow * a->stride) * a->C;
    for (int v = 0; v < vectors; ++v) acc[r][v] = _mm512_setzero_si512();
  }
  const int8_t* w = a->w + n * 4;
  // one flat loop over K/4 (the reduction in (kh, kw, c) order) keeps the accumulators in registers
  int64_t steps = a->KH * a->KW * a->C / 4, c = 0, kw = 0, offset = 0;
  for (int64_t s = 0; s < steps; ++s, w += a->Np * 4) {
    __m512i b[4];
    for (int v = 0; v < vectors; ++v) b[v] = _mm512_loadu_si512(w + 64 * v);
    for (int r = 0; r < rows; ++r) {
      __m512i x = _mm512_set1_epi32(load4(base[r] + offset + c));
      for (int v = 0; v < vectors; ++v) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], x, b[v]);
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
  for (int r = 0; r < rows; ++r)
    for (int v = 0; v < vectors; ++v) epilogue16(acc[r][v], row + r, n + 16 * v, a, out);
}

#define TILE_CASE(R, V) case (R) * 8 + (V): tile(a, row, n, R, V, out); break;
#define TILE_ROWS(R) TILE_CASE(R, 1) TILE_CASE(R, 2) TILE_CASE(R, 3) TILE_CASE(R, 4)

static inline __attribute__((always_inline)) void conv(const conv_args* a, int64_t m0, int64_t mcount, int64_t n0,
                                                       int64_t ncount, enum output out) {
  for (int64_t n = n0; n < n0 + ncount; n += 64) {
    int vectors = (int)((n0 + ncount - n) >= 64 ? 4 : (n0 + ncount - n + 15) / 16);
    for (int64_t row = m0; row < m0 + mcount; row += ROWS) {
      int rows = (int)(m0 + mcount - row >= ROWS ? ROWS : m0 + mcount - row);
      switch (rows * 8 + vectors) {
        TILE_ROWS(1) TILE_ROWS(2) TILE_ROWS(3) TILE_ROWS(4) TILE_ROWS(5) TILE_ROWS(6)
      }
    }
  }
}

#define CONV_PARAMS                                                                                          \
  const int8_t *x, size_t x_offset, const int8_t *w, size_t w_offset, const int32_t *bias, size_t bias_offset, \
      const int64_t *mult, size_t mult_offset
#define GEOMETRY_PARAMS int64_t Wp, int64_t C, int64_t OW, int64_t N, int64_t Np, int64_t KH, int64_t KW, int64_t stride
#define SCALAR_PARAMS                                                                                       \
  int8_t *y, size_t y_offset, GEOMETRY_PARAMS, int64_t shift, int64_t y_zp, int64_t lo, int64_t hi, int64_t m0, \
      int64_t mcount, int64_t n0, int64_t ncount

void quantune_conv_s8_avx512vnni(CONV_PARAMS, SCALAR_PARAMS) {
  conv_args a = {x + x_offset, w + w_offset, bias + bias_offset, mult + mult_offset, 0, y + y_offset, 0, 0, 0,
                 Wp, C, OW, N, Np, KH, KW, stride, shift, y_zp, lo, hi, 0, 0};
  conv(&a, m0, mcount, n0, ncount, INT8);
}

void quantune_conv_residual_s8_avx512vnni(CONV_PARAMS, const int8_t *residual, size_t residual_offset,
                                          int64_t residual_zp, int64_t residual_mult, SCALAR_PARAMS) {
  conv_args a = {x + x_offset, w + w_offset, bias + bias_offset, mult + mult_offset, residual + residual_offset,
                 y + y_offset, 0, 0, 0, Wp, C, OW, N, Np, KH, KW, stride, shift, y_zp, lo, hi, residual_zp,
                 residual_mult};
  conv(&a, m0, mcount, n0, ncount, INT8_RESIDUAL);
}

void quantune_conv_f32_avx512vnni(const int8_t *x, size_t x_offset, const int8_t *w, size_t w_offset,
                                  const int32_t *bias, size_t bias_offset, const float *scale, size_t scale_offset,
                                  float *y, size_t y_offset, GEOMETRY_PARAMS, int64_t pixels, int64_t m0,
                                  int64_t mcount, int64_t n0, int64_t ncount) {
  conv_args a = {x + x_offset, w + w_offset, bias + bias_offset, 0, 0, 0, scale + scale_offset, y + y_offset,
                 pixels, Wp, C, OW, N, Np, KH, KW, stride, 0, 0, 0, 0, 0, 0};
  conv(&a, m0, mcount, n0, ncount, FLOAT32);
}
