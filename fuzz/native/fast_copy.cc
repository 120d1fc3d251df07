// Fuzz target `fast_copy`: FastCopy (native/fast_copy.cc, the vector copy
// every ring transfer goes through) and FastCopyStreaming (its streaming-store
// form, for copies into the pool) must copy exactly n bytes, touching
// nothing before dst or after dst + n, for every length and alignment.
// Source and destination are exact-size heap blocks, so ASan sees any overrun.
#include <memory>

#include "../../native/fast_copy.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  while (!in.done()) {
    // Lengths around the 2 KiB switch-over and the 32/64/128-byte loop steps.
    size_t n = in.u16() % 12288;
    size_t src_pad = in.u8() % 64, dst_pad = in.u8() % 64, dst_tail = in.u8() % 64;
    std::unique_ptr<uint8_t[]> src(new uint8_t[src_pad + n + 1]);
    std::unique_ptr<uint8_t[]> dst(new uint8_t[dst_pad + n + dst_tail + 1]);
    uint8_t salt = in.u8();
    bool streaming = salt & 1;
    for (size_t i = 0; i < src_pad + n; i++) src[i] = static_cast<uint8_t>(i * 131 + salt);
    memset(dst.get(), 0xee, dst_pad + n + dst_tail);
    if (streaming)
      xenring::FastCopyStreaming(dst.get() + dst_pad, src.get() + src_pad, n);
    else
      xenring::FastCopy(dst.get() + dst_pad, src.get() + src_pad, n);
    for (size_t i = 0; i < dst_pad + n + dst_tail; i++) {
      uint8_t want = i >= dst_pad && i < dst_pad + n ? src[src_pad + i - dst_pad] : 0xee;
      if (dst[i] != want) fuzz::Fail("%s(n=%zu, src+%zu, dst+%zu): byte %zu is %u, want %u", streaming ? "FastCopyStreaming" : "FastCopy", n, src_pad, dst_pad, i, dst[i], want);
    }
  }
  return 0;
}
