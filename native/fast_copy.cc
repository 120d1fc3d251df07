#include "fast_copy.h"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace xenring {

namespace {

#if defined(__x86_64__)
__attribute__((target("avx2"))) void CopyAvx2(uint8_t* d, const uint8_t* s, size_t n) {
  while (n >= 128) {
    __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s));
    __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 32));
    __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 64));
    __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 96));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d), a);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 32), b);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 64), c);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 96), e);
    s += 128; d += 128; n -= 128;
  }
  while (n >= 32) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d),
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s)));
    s += 32; d += 32; n -= 32;
  }
  if (n) memcpy(d, s, n);  // < 32 bytes: glibc uses plain moves here
}

void CopySse2(uint8_t* d, const uint8_t* s, size_t n) {
  while (n >= 64) {
    __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 16));
    __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 32));
    __m128i e = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 48));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d), a);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 16), b);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 32), c);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 48), e);
    s += 64; d += 64; n -= 64;
  }
  if (n) memcpy(d, s, n);
}

using CopyFn = void (*)(uint8_t*, const uint8_t*, size_t);
CopyFn PickCopy() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") ? CopyAvx2 : CopySse2;
}
const CopyFn kCopy = PickCopy();
#endif

}  // namespace

void FastCopy(void* dst, const void* src, size_t n) {
  // Below the rep-movsb range glibc's small-size paths are already optimal.
  if (n < 2048) {
    memcpy(dst, src, n);
    return;
  }
#if defined(__x86_64__)
  kCopy(static_cast<uint8_t*>(dst), static_cast<const uint8_t*>(src), n);
#else
  memcpy(dst, src, n);
#endif
}

}  // namespace xenring
