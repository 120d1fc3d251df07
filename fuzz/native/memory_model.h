// The harnesses' picture of memory: every mapping and buffer they hand to
// native code is an exact-size heap block (ASan sees any access outside it).
// Before a call the harness snapshots every block and writes into `expect`
// the changes the call may make; Verify() then demands that nothing else
// changed, byte for byte.
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_support.h"

namespace fuzz {

struct Block {
  std::unique_ptr<uint8_t[]> mem;
  size_t size;
  std::vector<uint8_t> before;  // snapshot before a call
  std::vector<uint8_t> expect;  // snapshot + the changes the call may make
};

class Memory {
 public:
  Block* Alloc(size_t n) {
    auto b = std::make_unique<Block>();
    // Not zeroed: what a mapping held before is the peer's business too.
    b->mem.reset(new uint8_t[n ? n : 1]);
    b->size = n;
    memset(b->mem.get(), 0xa5, n);
    blocks_.push_back(b.get());
    owned_.push_back(std::move(b));
    return blocks_.back();
  }
  void Snapshot() {
    for (Block* b : blocks_) {
      b->before.assign(b->mem.get(), b->mem.get() + b->size);
      b->expect = b->before;
    }
  }
  // Where a live pointer sits in the expected image.
  uint8_t* Expected(const void* p) { return Find(p, true); }
  uint8_t Before(const void* p) { return *Find(p, false); }
  void ExpectU32(void* field, uint32_t v) { memcpy(Expected(field), &v, 4); }
  // Runs `call` (a native method); `want` is the error code the model
  // predicts ("" = success). Returns the result, or undefined after the
  // predicted error; then checks every byte.
  template <typename F>
  Napi::Value CallExpecting(const char* op, const std::string& want, F call) {
    Napi::Value v;
    try {
      v = call();
    } catch (const Napi::Error& e) {
      if (e.Code() != want)
        Fail("%s threw %s (%s), model says %s", op, e.Code().c_str(), e.what(), want.empty() ? "success" : want.c_str());
      Verify(op);
      return Napi::Value();
    }
    if (!want.empty()) Fail("%s succeeded, model says %s", op, want.c_str());
    Verify(op);
    return v;
  }
  // A count the call returned (nothing to check when it threw, as predicted).
  static void ExpectNumber(const char* op, Napi::Value v, double n) {
    if (v.IsUndefined()) return;
    if (!v.IsNumber() || v.As<Napi::Number>().DoubleValue() != n)
      Fail("%s returned %g, model says %g", op, v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1.0, n);
  }
  void Verify(const char* op) const {
    for (size_t i = 0; i < blocks_.size(); i++) {
      const Block* b = blocks_[i];
      if (b->size == 0 || memcmp(b->mem.get(), b->expect.data(), b->size) == 0) continue;
      size_t at = 0;
      while (b->mem[at] == b->expect[at]) at++;
      Fail("%s: mapping %zu byte %zu is %u, expected %u (was %u)", op, i, at, b->mem[at], b->expect[at], b->before[at]);
    }
  }

 private:
  uint8_t* Find(const void* ptr, bool expect) {
    auto p = static_cast<const uint8_t*>(ptr);
    for (Block* b : blocks_)
      if (p >= b->mem.get() && p < b->mem.get() + b->size)
        return (expect ? b->expect.data() : b->before.data()) + (p - b->mem.get());
    Fail("pointer outside every mapping");
  }
  std::vector<Block*> blocks_;
  std::vector<std::unique_ptr<Block>> owned_;
};

// The body of a stateful target: Setup() from the input's head (false: the
// native side refused it, a fine outcome), then up to `max_steps` Step()s,
// then Finish().
template <typename Harness>
int RunSteps(const uint8_t* data, size_t size, int max_steps) {
  Input in(data, size);
  Harness h;
  if (!h.Setup(in)) return 0;
  for (int i = 0; i < max_steps && !in.done(); i++) h.Step(in);
  h.Finish();
  return 0;
}

}  // namespace fuzz
