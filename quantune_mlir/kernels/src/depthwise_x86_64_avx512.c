// int8 depthwise convolution with the requantize epilogue inside, for x86-64 with AVX-512 VNNI.
//
// One call computes output rows [oh0, oh0 + ohcount) of a batch-1 channels-last depthwise convolution, exactly
// what quantune-lower-quant's integer linalg computes (quantization.requantize): acc = sum over (kh, kw) of
// x * w per channel, t = acc + bias, float(t) * mult clamped to [lo - y_zp, hi - y_zp], rounded half to
// even, + y_zp, as int8.
//
// A depthwise tap has no reduction over channels, so `vpdpbusd` sums over taps instead: four rows of one
// kernel column of one channel per 32-bit lane. 64 channels of four input rows (one zmm each) interleave
// byte-wise, then word-wise (vpunpck{l,h}bw, vpunpck{l,h}wd within 128-bit lanes) into four vectors; vector k,
// lane 4L + j then holds channel 16L + 4k + j. Weights, bias and multipliers come packed in that order
// (kernels/__init__.py pack_depthwise_weights), and one dword permutation puts the 64 int8 results back in
// channel order. 12 shuffles feed 64 channels x 4 taps, against 7 per 16 channels x 2 taps widening to 16
// bits for vpdpwssd (this kernel's earlier form, 2.3x the instructions per output).
//
// - x: the input, [H][W][C] int8, unpadded: a tap in the padding reads zrow, C rounded up to 64 bytes of the
//   input zero point, so the padding costs no dispatch of its own. Activations enter as x ^ 0x80 (u8, what
//   vpdpbusd multiplies); the bias carries -128 * sum(w).
// - w: [C64/64][KW][row groups of 4][4 vectors][16 lanes][4 rows] int8, rows past KH zero.
// - bias (i32) and mult (f32): C64 entries, in the lane order above within each block of 64.
// - y: [OH][OW][C] int8.
//
// Freestanding: no libc, no globals; IREE links the object into its dispatch library (hal.executable.objects).
#include "conv_x86_64_avx512vnni.h"

#define MAX_SLIDING_COLUMNS 5  // the widest kernel whose columns a stride-1 row keeps in registers

// One block of 64 channels from c on: where it is read and how its results are written.
typedef struct {
  const int8_t* x;
  const int8_t* zrow;
  const int8_t* w;  // the block's packed weights
  int8_t* y;  // output row first_row's first byte
  int64_t first_row, H, W, C, OW, c;
  __mmask64 mask;  // the block's real channels
  __m512i bias[4], zero_point;
  __m512 mult[4], lo, hi;
} block;

// The 64 channels of input pixel (ih, iw) as u8, or of the zero-point row in the padding.
static inline __attribute__((always_inline)) __m512i load_row(const block* b, int64_t ih, int64_t iw, int border) {
  const int8_t* p = border && ((uint64_t)ih >= (uint64_t)b->H || (uint64_t)iw >= (uint64_t)b->W)
                        ? b->zrow + b->c : b->x + (ih * b->W + iw) * b->C + b->c;
  return _mm512_xor_si512(_mm512_maskz_loadu_epi8(b->mask, p), _mm512_set1_epi8((char)0x80));
}

// Input rows ih .. ih + 3 (those from ih + rows on repeat the one before: their weights are zero) of column iw,
// interleaved into the four vectors the weights of one kernel column and row group multiply.
static inline __attribute__((always_inline)) void column(const block* b, int64_t ih, int64_t rows, int64_t iw,
                                                         __m512i out[4], int border) {
  __m512i r[4];
  for (int i = 0; i < 4; ++i) r[i] = i < rows ? load_row(b, ih + i, iw, border) : r[i - 1];
  __m512i low01 = _mm512_unpacklo_epi8(r[0], r[1]), high01 = _mm512_unpackhi_epi8(r[0], r[1]);
  __m512i low23 = _mm512_unpacklo_epi8(r[2], r[3]), high23 = _mm512_unpackhi_epi8(r[2], r[3]);
  out[0] = _mm512_unpacklo_epi16(low01, low23);
  out[1] = _mm512_unpackhi_epi16(low01, low23);
  out[2] = _mm512_unpacklo_epi16(high01, high23);
  out[3] = _mm512_unpackhi_epi16(high01, high23);
}

static inline __attribute__((always_inline)) void multiply(__m512i acc[4], const __m512i g[4], const int8_t* w) {
  for (int k = 0; k < 4; ++k) acc[k] = _mm512_dpbusd_epi32(acc[k], g[k], _mm512_loadu_si512(w + 64 * k));
}

// Requantize the four accumulators of output pixel (oh, ow) and store its 64 channels in channel order.
static inline __attribute__((always_inline)) void store(const block* b, const __m512i acc[4], int64_t oh,
                                                        int64_t ow) {
  __m128i bytes[4];
  for (int k = 0; k < 4; ++k) {
    __m512 f = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc[k]), b->mult[k]), b->lo), b->hi);
    bytes[k] = _mm512_cvtepi32_epi8(_mm512_add_epi32(
        _mm512_cvt_roundps_epi32(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), b->zero_point));
  }
  __m512i packed = _mm512_inserti64x4(
      _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(bytes[0]), bytes[1], 1)),
      _mm256_inserti128_si256(_mm256_castsi128_si256(bytes[2]), bytes[3], 1), 1);
  // dword 4k + L holds channels 16L + 4k .. + 3, which belong at dword 4L + k
  const __m512i order = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
  _mm512_mask_storeu_epi8(b->y + ((oh - b->first_row) * b->OW + ow) * b->C + b->c, b->mask,
                          _mm512_permutexvar_epi32(order, packed));
}

