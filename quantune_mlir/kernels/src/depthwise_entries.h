// What the depthwise kernels share after their `depthwise_rows(x, zrow, w, bias, mult, y, first_row, H, W, C, OW,
// KH, KW, stride, pad_top, pad_left, y_zp, lo, hi, oh0, ohcount)` (output rows [oh0, oh0 + ohcount) into y, which
// holds the output from row first_row on) and the conv kernel's `conv()`: the depthwise entry point, a depthwise
// layer and the 1x1 conv that reads its output in one dispatch, and the same with the next block's 1x1 expansion
// too. Include after both; then expand QUANTUNE_DEPTHWISE_ENTRIES(the library's suffix).
#pragma once

// The widest depthwise output row (OW x C) the rewrite fuses, held on the stack (kernels.FUSED_ROW_BYTES).
#define FUSED_ROW_BYTES 16384

// Each row of the depthwise output goes to a buffer on the stack and from there into the conv kernel (a 1x1 conv
// on that row), so the int8 tensor between the two layers never goes to memory and the synchronisation of two
// dispatches is saved. The 1x1 conv's arguments are the conv kernel's (conv_args, its input the row); its output
// and residual are [OH][OW][N]. With expand, a second 1x1 conv (the next inverted-residual block's expansion)
// reads each output row as soon as it is written, while it is in L1, and writes [OH][OW][expand->N]: a 1x1 conv
// needs no other row, so the expansion joins the dispatch with no rows recomputed at workgroup edges.
static inline __attribute__((always_inline)) void depthwise_pointwise(
    const int8_t* x, const int8_t* zrow, const int8_t* dw_w, const int32_t* dw_bias, const float* dw_mult,
    int64_t H, int64_t W, int64_t C, int64_t OW, int64_t KH, int64_t KW, int64_t stride, int64_t pad_top,
    int64_t pad_left, int64_t dw_zp, int64_t dw_lo, int64_t dw_hi, const conv_args* pointwise, enum output out,
    const conv_args* expand, int64_t oh0, int64_t ohcount) {
  int8_t row[FUSED_ROW_BYTES] __attribute__((aligned(64)));
  for (int64_t oh = oh0; oh < oh0 + ohcount; ++oh) {
    depthwise_rows(x, zrow, dw_w, dw_bias, dw_mult, row, oh, H, W, C, OW, KH, KW, stride, pad_top, pad_left, dw_zp,
                   dw_lo, dw_hi, oh, 1);
    conv_args a = *pointwise;
    a.x = row;
    a.y += oh * OW * a.N;
    if (out == INT8_RESIDUAL) a.residual += oh * OW * a.N;
    conv(&a, 0, OW, 0, a.Np, out);
    if (expand) {
      conv_args e = *expand;
      e.x = a.y;
      e.y += oh * OW * e.N;
      conv(&e, 0, OW, 0, e.Np, INT8);
    }
  }
}

// The entries' arguments, in the order rewrite/extern_conv.py emit_depthwise passes them.
#define DEPTHWISE_PARAMS                                                                                     \
  const int8_t *x, size_t x_offset, const int8_t *zrow, size_t zrow_offset, const int8_t *dw_w,              \
      size_t dw_w_offset, const int32_t *dw_bias, size_t dw_bias_offset, const float *dw_mult,               \
      size_t dw_mult_offset
#define POINTWISE_PARAMS                                                                                     \
  const int8_t *w, size_t w_offset, const int32_t *bias, size_t bias_offset, const float *mult, size_t mult_offset
#define FUSED_GEOMETRY_PARAMS                                                                                \
  int8_t *y, size_t y_offset, int64_t H, int64_t W, int64_t C, int64_t OW, int64_t KH, int64_t KW,          \
      int64_t stride, int64_t pad_top, int64_t pad_left, int64_t dw_zp, int64_t dw_lo, int64_t dw_hi,        \
      int64_t N, int64_t Np, int64_t y_zp, int64_t lo, int64_t hi, int64_t oh0, int64_t ohcount
#define POINTWISE_FIELDS                                                                                     \
  .w = w + w_offset, .bias = bias + bias_offset, .mult = mult + mult_offset, .y = y + y_offset, .H = 1,     \
  .W = OW, .C = C, .OW = OW, .N = N, .Np = Np, .KH = 1, .KW = 1, .stride = 1, .y_zp = (int32_t)y_zp,        \
  .lo = (int32_t)lo, .hi = (int32_t)hi
// The expansion: its packed weights, bias and multipliers, its output, output channels (N2, padded Np2) and
// requantize; its input is the 1x1 conv's output, [OW] pixels of N channels a row.
#define EXPAND_PARAMS                                                                                        \
  const int8_t *w2, size_t w2_offset, const int32_t *bias2, size_t bias2_offset, const float *mult2,         \
      size_t mult2_offset
