// RingEndpoint: one side of a vchan ring pair over mapped shared pages.
// It knows nothing of memfd or grants: it is handed mappings, ring orders and
// a Notifier (notifier.h) to wake the peer: it knows no eventfd or event channel.
//
// Safety rules (after libxenvchan io.c and XSA-86/XSA-155):
// - our own indices live in private shadows; the shared copies are only written;
// - each peer-written index is read once per operation and checked against the
//   ring size before use; a bad value throws EPROTO, never an out-of-ring copy;
// - ring orders are fixed at construction and never re-read from shared memory.
#pragma once
#include <napi.h>

#include <cstdint>

#include "notifier.h"
#include "shared_mapping.h"

namespace xenring {

// Words of the state array bindState() takes (lib/ring/vchan_state.ts).
enum StateWord : uint32_t {
  kStateReadable = 0,  // bytes readable from rx after the call
  kStateWritable = 1,  // bytes free in tx after the call
  kStatePeerLive = 2,  // the peer's live byte (0 gone, 1 connected, 2 waiting)
  kStatePeerFin = 3,   // 1: the peer wrote its last byte (extension)
  kStateWords = 4,
};

// Flags of read() (lib/ring/reader.ts).
enum ReadFlag : uint32_t {
  kReadAck = 1,  // consume pending wake-ups first (a woken reader)
};

// Words of the wake-read array bindWakeRead() takes (lib/ring/reader.ts): what
// the next wake-up reads, natively, before JS runs (WakeRead()).
enum WakeWord : uint32_t {
  kWakeArmed = 0,   // 1: read on the next wake-up; cleared when it does
  kWakeOffset = 1,  // where in the target (setWakeTarget()) the bytes go
  kWakeMax = 2,     // at most this many bytes
  kWakeWatch = 3,   // 1: read nothing if the bindWatch() word differs from kWakeMark
  kWakeMark = 4,
  kWakeSleep = 5,   // 1: ask for the wake-up once the callback returned (SleepOnReturn)
  kWakeWords = 6,
};

// bindRingMethods(endpoint) (ring_endpoint_bound.cc).
Napi::Function BindRingMethodsFunction(Napi::Env env);

class RingEndpoint : public Napi::ObjectWrap<RingEndpoint> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit RingEndpoint(const Napi::CallbackInfo& info);
  ~RingEndpoint() override;
  // ring_endpoint_bound.cc: the hot methods bound to one instance.
  friend struct BoundRingMethods;

  // nullptr unless `v` is a constructed RingEndpoint (ring_endpoint_bound.cc).
  static RingEndpoint* FromValue(Napi::Value v);
  // Set on an endpoint once its constructor succeeded; FromValue() checks it.
  static const napi_type_tag kTag;
  // A wake-up's read (fd_watcher.cc, before it calls JS): if JS armed one
  // (kWakeArmed), disarms it, consumes the wake-ups (`ack`) and reads up to
  // kWakeMax bytes into the wake target, as read(..., Ack, mark) would.
  // Returns the bytes read, or -1 when nothing was armed (or the target no
  // longer fits the words): JS then services the wake-up itself. Throws
  // what read() throws.
  int64_t WakeRead(Napi::Env env, bool ack);
  // After the callback returned (fd_watcher.cc): if JS asked (kWakeSleep),
  // asks the peer for a wake-up and re-checks, as waitData(0, true) would.
  // True when it must not sleep: bytes arrived, the peer finished or left,
  // or the watched word moved (then the watcher calls back again, without
  // waiting for a wake-up). Throws what waitData() throws.
  bool SleepOnReturn(Napi::Env env);

