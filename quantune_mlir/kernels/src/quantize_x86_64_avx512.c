// The quantization of an fp32 tensor in the model's layout (channels first) into int8 channels-last, for x86-64
// with AVX-512: exactly what quantune-lower-quant's elementwise quantize computes, q = roundeven(x / scale) + zp
// in float32, clamped to [lo, hi], as int8. IREE's own codegen vectorises this transpose along the output's
// innermost dimension, the channels (3 at a model's input), and spends about 2 ns per element on it.
//
// One call converts pixels [p0, p0 + pcount) of x, [C][pixels] f32, into y, [pixels][C] int8: 16 pixels of one
// channel at a time, read contiguously and written with a stride of C bytes.
//
// Freestanding: no libc, no globals; IREE links the object into its dispatch library (hal.executable.objects).
#include <stddef.h>
#include <stdint.h>
#include <immintrin.h>

void quantune_quantize_s8_avx512(const float* x, size_t x_offset, int8_t* y, size_t y_offset, int64_t C,
                                 int64_t pixels, float scale, int64_t zp, int64_t lo, int64_t hi, int64_t p0,
                                 int64_t pcount) {
  x += x_offset;
  y += y_offset;
  const __m512 scale_v = _mm512_set1_ps(scale), zp_v = _mm512_set1_ps((float)zp);
  const __m512 lo_v = _mm512_set1_ps((float)lo), hi_v = _mm512_set1_ps((float)hi);
  for (int64_t p = p0; p < p0 + pcount; p += 16) {
    int64_t left = p0 + pcount - p;
    int count = left >= 16 ? 16 : (int)left;
    __mmask16 mask = (__mmask16)((1u << count) - 1);
    for (int64_t c = 0; c < C; ++c) {
      __m512 d = _mm512_div_ps(_mm512_maskz_loadu_ps(mask, x + c * pixels + p), scale_v);
      __m512 r = _mm512_roundscale_ps(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      __m512 q = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(r, zp_v), lo_v), hi_v);
      int8_t bytes[16];
      _mm_storeu_si128((__m128i*)bytes, _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(q)));
      int8_t* out = y + p * C + c;
      for (int j = 0; j < count; ++j) out[j * C] = bytes[j];
    }
  }
}
