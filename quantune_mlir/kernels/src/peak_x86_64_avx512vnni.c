// The machine's int8 multiply-accumulate peak on one core: `iterations` rounds of 12 independent vpdpbusd
// chains (enough to cover the instruction's latency), no memory traffic. The benchmark divides MACs by time
// (each vpdpbusd is 64 MACs) to report a model's fraction of the physical limit.
#include <stddef.h>
#include <stdint.h>
#include <immintrin.h>

void quantune_peak_avx512vnni(const int32_t* in, size_t in_offset, int32_t* out, size_t out_offset,
                              int64_t iterations) {
  __m512i a = _mm512_set1_epi32(in[in_offset]), b = _mm512_set1_epi32(in[in_offset + 1]);
  __m512i acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_epi32(i);
  for (int64_t n = 0; n < iterations; ++n) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
    __asm__ volatile("" : "+v"(a));  // keeps the loop from being folded
  }
  __m512i sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm512_add_epi32(sum, acc[i]);
  out[out_offset] = _mm512_reduce_add_epi32(sum);
}