#define EXPAND_GEOMETRY_PARAMS                                                                               \
  int8_t *y2, size_t y2_offset, int64_t N2, int64_t Np2, int64_t y2_zp, int64_t lo2, int64_t hi2
#define EXPAND_FIELDS                                                                                        \
  .w = w2 + w2_offset, .bias = bias2 + bias2_offset, .mult = mult2 + mult2_offset, .y = y2 + y2_offset,     \
  .H = 1, .W = OW, .C = N, .OW = OW, .N = N2, .Np = Np2, .KH = 1, .KW = 1, .stride = 1,                     \
  .y_zp = (int32_t)y2_zp, .lo = (int32_t)lo2, .hi = (int32_t)hi2
#define DEPTHWISE_ARGS                                                                                       \
  x + x_offset, zrow + zrow_offset, dw_w + dw_w_offset, dw_bias + dw_bias_offset, dw_mult + dw_mult_offset, \
      H, W, C, OW, KH, KW, stride, pad_top, pad_left, dw_zp, dw_lo, dw_hi

#define QUANTUNE_DEPTHWISE_ENTRIES(SUFFIX)                                                                    \
  void quantune_depthwise_s8_##SUFFIX(DEPTHWISE_PARAMS, int8_t *y, size_t y_offset, int64_t H, int64_t W,     \
                                      int64_t C, int64_t OW, int64_t KH, int64_t KW, int64_t stride,          \
                                      int64_t pad_top, int64_t pad_left, int64_t y_zp, int64_t lo, int64_t hi, \
                                      int64_t oh0, int64_t ohcount) {                                         \
    depthwise_rows(x + x_offset, zrow + zrow_offset, dw_w + dw_w_offset, dw_bias + dw_bias_offset,            \
                   dw_mult + dw_mult_offset, y + y_offset, 0, H, W, C, OW, KH, KW, stride, pad_top, pad_left, \
                   y_zp, lo, hi, oh0, ohcount);                                                               \
  }                                                                                                           \
  void quantune_depthwise_conv_s8_##SUFFIX(DEPTHWISE_PARAMS, POINTWISE_PARAMS, FUSED_GEOMETRY_PARAMS) {       \
    conv_args pointwise = {POINTWISE_FIELDS};                                                                 \
    depthwise_pointwise(DEPTHWISE_ARGS, &pointwise, INT8, 0, oh0, ohcount);                                   \
  }                                                                                                           \
  void quantune_depthwise_conv_residual_s8_##SUFFIX(DEPTHWISE_PARAMS, POINTWISE_PARAMS, const int8_t *residual, \
                                                    size_t residual_offset, int64_t residual_zp,              \
                                                    float residual_mult, FUSED_GEOMETRY_PARAMS) {             \
    conv_args pointwise = {POINTWISE_FIELDS, .residual = residual + residual_offset,                          \
                           .residual_zp = (int32_t)residual_zp, .residual_mult = residual_mult};              \
    depthwise_pointwise(DEPTHWISE_ARGS, &pointwise, INT8_RESIDUAL, 0, oh0, ohcount);                          \
  }                                                                                                           \
  void quantune_depthwise_conv_expand_s8_##SUFFIX(DEPTHWISE_PARAMS, POINTWISE_PARAMS, EXPAND_PARAMS,          \
                                                  FUSED_GEOMETRY_PARAMS, EXPAND_GEOMETRY_PARAMS) {            \
    conv_args pointwise = {POINTWISE_FIELDS}, expand = {EXPAND_FIELDS};                                       \
    depthwise_pointwise(DEPTHWISE_ARGS, &pointwise, INT8, &expand, oh0, ohcount);                             \
  }                                                                                                           \
  void quantune_depthwise_conv_residual_expand_s8_##SUFFIX(                                                   \
      DEPTHWISE_PARAMS, POINTWISE_PARAMS, EXPAND_PARAMS, const int8_t *residual, size_t residual_offset,      \
      int64_t residual_zp, float residual_mult, FUSED_GEOMETRY_PARAMS, EXPAND_GEOMETRY_PARAMS) {              \
    conv_args pointwise = {POINTWISE_FIELDS, .residual = residual + residual_offset,                          \
                           .residual_zp = (int32_t)residual_zp, .residual_mult = residual_mult};              \
    conv_args expand = {EXPAND_FIELDS};                                                                       \
    depthwise_pointwise(DEPTHWISE_ARGS, &pointwise, INT8_RESIDUAL, &expand, oh0, ohcount);                    \
  }
