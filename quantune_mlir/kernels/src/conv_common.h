// What every conv kernel library shares: the arguments one call works on and the three entry points IREE calls
// (rewrite/extern_conv.py passes their arguments in this order). A library defines
// `conv(const conv_args*, int64_t m0, int64_t mcount, int64_t n0, int64_t ncount, enum output)` (inlined, so
// that each entry gets its own copy for its output kind) and then expands QUANTUNE_CONV_ENTRIES(its suffix).
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct {
  const int8_t* x;
  const int8_t* zrow;  // at least C bytes of the input zero point: what a tap in the padding reads
  const int8_t* w;
  const int32_t* bias;
  const float* mult;
  const int8_t* residual;
  int8_t* y;
  float* y_f32;
  int64_t pixels;
  // the input's height and width, unpadded, and the padding rows above it and columns left of it (the padding
  // below and right follows from the output size)
  int64_t H, W, pad_top, pad_left;
  int64_t C, OW, N, Np, KH, KW, stride;
  int32_t y_zp, lo, hi, residual_zp;
  float residual_mult;
} conv_args;

enum output { INT8, INT8_RESIDUAL, FLOAT32 };

// The packed weights of output channels n, n+1, ... (n a multiple of 16): they lie in blocks of 64 channels,
// each [K/group][width][group] with width = min(64, Np - block start) and group the bytes of one step of the
// reduction (4 for sdot and vpdpbusd, 8 for smmla), so that a workgroup's weights are one stream
// (kernels/__init__.py pack_conv_weights). *step: the bytes from one step to the next.
static inline __attribute__((always_inline)) const int8_t* block_weights(const conv_args* a, int64_t n,
                                                                         int group, int64_t* step) {
  int64_t start = n - n % 64, width = a->Np - start < 64 ? a->Np - start : 64;
  *step = width * group;
  return a->w + start * a->KH * a->KW * a->C + (n - start) * group;
}

// The depthwise kernels' output columns [*first, *last) none of whose taps lie in the left or right padding.
static inline __attribute__((always_inline)) void inside_columns(int64_t W, int64_t OW, int64_t KW, int64_t stride,
                                                                 int64_t pad_left, int64_t* first, int64_t* last) {
  *first = (pad_left + stride - 1) / stride;
  if (*first > OW) *first = OW;
  *last = W - KW + pad_left < 0 ? 0 : (W - KW + pad_left) / stride + 1;
  if (*last > OW) *last = OW;
  if (*last < *first) *last = *first;
}

// The taps [*k0, *k1) of a K-wide window starting at `start` that lie inside [0, size).
static inline __attribute__((always_inline)) void window_inside(int64_t start, int64_t K, int64_t size, int64_t* k0,
                                                                int64_t* k1) {
  *k0 = start < 0 ? -start : 0;
  *k1 = start + K > size ? size - start : K;
}

#define MAX_TILE_ROWS 6

static inline __attribute__((always_inline)) const int8_t* tap_address(const conv_args* a, int64_t ih, int64_t iw) {
  return (uint64_t)ih < (uint64_t)a->H && (uint64_t)iw < (uint64_t)a->W ? a->x + (ih * a->W + iw) * a->C : a->zrow;
}

// The first tap (the top left one, possibly in the padding) of each of output pixels [row, row + rows), and
// whether a tap of theirs lies in the padding.
static inline __attribute__((always_inline)) int first_taps(const conv_args* a, int64_t row, int rows, int64_t ih[],
                                                            int64_t iw[]) {
  int border = 0;
  for (int r = 0; r < rows; ++r) {
    ih[r] = (row + r) / a->OW * a->stride - a->pad_top;
    iw[r] = (row + r) % a->OW * a->stride - a->pad_left;
    border |= ih[r] < 0 || iw[r] < 0 || ih[r] + a->KH > a->H || iw[r] + a->KW > a->W;
  }
  return border;
}

// Where each pixel of a register tile reads tap (kh, kw): its input pixel, or on the border the zero-point row
// where that lies in the padding, so the padding costs no dispatch of its own.
static inline __attribute__((always_inline)) void tap_rows(const conv_args* a, const int64_t ih[], const int64_t iw[],
                                                           int rows, int64_t kh, int64_t kw, int border,
                                                           const int8_t* at[]) {
  for (int r = 0; r < rows; ++r)
    at[r] = border ? tap_address(a, ih[r] + kh, iw[r] + kw) : a->x + ((ih[r] + kh) * a->W + iw[r] + kw) * a->C;
}

#define CONV_PARAMS                                                                                         \
  const int8_t *x, size_t x_offset, const int8_t *zrow, size_t zrow_offset, const int8_t *w, size_t w_offset, \
      const int32_t *bias, size_t bias_offset, const float *mult, size_t mult_offset
#define GEOMETRY_PARAMS                                                                                  \
  int64_t H, int64_t W, int64_t C, int64_t OW, int64_t N, int64_t Np, int64_t KH, int64_t KW, int64_t stride, \
      int64_t pad_top, int64_t pad_left
#define WORKGROUP_PARAMS int64_t m0, int64_t mcount, int64_t n0, int64_t ncount
#define REQUANTIZE_PARAMS int8_t *y, size_t y_offset, GEOMETRY_PARAMS, int64_t y_zp, int64_t lo, int64_t hi
#define CONV_FIELDS                                                                                           \
  .x = x + x_offset, .zrow = zrow + zrow_offset, .w = w + w_offset, .bias = bias + bias_offset,              \
  .mult = mult + mult_offset, .H = H, .W = W, .pad_top = pad_top, .pad_left = pad_left, .C = C, .OW = OW,    \
  .N = N, .Np = Np, .KH = KH, .KW = KW, .stride = stride
#define REQUANTIZE_FIELDS .y = y + y_offset, .y_zp = (int32_t)y_zp, .lo = (int32_t)lo, .hi = (int32_t)hi

#define QUANTUNE_CONV_ENTRIES(SUFFIX)                                                                          \
  void quantune_conv_s8_##SUFFIX(CONV_PARAMS, REQUANTIZE_PARAMS, WORKGROUP_PARAMS) {                          \
    conv_args a = {CONV_FIELDS, REQUANTIZE_FIELDS};                                                           \
    conv(&a, m0, mcount, n0, ncount, INT8);                                                                   \
  }                                                                                                           \
  void quantune_conv_residual_s8_##SUFFIX(CONV_PARAMS, const int8_t *residual, size_t residual_offset,        \
                                          int64_t residual_zp, float residual_mult, REQUANTIZE_PARAMS,        \
                                          WORKGROUP_PARAMS) {                                                 \
    conv_args a = {CONV_FIELDS, REQUANTIZE_FIELDS, .residual = residual + residual_offset,                    \
                   .residual_zp = (int32_t)residual_zp, .residual_mult = residual_mult};                      \
    conv(&a, m0, mcount, n0, ncount, INT8_RESIDUAL);                                                          \
  }                                                                                                           \
  void quantune_conv_f32_##SUFFIX(CONV_PARAMS, float *y, size_t y_offset, GEOMETRY_PARAMS, int64_t pixels,    \
                                  WORKGROUP_PARAMS) {                                                         \
    conv_args a = {CONV_FIELDS, .y_f32 = y + y_offset, .pixels = pixels};                                     \
    conv(&a, m0, mcount, n0, ncount, FLOAT32);                                                                \
  }

