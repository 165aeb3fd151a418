// int8 max pooling, channels-last, batch 1, for x86-64 with AVX-512: what quantune-lower-quant's
// linalg.pooling_nhwc_max on the input padded with -128 computes, without the padded copy, which IREE ran as a
// dispatch of its own on one thread (ResNet18's stem pool: 0.8 MB copied). A tap in the padding is skipped: -128,
// the smallest int8, never raises a maximum, and a window wholly in the padding gives -128, as the padded pool.
//
// One call computes output rows [oh0, oh0 + ohcount) of y, [OH][OW][C], from x, [H][W][C], 64 channels a vector.
//
// Freestanding: no libc, no globals; IREE links the object into its dispatch library (hal.executable.objects).
#include "conv_common.h"
#include <immintrin.h>

void quantune_max_pool_s8_avx512(const int8_t* x, size_t x_offset, int8_t* y, size_t y_offset, int64_t H,
                                 int64_t W, int64_t C, int64_t OW, int64_t KH, int64_t KW, int64_t stride,
                                 int64_t pad_top, int64_t pad_left, int64_t oh0, int64_t ohcount) {
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
      for (int64_t c = 0; c < C; c += 64) {
        __mmask64 mask = C - c >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (C - c)) - 1);
        __m512i m = _mm512_set1_epi8((char)-128);
        for (int64_t kh = kh0; kh < kh1; ++kh)
          for (int64_t kw = kw0; kw < kw1; ++kw)
            m = _mm512_max_epi8(m, _mm512_maskz_loadu_epi8(mask, x + ((ih0 + kh) * W + iw0 + kw) * C + c));
        _mm512_mask_storeu_epi8(y + (oh * OW + ow) * C + c, mask, m);
      }
    }
  }
}
