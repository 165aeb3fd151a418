// int8 depthwise convolution with the requantize epilogue inside, for x86-64 with AVX-512.
//
// One call computes output rows [oh0, oh0 + ohcount) of a batch-1 channels-last depthwise convolution, exactly
// what quantune-lower-quant's integer linalg computes (quantization.requantize): acc = sum over (kh, kw) of
// x * w per channel, t = acc + bias, float(t) * mult clamped to [lo - y_zp, hi - y_zp], rounded half to
// even, + y_zp, as int8. Each tap is 16 channels: sign-extended to 32 bits and multiplied (vpmulld); a
// depthwise tap has no reduction over channels for a dot-product instruction to use.
//
// - x: the zero-point padded input, [Hp][Wp][C] int8.
// - w: [KH][KW][Cp] int8, Cp the channels padded to 16; bias (i32) and mult (f32) have Cp entries.
// - y: [OH][OW][C] int8.
#include <stddef.h>
#include <stdint.h>
#include <immintrin.h>

#define MAX_TAPS 25  // up to 5x5 kernels keep their weights in registers or L1

static inline __attribute__((always_inline)) void depthwise(
    const int8_t* x, const int8_t* w, const int32_t* bias, const float* mult, int8_t* y, int64_t Wp, int64_t C,
    int64_t Cp, int64_t OW, const int64_t KH, const int64_t KW, int64_t stride, int64_t y_zp, int64_t lo,
    int64_t hi, int64_t oh0, int64_t ohcount) {
  const __m512 lo_f = _mm512_set1_ps((float)(lo - y_zp)), hi_f = _mm512_set1_ps((float)(hi - y_zp));
  const __m512i zero_point = _mm512_set1_epi32((int32_t)y_zp);
  for (int64_t c = 0; c < Cp; c += 16) {
    int64_t left = C - c;
    __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
    __m512i taps[MAX_TAPS];
    for (int64_t t = 0; t < KH * KW; ++t)
      taps[t] = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(w + t * Cp + c)));
    __m512i b = _mm512_loadu_si512(bias + c);
    __m512 m = _mm512_loadu_ps(mult + c);
    for (int64_t oh = oh0; oh < oh0 + ohcount; ++oh) {
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int8_t* origin = x + ((oh * stride) * Wp + ow * stride) * C + c;
        __m512i acc = b;
        for (int64_t kh = 0; kh < KH; ++kh)
          for (int64_t kw = 0; kw < KW; ++kw) {
            __m512i v = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mask, origin + (kh * Wp + kw) * C));
            acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(v, taps[kh * KW + kw]));
          }
        __m512 p = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), m), lo_f), hi_f);
        __m512i q = _mm512_add_epi32(_mm512_cvt_roundps_epi32(p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC),
                                     zero_point);
        _mm_mask_storeu_epi8(y + (oh * OW + ow) * C + c, mask, _mm512_cvtepi32_epi8(q));
      }
    }
  }
}

void quantune_depthwise_s8_avx512(const int8_t* x, size_t x_offset, const int8_t* w, size_t w_offset,
                                  const int32_t* bias, size_t bias_offset, const float* mult, size_t mult_offset,
                                  int8_t* y, size_t y_offset, int64_t Wp, int64_t C, int64_t Cp, int64_t OW,
                                  int64_t KH, int64_t KW, int64_t stride, int64_t y_zp, int64_t lo, int64_t hi,
                                  int64_t oh0, int64_t ohcount) {
  x += x_offset;
  w += w_offset;
  bias += bias_offset;
  mult += mult_offset;
  y += y_offset;
  if (KH == 3 && KW == 3)  // MobileNet's: unrolled, the nine taps in registers
    depthwise(x, w, bias, mult, y, Wp, C, Cp, OW, 3, 3, stride, y_zp, lo, hi, oh0, ohcount);
  else
    depthwise(x, w, bias, mult, y, Wp, C, Cp, OW, KH, KW, stride, y_zp, lo, hi, oh0, ohcount);
}
