// What the aarch64 conv kernels share after their register tile: the walk over a workgroup's tiles of 16 output
// channels by up to MAX_TILE_ROWS pixels, each tile shape and border case its own inlined copy of the including
// file's `tile(a, row, ih, iw, n, rows, out, border)`. Include after defining tile().
#pragma once

#define TILE_CASE(R)                      \
  case R:                                 \
    if (border)                           \
      tile(a, row, ih, iw, n, R, out, 1); \
    else                                  \
      tile(a, row, ih, iw, n, R, out, 0); \
    break;

static inline __attribute__((always_inline)) void conv(const conv_args* a, int64_t m0, int64_t mcount, int64_t n0,
                                                       int64_t ncount, enum output out) {
  for (int64_t n = n0; n < n0 + ncount; n += 16) {
    for (int64_t row = m0; row < m0 + mcount; row += MAX_TILE_ROWS) {
      int rows = (int)(m0 + mcount - row >= MAX_TILE_ROWS ? MAX_TILE_ROWS : m0 + mcount - row);
      int64_t ih[MAX_TILE_ROWS], iw[MAX_TILE_ROWS];
      int border = first_taps(a, row, rows, ih, iw);
      switch (rows) {
        TILE_CASE(1) TILE_CASE(2) TILE_CASE(3) TILE_CASE(4) TILE_CASE(5) TILE_CASE(6)
      }
    }
  }
}
