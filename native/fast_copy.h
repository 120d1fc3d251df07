// Copy routine for ring traffic. glibc's memcpy uses `rep movsb` for
// 2 KiB..512 KiB, which runs ~15x slower when (dst - src) mod 4096 is small
// (shared/baselines/RESULTS.md §6). Ring slots are page-aligned and JS Buffers
// are not, so we copy with our own vector loop instead.
#pragma once
#include <cstddef>

namespace xenring {
void FastCopy(void* dst, const void* src, size_t n);
// The same copy with streaming (non-temporal) stores: for a destination that
// this thread will not read and that cycles through more memory than the
// cache holds (pool extents: docs/benchmark.md "Pool copies past the cache").
// It does not read each destination line before writing it, which saves a
// cold copy about half its memory traffic. Ends with a store fence.
void FastCopyStreaming(void* dst, const void* src, size_t n);
}
