// PoolMapping: the pages of one connection's pool (memfd locally; gntalloc or
// gntdev on Xen), mapped MAP_SHARED once per connection. Unlike SharedMapping,
// whose memory never reaches JS, a pool hands out Buffers that view its pages
// directly. So the mapping is reference-counted: the JS object holds one
// reference, every view and every PoolQueue holds one more, and munmap runs
// only when the last is dropped (or when the environment is torn down, after
// its last JS). A view can outlive close() and the socket; it can never point
// at unmapped memory that JS can still read.
#pragma once
#include <napi.h>

#include <atomic>
#include <mutex>
#include <vector>
#include <cstddef>
#include <cstdint>

namespace xenring {

struct AddonData;

// The mapped pages and their holders. Shared by the JS object, its views
// (through their finalizers) and queues; freed by the last Unref(), or
// unmapped at the teardown of the environment that mapped them (`owner`,
// addon_data.h) if holders are left then.
class PoolRegion {
 public:
  // Takes [base, base + length), mapped; never throws.
  PoolRegion(uint8_t* base, size_t length, AddonData* owner);
  uint8_t* base() const { return base_; }
  size_t length() const { return length_; }
  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref();  // munmap and delete at zero
  int refs() const { return refs_.load(std::memory_order_relaxed); }
  // A view of these pages starting at `data` was detached (detachView): it
  // reaches nothing any more, but its finalizer, which drops its reference,
  // runs a loop turn later. Until then it is not a live holder.
  void NoteDetached(const void* data);
  // A view's finalizer, before its Unref(): forgets it if it was detached.
  void ViewGone(const void* data);
  // References other than the mapping's own and views already detached.
  int LiveHolders();
  // Environment teardown (addon.cc): the pages go now; the object goes with
  // its last reference. Idempotent.
  void Unmap();
  // Regions still mapped in this process (for leak tests).
  static int64_t Alive();

 private:
  ~PoolRegion();
  uint8_t* base_;
  size_t length_;
  AddonData* owner_ = nullptr;  // until unmapped
  std::atomic<int> refs_{1};
  // Start addresses of detached views whose finalizers have not run (rare:
  // a connection's close, or a spare view dropped). Locked: refs_ may be
  // dropped off the JS thread.
  std::mutex detached_mu_;
  std::vector<const void*> detached_;
};

class PoolMapping : public Napi::ObjectWrap<PoolMapping> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit PoolMapping(const Napi::CallbackInfo& info);
  ~PoolMapping() override;

  // The region of a live PoolMapping with one reference added for the
  // caller, or nullptr when `v` is not one (or is closed).
  static PoolRegion* Acquire(Napi::Value v);

  // For other native modules that map pool pages themselves (gntalloc and
  // gntdev, native/xen_pool.cc): a PoolMapping owning [base, base + length),
  // munmap'd when its last holder goes. The mapping must need nothing but
  // munmap to release (the Xen driver slot is dropped right after mmap).
  static Napi::Object Adopt(Napi::Env env, uint8_t* base, size_t length);

 private:
  Napi::Value Length(const Napi::CallbackInfo& info);
  Napi::Value Holders(const Napi::CallbackInfo& info);
  Napi::Value View(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  PoolRegion* region_ = nullptr;
  size_t length_ = 0;
};

// Registers PoolMapping, PoolQueue and poolRegionsAlive() on `exports`.
void InitPool(Napi::Env env, Napi::Object exports);

}  // namespace xenring
