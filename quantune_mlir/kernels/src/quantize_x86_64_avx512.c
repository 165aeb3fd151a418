// The quantization of an fp32 tensor in the model's layout (channels first) into int8 channels-last, for x86-64
// with AVX-512: exactly what quantune-lower-quant's elementwise quantize computes, q = roundeven(x / scale) + zp
// in float32, clamped to [lo, hi], as int8. IREE's own codegen vectorises this transpose along the output's
// innermost dimension, the channels (3 at a model's input), and spends about 2 ns per element on it.
//
// One call converts pixels [p0, p0 + pcount) of x, [C][pixels] f32, into y, [pixels][Cp] int8: 16 pixels of one
// channel at a time, read contiguously and written with a stride of Cp bytes. Channels C .. Cp - 1 hold the zero
// point: a model input's 1 or 3 channels padded to the conv kernel's reduction step, so that the stem reads
// them as they are instead of through a padded copy (its weights are zero there).
//
// Freestanding: no libc, no globals; IREE links the object into its dispatch library (hal.executable.objects).
#include <stddef.h>
#include <stdint.h>
#include <immintrin.h>

// 16 pixels of one channel, quantized to int8.
static inline __attribute__((always_inline)) __m128i quantize16(const float* x, __mmask16 mask, __m512 scale,
                                                                __m512 zp, __m512 lo, __m512 hi) {
  __m512 d = _mm512_div_ps(_mm512_maskz_loadu_ps(mask, x), scale);
  __m512 r = _mm512_roundscale_ps(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  return _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_add_ps(r, zp), lo), hi)));
}

void quantune_quantize_s8_avx512(const float* x, size_t x_offset, int8_t* y, size_t y_offset, int64_t C,
                                 int64_t Cp, int64_t pixels, float scale, int64_t zp, int64_t lo, int64_t hi,
                                 int64_t p0, int64_t pcount) {
  x += x_offset;
  y += y_offset;
  const __m512 scale_v = _mm512_set1_ps(scale), zp_v = _mm512_set1_ps((float)zp);
  const __m512 lo_v = _mm512_set1_ps((float)lo), hi_v = _mm512_set1_ps((float)hi);
  for (int64_t p = p0; p < p0 + pcount; p += 16) {
    int64_t left = p0 + pcount - p;
    int count = left >= 16 ? 16 : (int)left;
    __mmask16 mask = (__mmask16)((1u << count) - 1);
    if (Cp == 4) {  // a stem's 1 to 4 channels: 16 whole pixels interleaved in registers, one 64-byte store
      __m128i ch[4];
      for (int64_t c = 0; c < 4; ++c)
        ch[c] = c < C ? quantize16(x + c * pixels + p, mask, scale_v, zp_v, lo_v, hi_v) : _mm_set1_epi8((char)zp);
      __m128i low01 = _mm_unpacklo_epi8(ch[0], ch[1]), high01 = _mm_unpackhi_epi8(ch[0], ch[1]);
      __m128i low23 = _mm_unpacklo_epi8(ch[2], ch[3]), high23 = _mm_unpackhi_epi8(ch[2], ch[3]);
      __m512i pixels16 = _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm256_set_m128i(_mm_unpackhi_epi16(low01, low23), _mm_unpacklo_epi16(low01, low23))),
          _mm256_set_m128i(_mm_unpackhi_epi16(high01, high23), _mm_unpacklo_epi16(high01, high23)), 1);
      __mmask64 bytes = count == 16 ? ~(__mmask64)0 : (((__mmask64)1 << (4 * count)) - 1);
      _mm512_mask_storeu_epi8(y + p * 4, bytes, pixels16);
      continue;
    }
    for (int64_t c = 0; c < C; ++c) {
      int8_t bytes[16];
      _mm_storeu_si128((__m128i*)bytes, quantize16(x + c * pixels + p, mask, scale_v, zp_v, lo_v, hi_v));
      int8_t* out = y + p * Cp + c;
      for (int j = 0; j < count; ++j) out[j * Cp] = bytes[j];
    }
    for (int64_t c = C; c < Cp; ++c)
      for (int j = 0; j < count; ++j) y[(p + j) * Cp + c] = (int8_t)zp;
  }
}