 private:
  struct Ring {
    uint8_t* data = nullptr;
    uint32_t size = 0;
    volatile uint32_t* prod = nullptr;
    volatile uint32_t* cons = nullptr;
  };
  // JS methods
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Readable(const Napi::CallbackInfo& info);
  Napi::Value Writable(const Napi::CallbackInfo& info);
  Napi::Value RequestData(const Napi::CallbackInfo& info);
  Napi::Value RequestSpace(const Napi::CallbackInfo& info);
  Napi::Value WaitData(const Napi::CallbackInfo& info);
  Napi::Value WaitSpace(const Napi::CallbackInfo& info);
  Napi::Value PeerState(const Napi::CallbackInfo& info);
  Napi::Value SetLive(const Napi::CallbackInfo& info);
  Napi::Value SetFin(const Napi::CallbackInfo& info);
  Napi::Value SetNotifier(const Napi::CallbackInfo& info);
  Napi::Value Kick(const Napi::CallbackInfo& info);
  Napi::Value SignalWrite(const Napi::CallbackInfo& info);
  Napi::Value SignalGone(const Napi::CallbackInfo& info);
  Napi::Value Ack(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value BindState(const Napi::CallbackInfo& info);
  Napi::Value BindWatch(const Napi::CallbackInfo& info);
  Napi::Value PoolWord(const Napi::CallbackInfo& info);
  Napi::Value BindWakeRead(const Napi::CallbackInfo& info);
  Napi::Value SetWakeTarget(const Napi::CallbackInfo& info);
  Napi::Value Service(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);

  void CheckOpen(Napi::Env env) const;
  // Writes the ring's state into the JS-owned state array (if bound), so JS
  // reads it without another call. Peer state first: fin implies final prod.
  void Publish(Napi::Env env);
  uint16_t LoadPeerState(Napi::Env env) const;  // live | fin << 8, validated
  uint32_t Available(Napi::Env env) const;   // bytes readable from rx
  uint32_t Space(Napi::Env env) const;       // bytes writable into tx
  // Spins up to `micros` µs until measure() >= want, the peer's live byte
  // changes or stop() is true; returns the last measure().
  template <typename Measure, typename Stop>
  uint32_t SpinFor(int64_t micros, uint32_t want, Measure measure, Stop stop) const;
  // The watched word (bindWatch), or nullptr when none is bound or its buffer was detached.
  const volatile uint32_t* Watched();
  // The wake-read words (bindWakeRead), or nullptr when the endpoint is closed,
  // none are bound or their buffer was detached.
  uint32_t* WakeWords();
  // read()'s body: `ack` consumes the wake-ups first; with `check_watch`,
  // nothing is read if the watched word differs from `watched`.
  size_t ReadInto(Napi::Env env, uint8_t* dst, size_t max, bool ack, bool check_watch, uint32_t watched);
  size_t CopyIn(const uint8_t* src, size_t n);
  size_t CopyOut(uint8_t* dst, size_t n, Napi::Env env);
  // Wakes the peer if it asked for `bit`; returns 0 or the kick's errno.
  int SendNotify(uint8_t bit);
  void RequestNotify(uint8_t bit);  // ask the peer to wake us on `bit`
  int DoKick();                     // 0 or errno; no notifier: nothing to wake
  void ReleaseAll();

  bool server_ = false;
  bool ext_ = false;
  uint8_t* ctrl_ = nullptr;
  Ring rx_, tx_;
  uint32_t rx_cons_ = 0;  // private shadow of our consumer index
  uint32_t tx_prod_ = 0;  // private shadow of our producer index
  volatile uint8_t* own_live_ = nullptr;
  volatile uint8_t* peer_live_ = nullptr;
  volatile uint8_t* own_notify_ = nullptr;   // bits the peer set for us
  volatile uint8_t* peer_notify_ = nullptr;  // bits we set for the peer
  volatile uint8_t* own_fin_ = nullptr;
  volatile uint8_t* peer_fin_ = nullptr;

  Notifier* notifier_ = nullptr;  // owned by notifier_ref_'s handle
  Napi::ObjectReference notifier_ref_;

  // JS-owned Uint32Array (never a view of the shared page), see StateWord.
  uint32_t* state_ = nullptr;
  Napi::Reference<Napi::ArrayBuffer> state_ref_;

  // A peer-written word bindWatch() bound (a pool's descriptor index): a
  // spin also ends when it moves. Only compared, never used as an index.
  const volatile uint32_t* watch_ = nullptr;
  Napi::Reference<Napi::ArrayBuffer> watch_ref_;

  // poolWord()'s view of the extension's fin and pool bytes: no finalizer,
  // owns nothing, detached by ReleaseAll() before the page can go.
  Napi::Reference<Napi::ArrayBuffer> pool_word_ref_;

  // JS-owned Uint32Array (WakeWord) and the Uint8Array a wake-up reads into.
  uint32_t* wake_ = nullptr;
  Napi::Reference<Napi::ArrayBuffer> wake_ref_;
  Napi::ObjectReference wake_target_;

  SharedMapping* mappings_[3] = {nullptr, nullptr, nullptr};
  Napi::ObjectReference mapping_refs_[3];
};

}  // namespace xenring