// One output pixel; border: some of its taps may lie in the padding.
static inline __attribute__((always_inline)) void pixel(const block* b, const int64_t KH, const int64_t KW,
                                                        int64_t oh, int64_t ow, int64_t ih0, int64_t iw0,
                                                        int border) {
  const int64_t groups = (KH + 3) / 4;
  __m512i acc[4] = {b->bias[0], b->bias[1], b->bias[2], b->bias[3]};
  for (int64_t kw = 0; kw < KW; ++kw) {
    for (int64_t g = 0; g < groups; ++g) {
      __m512i vectors[4];
      column(b, ih0 + 4 * g, KH - 4 * g < 4 ? KH - 4 * g : 4, iw0 + kw, vectors, border);
      multiply(acc, vectors, b->w + (kw * groups + g) * 256);
    }
  }
  store(b, acc, oh, ow);
}

// Output columns [first, last) of row oh, all taps inside, stride 1, KH <= 4: adjacent outputs share KW - 1
// input columns, so each step interleaves one new column instead of KW.
static inline __attribute__((always_inline)) void sliding(const block* b, const int64_t KH, const int64_t KW,
                                                          int64_t oh, int64_t ih0, int64_t first, int64_t last,
                                                          int64_t pad_left) {
  __m512i window[MAX_SLIDING_COLUMNS][4];
  for (int64_t kw = 0; kw + 1 < KW; ++kw) column(b, ih0, KH, first - pad_left + kw, window[kw], 0);
  for (int64_t ow = first; ow < last; ++ow) {
    column(b, ih0, KH, ow - pad_left + KW - 1, window[KW - 1], 0);
    __m512i acc[4] = {b->bias[0], b->bias[1], b->bias[2], b->bias[3]};
    for (int64_t kw = 0; kw < KW; ++kw) multiply(acc, window[kw], b->w + kw * 256);
    store(b, acc, oh, ow);
    for (int64_t kw = 0; kw + 1 < KW; ++kw)
      for (int k = 0; k < 4; ++k) window[kw][k] = window[kw + 1][k];
  }
}

// Output rows [oh0, oh0 + ohcount) into y, which holds the output from row first_row on.
static inline __attribute__((always_inline)) void depthwise(
    const int8_t* x, const int8_t* zrow, const int8_t* w, const int32_t* bias, const float* mult, int8_t* y,
    int64_t first_row, int64_t H, int64_t W, int64_t C, int64_t OW, const int64_t KH, const int64_t KW, int64_t stride,
    int64_t pad_top, int64_t pad_left, int64_t y_zp, int64_t lo, int64_t hi, int64_t oh0, int64_t ohcount) {
  const int64_t block_weights = KW * ((KH + 3) / 4) * 256;
  const int slide = stride == 1 && KH <= 4 && KW <= MAX_SLIDING_COLUMNS;
  for (int64_t c = 0; c < C; c += 64) {
    block b = {x, zrow, w + (c / 64) * block_weights, y, first_row, H, W, C, OW, c,
               C - c >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (C - c)) - 1)};
    b.zero_point = _mm512_set1_epi32((int32_t)y_zp);
    b.lo = _mm512_set1_ps((float)(lo - y_zp));
    b.hi = _mm512_set1_ps((float)(hi - y_zp));
    for (int k = 0; k < 4; ++k) {
      b.bias[k] = _mm512_loadu_si512(bias + c + 16 * k);
      b.mult[k] = _mm512_loadu_ps(mult + c + 16 * k);
    }
    for (int64_t oh = oh0; oh < oh0 + ohcount; ++oh) {
      int64_t ih0 = oh * stride - pad_top, first = OW, last = OW;  // [first, last): all taps inside
      if (ih0 >= 0 && ih0 + KH <= H) inside_columns(W, OW, KW, stride, pad_left, &first, &last);
      int64_t ow = 0;
      for (; ow < first; ++ow) pixel(&b, KH, KW, oh, ow, ih0, ow * stride - pad_left, 1);
      if (slide && last > first) {
        sliding(&b, KH, KW, oh, ih0, first, last, pad_left);
        ow = last;
      }
      for (; ow < last; ++ow) pixel(&b, KH, KW, oh, ow, ih0, ow * stride - pad_left, 0);
      for (; ow < OW; ++ow) pixel(&b, KH, KW, oh, ow, ih0, ow * stride - pad_left, 1);
    }
  }
}

// The same with MobileNet's 3x3 unrolled.
static inline __attribute__((always_inline)) void depthwise_rows(
    const int8_t* x, const int8_t* zrow, const int8_t* w, const int32_t* bias, const float* mult, int8_t* y,
    int64_t first_row, int64_t H, int64_t W, int64_t C, int64_t OW, int64_t KH, int64_t KW, int64_t stride,
    int64_t pad_top, int64_t pad_left, int64_t y_zp, int64_t lo, int64_t hi, int64_t oh0, int64_t ohcount) {
  if (KH == 3 && KW == 3)
    depthwise(x, zrow, w, bias, mult, y, first_row, H, W, C, OW, 3, 3, stride, pad_top, pad_left, y_zp, lo, hi,
              oh0, ohcount);
  else
    depthwise(x, zrow, w, bias, mult, y, first_row, H, W, C, OW, KH, KW, stride, pad_top, pad_left, y_zp, lo, hi,
              oh0, ohcount);
}

#include "depthwise_entries.h"

QUANTUNE_DEPTHWISE_ENTRIES(avx512vnni)
