// int8 max pooling, channels-last, batch 1, for aarch64: the computation and calling convention of
// pool_x86_64_avx512.c (see there), 16 channels a vector.
//
// Freestanding: no libc, no globals; IREE links the object into its dispatch library (hal.executable.objects).
#include "conv_common.h"
#include <arm_neon.h>

void quantune_max_pool_s8_neon(const int8_t* x, size_t x_offset, int8_t* y, size_t y_offset, int64_t H, int64_t W,
                               int64_t C, int64_t OW, int64_t KH, int64_t KW, int64_t stride, int64_t pad_top,
                               int64_t pad_left, int64_t oh0, int64_t ohcount) {
  x += x_offset;
  y += y_offset;
  for (int64_t oh = oh0; oh < oh0 + ohcount; ++oh) {
    const int64_t ih0 = oh * stride - pad_top;
    int64_t kh0, kh1;
    window_inside(ih0, KH, H, &kh0, &kh1);
    for (int64_t ow = 0; ow < OW; ++ow) {
      const int64_t iw0 = ow * stride - pad_left;
      int64_t kw0, kw1;
      window_inside(iw0, KW, W, &kw0, &kw1);
      int8_t* out = y + (oh * OW + ow) * C;
      int64_t c = 0;
      for (; c + 16 <= C; c += 16) {
        int8x16_t m = vdupq_n_s8(-128);
        for (int64_t kh = kh0; kh < kh1; ++kh)
          for (int64_t kw = kw0; kw < kw1; ++kw) m = vmaxq_s8(m, vld1q_s8(x + ((ih0 + kh) * W + iw0 + kw) * C + c));
        vst1q_s8(out + c, m);
      }
      for (; c < C; ++c) {
        int8_t m = -128;
        for (int64_t kh = kh0; kh < kh1; ++kh)
          for (int64_t kw = kw0; kw < kw1; ++kw) {
            int8_t v = x[((ih0 + kh) * W + iw0 + kw) * C + c];
            m = v > m ? v : m;
          }
        out[c] = m;
      }
    }
  }
}
