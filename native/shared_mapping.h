// SharedMapping: pages mapped MAP_SHARED from an fd (memfd locally; gntalloc
// or gntdev on Xen). Of the memory, JS sees only one word (FirstPageWord: the
// ring's pool word) and single bytes (readByte, casByte): ring endpoints pin
// a mapping while they use it, and unmap() refuses while it is pinned.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace xenring {

struct AddonData;

class SharedMapping : public Napi::ObjectWrap<SharedMapping> {
 public:
  static Napi::Function Init(Napi::Env env, Napi::FunctionReference* ctor);
  explicit SharedMapping(const Napi::CallbackInfo& info);
  ~SharedMapping() override;

  // For other native modules (e.g. the Xen devices) that map pages themselves.
  // Takes ownership: munmap(base, length) when released, or before it
  // rethrows if the object cannot be made.
  static Napi::Object Adopt(Napi::Env env, uint8_t* base, size_t length, bool writable);
  static SharedMapping* Unwrap(Napi::Value v);

  uint8_t* base() const { return base_; }
  size_t length() const { return length_; }
  bool writable() const { return writable_; }
  void Pin() { pins_++; }
  void Unpin() { if (pins_ > 0) pins_--; }
  // munmap now (unmap(), the finalizer, or environment teardown in addon.cc,
  // pinned or not). Idempotent. Detaches the first page's view first.
  void Release();
  // A Uint32Array(1) over the 4-byte word at `offset` of the first page,
  // on one external ArrayBuffer of just that word, made at the first call
  // and given again for the same offset (undefined for any other offset, or
  // once nothing is mapped). Node frees every external buffer through a
  // thread-safe immediate (an event-loop wake-up): made per ring endpoint,
  // that was one per connection and side. Valid until Release() detaches it.
  Napi::Value FirstPageWord(Napi::Env env, size_t offset);

 private:
  Napi::Value Length(const Napi::CallbackInfo& info);
  Napi::Value Unmap(const Napi::CallbackInfo& info);
  Napi::Value ReadByte(const Napi::CallbackInfo& info);
  Napi::Value CasByte(const Napi::CallbackInfo& info);
  // Takes base_..base_ + length_ into the environment's list (addon_data.h).
  void Track(AddonData* owner);

  uint8_t* base_ = nullptr;
  size_t length_ = 0;
  bool writable_ = false;
  int pins_ = 0;
  AddonData* owner_ = nullptr;  // while mapped
  Napi::Reference<Napi::ArrayBuffer> word_buffer_;  // FirstPageWord()'s 4 bytes, once made
  Napi::Reference<Napi::Uint32Array> word_view_;    // its view
  size_t word_offset_ = 0;
};

}  // namespace xenring
