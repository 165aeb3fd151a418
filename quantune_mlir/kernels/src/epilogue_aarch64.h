// The aarch64 kernels' epilogue (conv_aarch64_*.h, depthwise_aarch64.h): what
// quantune_mlir.quantization.requantize computes, on 16 channels of one output pixel. Include after
// conv_common.h and arm_neon.h.
#pragma once

// 16 output channels of one pixel from their accumulators (which start at the bias): float32 requantize (or
// dequantize), stored with a scalar tail.
static inline __attribute__((always_inline)) void epilogue16(const int32x4_t acc[4], int64_t row, int64_t n,
                                                             const conv_args* a, enum output out) {
  int64_t left = a->N - n;
  float32x4_t p[4];
  for (int v = 0; v < 4; ++v) p[v] = vmulq_f32(vcvtq_f32_s32(acc[v]), vld1q_f32(a->mult + n + 4 * v));
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

