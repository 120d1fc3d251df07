#include "fast_copy.h"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace xenring {

namespace {

#if defined(__x86_64__)
// kStreaming: streaming (non-temporal) stores, which write the destination
// lines without reading them first and bypass the cache; d must then be
// 32-byte aligned (FastCopyStreaming sees to it). The tail is stored the
// ordinary way.
template <bool kStreaming>
__attribute__((target("avx2"), always_inline)) inline void Store(uint8_t* to, __m256i v) {
  if constexpr (kStreaming) _mm256_stream_si256(reinterpret_cast<__m256i*>(to), v);
  else _mm256_storeu_si256(reinterpret_cast<__m256i*>(to), v);
}

template <bool kStreaming>
inline void Store(uint8_t* to, __m128i v) {
  if constexpr (kStreaming) _mm_stream_si128(reinterpret_cast<__m128i*>(to), v);
  else _mm_storeu_si128(reinterpret_cast<__m128i*>(to), v);
}

template <bool kStreaming>
__attribute__((target("avx2"))) void CopyAvx2(uint8_t* d, const uint8_t* s, size_t n) {
  while (n >= 128) {
    __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s));
    __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 32));
    __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 64));
    __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 96));
    Store<kStreaming>(d, a);
    Store<kStreaming>(d + 32, b);
    Store<kStreaming>(d + 64, c);
    Store<kStreaming>(d + 96, e);
    s += 128; d += 128; n -= 128;
  }
  while (n >= 32) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d),
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s)));
    s += 32; d += 32; n -= 32;
  }
  if (n) memcpy(d, s, n);  // < 32 bytes: glibc uses plain moves here
}

template <bool kStreaming>
void CopySse2(uint8_t* d, const uint8_t* s, size_t n) {
  while (n >= 64) {
    __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 16));
    __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 32));
    __m128i e = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 48));
    Store<kStreaming>(d, a);
    Store<kStreaming>(d + 16, b);
    Store<kStreaming>(d + 32, c);
    Store<kStreaming>(d + 48, e);
    s += 64; d += 64; n -= 64;
  }
  if (n) memcpy(d, s, n);
}

using CopyFn = void (*)(uint8_t*, const uint8_t*, size_t);
bool HasAvx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
}
const CopyFn kCopy = HasAvx2() ? CopyAvx2<false> : CopySse2<false>;
const CopyFn kStream = HasAvx2() ? CopyAvx2<true> : CopySse2<true>;
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

void FastCopyStreaming(void* dst, const void* src, size_t n) {
  if (n < 2048) {
    memcpy(dst, src, n);
    return;
  }
#if defined(__x86_64__)
  auto* d = static_cast<uint8_t*>(dst);
  auto* s = static_cast<const uint8_t*>(src);
  // Streaming stores need an aligned destination: the bytes before the
  // first 32-byte boundary go the ordinary way.
  size_t head = (32 - (reinterpret_cast<uintptr_t>(d) & 31)) & 31;
  if (head) memcpy(d, s, head);
  kStream(d + head, s + head, n - head);
  // Streaming stores are weakly ordered: they must all be visible before
  // the caller publishes them (a descriptor's release store).
  _mm_sfence();
#else
  memcpy(dst, src, n);
#endif
}

}  // namespace xenring
