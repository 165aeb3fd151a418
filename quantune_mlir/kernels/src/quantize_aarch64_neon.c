// The quantization of an fp32 tensor in the model's layout into int8 channels-last, for aarch64: the
// computation and calling convention of quantize_x86_64_avx512.c (see there), 4 pixels of one channel at a time.
//
// Freestanding: no libc, no globals; IREE links the object into its dispatch library (hal.executable.objects).
#include <stddef.h>
#include <stdint.h>
#include <arm_neon.h>

static inline __attribute__((always_inline)) float32x4_t quantize4(float32x4_t v, float32x4_t scale,
                                                                   float32x4_t zp, float32x4_t lo, float32x4_t hi) {
  return vminq_f32(vmaxq_f32(vaddq_f32(vrndnq_f32(vdivq_f32(v, scale)), zp), lo), hi);
}

void quantune_quantize_s8_neon(const float* x, size_t x_offset, int8_t* y, size_t y_offset, int64_t C,
                               int64_t Cp, int64_t pixels, float scale, int64_t zp, int64_t lo, int64_t hi,
                               int64_t p0, int64_t pcount) {
  x += x_offset;
  y += y_offset;
  const float32x4_t scale_v = vdupq_n_f32(scale), zp_v = vdupq_n_f32((float)zp);
  const float32x4_t lo_v = vdupq_n_f32((float)lo), hi_v = vdupq_n_f32((float)hi);
  for (int64_t c = 0; c < C; ++c) {
    const float* in = x + c * pixels;
    int8_t* out = y + c;
    int64_t p = p0;
    for (; p + 4 <= p0 + pcount; p += 4) {
      int32_t q[4];
      vst1q_s32(q, vcvtq_s32_f32(quantize4(vld1q_f32(in + p), scale_v, zp_v, lo_v, hi_v)));
      for (int j = 0; j < 4; ++j) out[(p + j) * Cp] = (int8_t)q[j];
    }
    for (; p < p0 + pcount; ++p)
      out[p * Cp] = (int8_t)vgetq_lane_s32(vcvtq_s32_f32(quantize4(vdupq_n_f32(in[p]), scale_v, zp_v, lo_v, hi_v)), 0);
  }
  for (int64_t c = C; c < Cp; ++c)
    for (int64_t p = p0; p < p0 + pcount; ++p) y[p * Cp + c] = (int8_t)zp;
}
