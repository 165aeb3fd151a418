// int8 depthwise convolution with the requantize epilogue inside, for x86-64 with AVX-512 VNNI.
//
// One call computes output rows [oh0, oh0 + ohcount) of a batch-1 channels-last depthwise convolution, exactly
// what quantune-lower-quant's integer linalg computes (quantization.requantize): acc = sum over (kh, kw) of
// x * w per channel, t = acc + bias, float(t) * mult clamped to [lo - y_zp, hi - y_zp], rounded half to
// even, + y_zp, as int8.
//
// A depthwise tap has no reduction over channels, so the dot product runs over taps instead: `vpdpwssd` adds
// two 16-bit products per 32-bit lane, here two taps of one channel. Two taps' 16 channels are sign-extended
// to 16 bits and interleaved (vpunpck{l,h}wd), which leaves the channels of a vector in the order
// 0-3, 8-11, 4-7, 12-15; the weights, bias and multipliers come packed in that order
// (rewrite/extern_conv.py), and one dword shuffle puts the 16 int8 results back in channel order.
//
// - x: the input, [H][W][C] int8, unpadded: a tap in the padding reads zrow, C bytes (and more, up to Cp) of the
//   input zero point, so the padding costs no dispatch of its own.
// - w: [Cp/16][pairs][16][2] int16: per block of 16 channels and per pair of taps (kh, kw in row-major order,
//   a last odd tap paired with a zero), the two taps' weights of each channel in the order above.
// - bias (i32) and mult (f32): Cp entries, in that order within each block of 16.
// - y: [OH][OW][C] int8.
#include "conv_common.h"
#include <immintrin.h>

#define MAX_PAIRS 13  // up to 5x5 kernels

static inline __attribute__((always_inline)) __m512i tap_pair(const int8_t* first, const int8_t* second,
                                                              __mmask16 mask) {
  __m256i a = _mm256_cvtepi8_epi16(_mm_maskz_loadu_epi8(mask, first));
  __m256i b = second ? _mm256_cvtepi8_epi16(_mm_maskz_loadu_epi8(mask, second)) : _mm256_setzero_si256();
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_unpacklo_epi16(a, b)), _mm256_unpackhi_epi16(a, b), 1);
}

// The 16 channels from c on of tap (ih, iw), or of the zero-point row where that lies in the padding.
static inline __attribute__((always_inline)) const int8_t* tap(const int8_t* x, const int8_t* zrow, int64_t ih,
                                                               int64_t iw, int64_t H, int64_t W, int64_t C,
                                                               int64_t c, int border) {
  if (border && ((uint64_t)ih >= (uint64_t)H || (uint64_t)iw >= (uint64_t)W)) return zrow + c;
  return x + (ih * W + iw) * C + c;
}

// One output pixel's 16 channels from c on; border: some of its taps may lie in the padding.
static inline __attribute__((always_inline)) void pixel(
    const int8_t* x, const int8_t* zrow, const __m512i* weights, __m512i bias, __m512 mult, int8_t* y, int64_t H,
    int64_t W, int64_t C, int64_t c, __mmask16 mask, const int64_t KH, const int64_t KW, int64_t ih0, int64_t iw0,
    __m512 lo_f, __m512 hi_f, __m512i zero_point, int border) {
  const int64_t taps = KH * KW, pairs = (taps + 1) / 2;
  __m512i acc = bias;
  for (int64_t p = 0; p < pairs; ++p) {
    int64_t t0 = 2 * p, t1 = 2 * p + 1;
    const int8_t* first = tap(x, zrow, ih0 + t0 / KW, iw0 + t0 % KW, H, W, C, c, border);
    const int8_t* second = t1 < taps ? tap(x, zrow, ih0 + t1 / KW, iw0 + t1 % KW, H, W, C, c, border) : 0;
    acc = _mm512_dpwssd_epi32(acc, tap_pair(first, second, mask), weights[p]);
  }
  __m512 f = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), mult), lo_f), hi_f);
  __m512i q = _mm512_add_epi32(_mm512_cvt_roundps_epi32(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                               zero_point);
  _mm_mask_storeu_epi8(y, mask, _mm_shuffle_epi32(_mm512_cvtepi32_epi8(q), _MM_SHUFFLE(3, 1, 2, 0)));
}

static inline __attribute__((always_inline)) void depthwise(
    const int8_t* x, const int8_t* zrow, const int16_t* w, const int32_t* bias, const float* mult, int8_t* y,
    int64_t H, int64_t W, int64_t C, int64_t Cp, int64_t OW, const int64_t KH, const int64_t KW, int64_t stride,
    int64_t pad_top, int64_t pad_left, int64_t y_zp, int64_t lo, int64_t hi, int64_t oh0, int64_t ohcount) {
  const int64_t pairs = (KH * KW + 1) / 2;
  const __m512 lo_f = _mm512_set1_ps((float)(lo - y_zp)), hi_f = _mm512_set1_ps((float)(hi - y_zp));
  const __m512i zero_point = _mm512_set1_epi32((int32_t)y_zp);
  for (int64_t c = 0; c < Cp; c += 16) {
    int64_t left = C - c;
    __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
    __m512i weights[MAX_PAIRS];
    for (int64_t p = 0; p < pairs; ++p) weights[p] = _mm512_loadu_si512(w + ((c / 16) * pairs + p) * 32);
    __m512i b = _mm512_loadu_si512(bias + c);
    __m512 m = _mm512_loadu_ps(mult + c);
    for (int64_t oh = oh0; oh < oh0 + ohcount; ++oh) {
      int64_t ih0 = oh * stride - pad_top, first = OW, last = OW;  // [first, last): all taps inside
      if (ih0 >= 0 && ih0 + KH <= H) inside_columns(W, OW, KW, stride, pad_left, &first, &last);
#define PIXEL(BORDER)                                                                                        \
  pixel(x, zrow, weights, b, m, y + (oh * OW + ow) * C + c, H, W, C, c, mask, KH, KW, ih0,                  \
        ow * stride - pad_left, lo_f, hi_f, zero_point, BORDER)
      int64_t ow = 0;
      for (; ow < first; ++ow) PIXEL(1);
      for (; ow < last; ++ow) PIXEL(0);
      for (; ow < OW; ++ow) PIXEL(1);
#undef PIXEL
    }
  }
}

void quantune_depthwise_s8_avx512vnni(const int8_t* x, size_t x_offset, const int8_t* zrow, size_t zrow_offset,
                                      const int16_t* w, size_t w_offset, const int32_t* bias, size_t bias_offset,
                                      const float* mult, size_t mult_offset, int8_t* y, size_t y_offset, int64_t H,
                                      int64_t W, int64_t C, int64_t Cp, int64_t OW, int64_t KH, int64_t KW,
                                      int64_t stride, int64_t pad_top, int64_t pad_left, int64_t y_zp, int64_t lo,
                                      int64_t hi, int64_t oh0, int64_t ohcount) {
  x += x_offset;
  zrow += zrow_offset;
  w += w_offset;
  bias += bias_offset;
  mult += mult_offset;
  y += y_offset;
  if (KH == 3 && KW == 3)  // MobileNet's: unrolled, the five tap pairs in registers
    depthwise(x, zrow, w, bias, mult, y, H, W, C, Cp, OW, 3, 3, stride, pad_top, pad_left, y_zp, lo, hi, oh0,
              ohcount);
  else
    depthwise(x, zrow, w, bias, mult, y, H, W, C, Cp, OW, KH, KW, stride, pad_top, pad_left, y_zp, lo, hi, oh0,
              ohcount);
}
