// PoolQueue: one side of a single-producer single-consumer queue of
// fixed-size entries in shared memory. The pool uses two per direction: the
// descriptor queue ("at stream position P, pool extent (offset, length)")
// from sender to receiver, and the completion queue (extents handed back)
// from receiver to sender.
//
// Layout at `offset` in a PoolMapping: u32 prod at +0, u32 cons at +64 (own
// cache lines), then `slots` entries of `words` u32 each at +128. Every
// entry ends with (offset, length) of a pool extent.
//
// Safety rules (as ring_endpoint.cc): our own index lives in a private
// shadow and is only written to shared memory; the peer's index is read once
// per call and checked (prod - cons <= slots); every entry is copied out of
// shared memory once into the caller's private array, and its extent is
// checked against `limit` before the caller sees it. Bad values throw EPROTO.
// What an extent means (in flight, held, overlapping) is policy: lib/pool.
//
// peerIndex() is the one exception to "never a view of shared memory": a
// 4-byte Uint32Array over the peer's index, so JS can see that nothing was
// pushed (or popped) without a native call. It is only a hint (pop() and
// push() still read and check the index themselves), and it holds no
// reference on the region: close(), or the queue's collection, detaches it
// before the region can be unmapped, after which it reads `undefined`.
#pragma once
#include <napi.h>

#include <cstdint>

#include "pool_mapping.h"

namespace xenring {

class PoolQueue : public Napi::ObjectWrap<PoolQueue> {
 public:
  static constexpr size_t kProd = 0;
  static constexpr size_t kCons = 64;
  static constexpr size_t kEntries = 128;

  static Napi::Function Init(Napi::Env env);
  explicit PoolQueue(const Napi::CallbackInfo& info);
  ~PoolQueue() override;

 private:
  Napi::Value Push(const Napi::CallbackInfo& info);
  Napi::Value Pop(const Napi::CallbackInfo& info);
  Napi::Value Pending(const Napi::CallbackInfo& info);
  Napi::Value Index(const Napi::CallbackInfo& info);
  Napi::Value PeerIndex(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  void CheckOpen(Napi::Env env) const;
  uint32_t Queued(Napi::Env env) const;  // entries between prod and cons, validated
  void Release();

  PoolRegion* region_ = nullptr;
  volatile uint32_t* prod_ = nullptr;
  volatile uint32_t* cons_ = nullptr;
  volatile uint32_t* entries_ = nullptr;
  uint32_t slots_ = 0;
  uint32_t words_ = 0;
  uint32_t limit_ = 0;
  bool producer_ = false;
  uint32_t shadow_ = 0;  // our own index (prod for the producer, cons for the consumer)
  // The ArrayBuffer behind peerIndex() (external, non-owning): detached in Release().
  Napi::Reference<Napi::ArrayBuffer> peer_view_;
};

}  // namespace xenring
