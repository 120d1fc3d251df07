#include "ring_endpoint.h"

#include <time.h>
#include <cstdint>

#include <cerrno>
#include <cstring>
#include <string>

#include "errors.h"
#include "shared_view.h"
#include "fast_copy.h"
#include "vchan_layout.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define XR_CPU_RELAX() _mm_pause()
#else
#define XR_CPU_RELAX() __asm__ __volatile__("" ::: "memory")
#endif

namespace xenring {

using namespace vchan;

namespace {

struct Range {
  const uint8_t* lo;
  const uint8_t* hi;
};
bool Overlaps(Range a, Range b) { return a.lo < b.hi && b.lo < a.hi; }

[[noreturn]] void ThrowCorrupt(Napi::Env env) {
  ThrowCode(env, "EPROTO", "peer corrupted the shared ring indices");
}

uint64_t NowNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Reads {mapping, offset, order} and checks the ring lies inside the mapping.
struct RingSpec {
  SharedMapping* mapping;
  Napi::Object object;
  uint8_t* data;
  uint32_t size;
};

// The "words" argument of bindState() / bindWakeRead(): a Uint32Array of at least `min` words.
Napi::Uint32Array WordsArg(const Napi::CallbackInfo& info, size_t min, const char* too_short) {
  if (info.Length() < 1 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
    ThrowType(info.Env(), "The \"words\" argument must be a Uint32Array");
  Napi::Uint32Array a = info[0].As<Napi::Uint32Array>();
  if (a.ElementLength() < min) ThrowRange(info.Env(), too_short);
  return a;
}

RingSpec ParseRing(Napi::Env env, Napi::Value mapping, Napi::Value off, Napi::Value ord, const char* name) {
  SharedMapping* m = SharedMapping::Unwrap(mapping);
  if (m == nullptr || m->base() == nullptr)
    ThrowType(env, (std::string("options.") + name + ".mapping must be a live SharedMapping").c_str());
  if (!off.IsNumber() || !ord.IsNumber())
    ThrowType(env, (std::string("options.") + name + ".offset and .order must be numbers").c_str());
  double offset = off.As<Napi::Number>().DoubleValue();
  int64_t order = ord.As<Napi::Number>().Int64Value();
  if (order < kMinOrder || order > kMaxOrder || ord.As<Napi::Number>().DoubleValue() != double(order))
    ThrowRange(env, (std::string("options.") + name + ".order must be an integer in [10, 26]").c_str());
  uint64_t size = uint64_t(1) << order;
  // 2^53 bounds the double before the cast (casting a larger one is UB).
  if (!(offset >= 0) || offset >= 9007199254740992.0 || offset != double(uint64_t(offset)) ||
      uint64_t(offset) + size > m->length())
    ThrowRange(env, (std::string("options.") + name + " does not fit inside its mapping").c_str());
  return RingSpec{m, mapping.As<Napi::Object>(), m->base() + uint64_t(offset), uint32_t(size)};
}

RingSpec ParseRing(Napi::Env env, Napi::Object opts, const char* name) {
  Napi::Value v = opts.Get(name);
  if (!v.IsObject()) ThrowType(env, (std::string("options.") + name + " must be an object").c_str());
  Napi::Object o = v.As<Napi::Object>();
  // Read once: the object checked is the one the endpoint keeps alive (a
  // getter could return another one on a second read, and the mapping in
  // use would then be collected and unmapped under the ring).
  Napi::Value mapping = o.Get("mapping");
  return ParseRing(env, mapping, o.Get("offset"), o.Get("order"), name);
}

}  // namespace

const napi_type_tag RingEndpoint::kTag = {0x78656e72696e6772ull, 0x696e67656e647031ull};

Napi::Function RingEndpoint::Init(Napi::Env env) {
  return DefineClass(env, "RingEndpoint",
                     {InstanceMethod("write", &RingEndpoint::Write),
                      InstanceMethod("read", &RingEndpoint::Read),
                      InstanceMethod("readable", &RingEndpoint::Readable),
                      InstanceMethod("writable", &RingEndpoint::Writable),
                      InstanceMethod("requestData", &RingEndpoint::RequestData),
                      InstanceMethod("requestSpace", &RingEndpoint::RequestSpace),
                      InstanceMethod("waitData", &RingEndpoint::WaitData),
                      InstanceMethod("waitSpace", &RingEndpoint::WaitSpace),
                      InstanceMethod("peerState", &RingEndpoint::PeerState),
                      InstanceMethod("setLive", &RingEndpoint::SetLive),
                      InstanceMethod("setFin", &RingEndpoint::SetFin),
                      InstanceMethod("setNotifier", &RingEndpoint::SetNotifier),
                      InstanceMethod("kick", &RingEndpoint::Kick),
                      InstanceMethod("signalWrite", &RingEndpoint::SignalWrite),
                      InstanceMethod("signalGone", &RingEndpoint::SignalGone),
                      InstanceMethod("ack", &RingEndpoint::Ack),
                      InstanceMethod("close", &RingEndpoint::Close),
                      InstanceMethod("bindState", &RingEndpoint::BindState),
                      InstanceMethod("bindWatch", &RingEndpoint::BindWatch),
                      InstanceMethod("poolWord", &RingEndpoint::PoolWord),
                      InstanceMethod("bindWakeRead", &RingEndpoint::BindWakeRead),
                      InstanceMethod("setWakeTarget", &RingEndpoint::SetWakeTarget),
                      InstanceMethod("service", &RingEndpoint::Service),
                      InstanceMethod("info", &RingEndpoint::Info)});
}

// new RingEndpoint({ role, init, ext, control, controlOffset, left, right })
// new RingEndpoint(server, init, ext, control, controlOffset,
//                  leftMapping, leftOffset, leftOrder, rightMapping, rightOffset, rightOrder)
// The second form, for the transports' own calls (three endpoints per
// reconnect: the server's, the client's, and the one that prepares the
// ring), reads no named property: each one read made its key string anew.
RingEndpoint::RingEndpoint(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingEndpoint>(info) {
  GuardConstructor(info.Env(), [&] {
    Napi::Env env = info.Env();
    bool positional = info.Length() >= 11 && info[0].IsBoolean();
    if (!positional && (info.Length() < 1 || !info[0].IsObject()))
      ThrowType(env, "The \"options\" argument must be of type object");
    // (In the second form `opts` is never read.)
    Napi::Object opts = (positional ? info.This() : info[0]).As<Napi::Object>();
    bool init;
    if (positional) {
      server_ = info[0].ToBoolean();
      init = info[1].ToBoolean();
      ext_ = info[2].ToBoolean();
    } else {
      Napi::Value role = opts.Get("role");
      if (!role.IsString()) ThrowType(env, "options.role must be 'server' or 'client'");
      std::string r = role.As<Napi::String>().Utf8Value();
      if (r != "server" && r != "client") ThrowType(env, "options.role must be 'server' or 'client'");
      server_ = r == "server";
      ext_ = opts.Get("ext").ToBoolean();
      init = opts.Get("init").ToBoolean();
    }

    Napi::Value control = positional ? info[3] : opts.Get("control");  // read once, as ParseRing's mappings
    SharedMapping* cm = SharedMapping::Unwrap(control);
    if (cm == nullptr || cm->base() == nullptr || !cm->writable())
      ThrowType(env, "options.control must be a live, writable SharedMapping");
    Napi::Value co = positional ? info[4] : opts.Get("controlOffset");
    double coff = co.IsNumber() ? co.As<Napi::Number>().DoubleValue() : 0;
    if (!(coff >= 0) || coff >= 9007199254740992.0 || coff != double(uint64_t(coff)) || uint64_t(coff) % 8 != 0 ||
        uint64_t(coff) + kPageSize > cm->length())
      ThrowRange(env, "options.controlOffset does not leave a whole control page inside the mapping");
    ctrl_ = cm->base() + uint64_t(coff);

    RingSpec left = positional ? ParseRing(env, info[5], info[6], info[7], "left") : ParseRing(env, opts, "left");
    RingSpec right = positional ? ParseRing(env, info[8], info[9], info[10], "right") : ParseRing(env, opts, "right");
    RingSpec& rx = server_ ? left : right;
    RingSpec& tx = server_ ? right : left;
    if (!tx.mapping->writable()) ThrowType(env, "the ring this side writes must be mapped writable");

    // No ring may overlap the other, the header, or (with ext) the extension.
    Range l{left.data, left.data + left.size}, rr{right.data, right.data + right.size};
    Range hdr{ctrl_, ctrl_ + kHeaderSize}, ext{ctrl_ + kExtMagic, ctrl_ + kExtEnd};
    if (Overlaps(l, rr) || Overlaps(l, hdr) || Overlaps(rr, hdr) ||
        (ext_ && (Overlaps(l, ext) || Overlaps(rr, ext))))
      ThrowRange(env, "ring placement overlaps another ring or the control header");

    rx_.data = rx.data;
    rx_.size = rx.size;
    tx_.data = tx.data;
    tx_.size = tx.size;
    auto u32 = [this](size_t off) { return reinterpret_cast<volatile uint32_t*>(ctrl_ + off); };
    if (server_) {
      rx_.prod = u32(kLeftProd);   rx_.cons = u32(kLeftCons);
      tx_.prod = u32(kRightProd);  tx_.cons = u32(kRightCons);
      own_live_ = ctrl_ + kSrvLive;     peer_live_ = ctrl_ + kCliLive;
      own_notify_ = ctrl_ + kSrvNotify; peer_notify_ = ctrl_ + kCliNotify;
      own_fin_ = ctrl_ + kExtSrvFin;    peer_fin_ = ctrl_ + kExtCliFin;
    } else {
      rx_.prod = u32(kRightProd);  rx_.cons = u32(kRightCons);
      tx_.prod = u32(kLeftProd);   tx_.cons = u32(kLeftCons);
      own_live_ = ctrl_ + kCliLive;     peer_live_ = ctrl_ + kSrvLive;
      own_notify_ = ctrl_ + kCliNotify; peer_notify_ = ctrl_ + kSrvNotify;
      own_fin_ = ctrl_ + kExtCliFin;    peer_fin_ = ctrl_ + kExtSrvFin;
    }

    if (init) {
      if (!server_) ThrowType(env, "only the server initialises the control page");
      memset(ctrl_, 0, kHeaderSize);
      auto* orders = reinterpret_cast<volatile uint16_t*>(ctrl_ + kLeftOrder);
      orders[0] = static_cast<uint16_t>(__builtin_ctz(left.size));
      orders[1] = static_cast<uint16_t>(__builtin_ctz(right.size));
      ctrl_[kCliLive] = kLiveWaiting;
      ctrl_[kSrvLive] = kLiveConnected;
      ctrl_[kCliNotify] = kNotifyWrite;  // tell us about the client's first write
      if (ext_) {
        memset(ctrl_ + kExtMagic, 0, kExtEnd - kExtMagic);
        *reinterpret_cast<volatile uint32_t*>(ctrl_ + kExtMagic) = kExtMagicValue;
      }
      __atomic_thread_fence(__ATOMIC_SEQ_CST);
    } else if (ext_ && *reinterpret_cast<volatile uint32_t*>(ctrl_ + kExtMagic) != kExtMagicValue) {
      ThrowCode(env, "EPROTO", "peer does not speak the xenring extension");
    }
    // Shadows start from the shared values once; afterwards only we write them.
    rx_cons_ = __atomic_load_n(rx_.cons, __ATOMIC_ACQUIRE);
    tx_prod_ = __atomic_load_n(tx_.prod, __ATOMIC_ACQUIRE);

    SharedMapping* ms[3] = {cm, left.mapping, right.mapping};
    Napi::Object objs[3] = {control.As<Napi::Object>(), left.object, right.object};
    for (int i = 0; i < 3; i++) {
      mappings_[i] = ms[i];
      ms[i]->Pin();
      mapping_refs_[i] = Napi::Persistent(objs[i]);
    }
    // Last: only a whole endpoint is ever found by FromValue().
    info.This().As<Napi::Object>().TypeTag(&kTag);
  });
}

RingEndpoint::~RingEndpoint() { ReleaseAll(); }

void RingEndpoint::ReleaseAll() {
  // The pool word's view first: no JS reads the page through it once it may go.
  DetachSharedView(pool_word_ref_);
  for (int i = 0; i < 3; i++) {
    if (mappings_[i] != nullptr) mappings_[i]->Unpin();
    mappings_[i] = nullptr;
    if (!mapping_refs_[i].IsEmpty()) mapping_refs_[i].Reset();
  }
  ctrl_ = nullptr;
  notifier_ = nullptr;
  if (!notifier_ref_.IsEmpty()) notifier_ref_.Reset();
  state_ = nullptr;
  if (!state_ref_.IsEmpty()) state_ref_.Reset();
  watch_ = nullptr;
  if (!watch_ref_.IsEmpty()) watch_ref_.Reset();
  wake_ = nullptr;
  if (!wake_ref_.IsEmpty()) wake_ref_.Reset();
  if (!wake_target_.IsEmpty()) wake_target_.Reset();
}

void RingEndpoint::CheckOpen(Napi::Env env) const {
  if (ctrl_ == nullptr) ThrowCode(env, "ERR_SOCKET_CLOSED", "ring endpoint is closed");
}

uint16_t RingEndpoint::LoadPeerState(Napi::Env env) const {
  uint8_t fin = ext_ ? __atomic_load_n(peer_fin_, __ATOMIC_ACQUIRE) : 0;
  uint8_t live = __atomic_load_n(peer_live_, __ATOMIC_ACQUIRE);
  if (live > kLiveWaiting || fin > 1) ThrowCode(env, "EPROTO", "peer wrote an invalid state byte");
  return static_cast<uint16_t>(live | (fin << 8));
}

void RingEndpoint::Publish(Napi::Env env) {
  if (state_ == nullptr) return;
  // A detached buffer (transferred away) no longer belongs to us: stop.
  if (state_ref_.Value().IsDetached()) {
    state_ = nullptr;
    state_ref_.Reset();
    return;
  }
  uint16_t peer = LoadPeerState(env);
  state_[kStatePeerLive] = peer & 0xff;
  state_[kStatePeerFin] = peer >> 8;
  state_[kStateReadable] = Available(env);
  state_[kStateWritable] = Space(env);
}

uint32_t RingEndpoint::Available(Napi::Env env) const {
  uint32_t prod = __atomic_load_n(rx_.prod, __ATOMIC_ACQUIRE);  // read once
  uint32_t ready = prod - rx_cons_;
  if (ready > rx_.size) ThrowCorrupt(env);
  return ready;
}

uint32_t RingEndpoint::Space(Napi::Env env) const {
  uint32_t cons = __atomic_load_n(tx_.cons, __ATOMIC_ACQUIRE);  // read once
  uint32_t used = tx_prod_ - cons;
  if (used > tx_.size) ThrowCorrupt(env);
  return tx_.size - used;
}

size_t RingEndpoint::CopyIn(const uint8_t* src, size_t n) {
  uint32_t pos = tx_prod_ & (tx_.size - 1);
  size_t first = n < size_t(tx_.size - pos) ? n : size_t(tx_.size - pos);
  FastCopy(tx_.data + pos, src, first);
  if (n > first) FastCopy(tx_.data, src + first, n - first);
  tx_prod_ += static_cast<uint32_t>(n);
  return n;
}

size_t RingEndpoint::CopyOut(uint8_t* dst, size_t n, Napi::Env env) {
  uint32_t pos = rx_cons_ & (rx_.size - 1);
  size_t first = n < size_t(rx_.size - pos) ? n : size_t(rx_.size - pos);
  FastCopy(dst, rx_.data + pos, first);
  if (n > first) FastCopy(dst + first, rx_.data, n - first);
  rx_cons_ += static_cast<uint32_t>(n);
  return n;
}

int RingEndpoint::DoKick() { return notifier_ != nullptr ? notifier_->Kick() : 0; }

int RingEndpoint::SendNotify(uint8_t bit) {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  // Cheap check first: a busy stream whose peer is awake makes no RMW, no syscall.
  if ((__atomic_load_n(own_notify_, __ATOMIC_RELAXED) & bit) == 0) return 0;
  uint8_t prev = __atomic_fetch_and(own_notify_, static_cast<uint8_t>(~bit), __ATOMIC_SEQ_CST);
  return (prev & bit) ? DoKick() : 0;
}

void RingEndpoint::RequestNotify(uint8_t bit) {
  __atomic_fetch_or(peer_notify_, bit, __ATOMIC_SEQ_CST);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

// write(chunks: Buffer | Buffer[], offset = 0) -> bytes copied into the ring.
// Copies as much of the chunk list as fits, starting `offset` bytes into it.
Napi::Value RingEndpoint::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  double off = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0;
  // Past 2^53 (or Infinity) every chunk is skipped; casting such a double is UB.
  size_t skip = off > 0 ? (off < 9007199254740992.0 ? static_cast<size_t>(off) : SIZE_MAX) : 0;
  uint32_t space = Space(env);
  size_t total = 0;
  auto take = [&](Napi::Value v) {
    if (!v.IsTypedArray()) ThrowType(env, "chunks must be Buffers or Uint8Arrays");
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    const uint8_t* p = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    size_t len = ta.ByteLength();
    if (skip >= len) {
      skip -= len;
      return;
    }
    p += skip;
    len -= skip;
    skip = 0;
    size_t n = len < space - total ? len : space - total;
    CopyIn(p, n);
    total += n;
  };
  if (info.Length() > 0 && info[0].IsArray()) {
    Napi::Array a = info[0].As<Napi::Array>();
    uint32_t count = a.Length();
    for (uint32_t i = 0; i < count && total < space; i++) take(a.Get(i));
  } else if (info.Length() > 0) {
    if (space > 0) take(info[0]);
  } else {
    ThrowType(env, "The \"chunks\" argument is required");
  }
  if (total > 0) {
    __atomic_store_n(tx_.prod, tx_prod_, __ATOMIC_RELEASE);
    // The bytes are in the ring either way; a failed kick fails the channel.
    if (int err = SendNotify(kNotifyWrite)) ThrowErrno(env, err, "kick");
  }
  Publish(env);
  return Napi::Number::New(env, static_cast<double>(total));
}

// signalWrite(): wakes the peer if it asked to hear of our writes, as write()
// does after copying bytes. For data published beside the ring (a pool
// descriptor) with no ring byte after it.
Napi::Value RingEndpoint::SignalWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (int err = SendNotify(kNotifyWrite)) ThrowErrno(env, err, "kick");
  return env.Undefined();
}

// signalGone(): after our live byte went (close, reset): withdraws our own
// requests for wake-ups, then wakes the peer.
// A xenring peer only if it asked to hear of our writes or reads: it
// re-checks our fin and live bytes after asking, before it sleeps, so a
// peer that asked for nothing is awake and will see them (a kick per close
// was two wake-ups a short connection did not need). A plain vchan peer
// always, as libxenvchan's close does.
Napi::Value RingEndpoint::SignalGone(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  // Gone, we want no more wake-ups: the requests our reader or writer left
  // would have the peer's close kick a pipe nobody reads for this
  // connection (a wake-up of our kept link's watcher for nothing).
  __atomic_store_n(peer_notify_, static_cast<uint8_t>(0), __ATOMIC_SEQ_CST);
  int err = ext_ ? SendNotify(kNotifyWrite | kNotifyRead) : DoKick();
  if (err) ThrowErrno(env, err, "kick");
  return env.Undefined();
}

// read(target: Uint8Array, offset, max, flags = 0, watched?) -> bytes
// copied out of the ring. flags:
// - kReadAck: first consume our pending wake-ups (what service() does), so
//   a woken reader reads in one call. Before the read: a wake-up that comes
//   after it is kept, and its bytes read next time.
// `watched` (a number): if the word bound by bindWatch() differs from it
// once the ring's producer index has been read, nothing is read: the peer
// announced a payload the caller has not seen, which may lie inside these
// bytes (a pool descriptor is published before the ring bytes after it).
Napi::Value RingEndpoint::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (info.Length() < 1 || !info[0].IsTypedArray()) ThrowType(env, "The \"target\" argument must be a Uint8Array");
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  size_t len = ta.ByteLength();
  int64_t offset = IntArg(info, 1, "offset", 0, static_cast<int64_t>(len));
  int64_t max = IntArg(info, 2, "max", 0, static_cast<int64_t>(len) - offset);
  uint32_t flags = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Uint32Value() : 0;
  bool check = info.Length() > 4 && info[4].IsNumber();
  uint32_t watched = check ? info[4].As<Napi::Number>().Uint32Value() : 0;
  uint8_t* dst = len > 0 ? static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset() + offset : nullptr;
  size_t n = ReadInto(env, dst, static_cast<size_t>(max), (flags & kReadAck) != 0, check, watched);
  return Napi::Number::New(env, static_cast<double>(n));
}

size_t RingEndpoint::ReadInto(Napi::Env env, uint8_t* dst, size_t max, bool ack, bool check_watch, uint32_t watched) {
  if (ack && notifier_ != nullptr) ThrowIfNotifyFailed(env, notifier_->Ack(), "ack");
  uint32_t ready = Available(env);
  if (check_watch) {
    const volatile uint32_t* w = Watched();
    if (w != nullptr && __atomic_load_n(w, __ATOMIC_ACQUIRE) != watched) {
      Publish(env);
      return 0;
    }
  }
  size_t n = ready < max ? ready : max;
  if (n > 0) {
    CopyOut(dst, n, env);
    __atomic_store_n(rx_.cons, rx_cons_, __ATOMIC_RELEASE);
    // A writer waiting for room is woken once half the ring is free, not for
    // every read (as TCP holds back small window updates): it then refills
    // half a ring per wake-up while we read the other half. Until then its
    // request stays set; a reader that keeps reading frees that half soon,
    // and one that drained the ring always wakes it.
    if (ready - n <= rx_.size / 2)
      if (int err = SendNotify(kNotifyRead)) ThrowErrno(env, err, "kick");
  }
  Publish(env);
  return n;
}

uint32_t* RingEndpoint::WakeWords() {
  if (ctrl_ == nullptr || wake_ == nullptr) return nullptr;
  // A detached array is no longer ours (as the state array): stop.
  if (wake_ref_.Value().IsDetached()) {
    wake_ = nullptr;
    wake_ref_.Reset();
  }
  return wake_;
}

int64_t RingEndpoint::WakeRead(Napi::Env env, bool ack) {
  if (WakeWords() == nullptr || wake_[kWakeArmed] == 0) return -1;
  wake_[kWakeArmed] = 0;
  if (wake_target_.IsEmpty()) return -1;
  // Measured now, not when it was set: the buffer may have been detached
  // (its length is then 0) or be a view that no longer reaches that far.
  Napi::TypedArray ta = wake_target_.Value().As<Napi::TypedArray>();
  uint64_t len = ta.ByteLength(), offset = wake_[kWakeOffset], max = wake_[kWakeMax];
  if (max == 0 || offset + max > len) return -1;
  uint8_t* dst = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset() + offset;
  return static_cast<int64_t>(ReadInto(env, dst, max, ack, wake_[kWakeWatch] != 0, wake_[kWakeMark]));
}

bool RingEndpoint::SleepOnReturn(Napi::Env env) {
  if (WakeWords() == nullptr || wake_[kWakeSleep] == 0) return false;
  wake_[kWakeSleep] = 0;
  RequestNotify(kNotifyWrite);
  Publish(env);
  // The peer finished or left: JS ends the stream (read by peerDoneWriting).
  uint16_t peer = LoadPeerState(env);
  if ((peer >> 8) != 0 || (peer & 0xff) == kLiveGone) return true;
  if (Available(env) > 0) return true;
  const volatile uint32_t* w = wake_[kWakeWatch] != 0 ? Watched() : nullptr;
  return w != nullptr && __atomic_load_n(w, __ATOMIC_ACQUIRE) != wake_[kWakeMark];
}

Napi::Value RingEndpoint::Readable(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Number::New(info.Env(), Available(info.Env()));
}

Napi::Value RingEndpoint::Writable(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Number::New(info.Env(), Space(info.Env()));
}

// Ask to be woken when data arrives, then re-check (no lost wake-up).
Napi::Value RingEndpoint::RequestData(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  RequestNotify(kNotifyWrite);
  Publish(info.Env());
  return Napi::Number::New(info.Env(), Available(info.Env()));
}

// Ask to be woken when space frees up, then re-check.
Napi::Value RingEndpoint::RequestSpace(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  RequestNotify(kNotifyRead);
  Publish(info.Env());
  return Napi::Number::New(info.Env(), Space(info.Env()));
}

template <typename Measure, typename Stop>
uint32_t RingEndpoint::SpinFor(int64_t micros, uint32_t want, Measure measure, Stop stop) const {
  uint32_t got = measure();
  if (got >= want || micros == 0 || stop()) return got;
  uint8_t live = __atomic_load_n(peer_live_, __ATOMIC_RELAXED);
  // The peer leaving (or writing a byte that is no state) ends the spin; its
  // going live does not (nothing came yet: a client that connects and then
  // writes is what the spin waits for).
  auto left = [&] {
    uint8_t now = __atomic_load_n(peer_live_, __ATOMIC_RELAXED);
    return now != live && now != kLiveConnected;
  };
  uint64_t deadline = NowNanos() + static_cast<uint64_t>(micros) * 1000;
  for (uint32_t i = 1;; i++) {
    XR_CPU_RELAX();
    got = measure();
    if (got >= want || left() || stop()) return got;
    if ((i & 63) == 0 && NowNanos() >= deadline) return got;
  }
}

const volatile uint32_t* RingEndpoint::Watched() {
  if (watch_ == nullptr) return nullptr;
  // Detached: the queue closed and its pages may be unmapped; never read it again.
  if (watch_ref_.Value().IsDetached()) {
    watch_ = nullptr;
    watch_ref_.Reset();
  }
  return watch_;
}

// waitData(micros, arm = false, watched?) -> readable bytes: spins up to
// `micros` for data (or a change of the peer's live or fin byte) before the caller
// goes to sleep on the fd. `arm`: if still empty, ask for a wake-up and
// re-check (what requestData() does), saving the caller a second call.
// `watched` (a number): the spin also ends once the word bound by
// bindWatch() differs from it (a pool payload announced beside the ring);
// then `arm` asks for nothing.
Napi::Value RingEndpoint::WaitData(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  int64_t micros = IntArg(info, 0, "micros", 0, 1000000);
  const volatile uint32_t* w = micros > 0 && info.Length() > 2 && info[2].IsNumber() ? Watched() : nullptr;
  uint32_t seen = w != nullptr ? info[2].As<Napi::Number>().Uint32Value() : 0;
  auto moved = [&] { return w != nullptr && __atomic_load_n(w, __ATOMIC_RELAXED) != seen; };
  // The peer's fin ends the spin too: nothing more will come, and waiting out
  // the spin for it cost a short connection's server ~50 us per connection.
  // Only with the extension: without it the fin byte's place may be ring data.
  const volatile uint8_t* pf = ext_ ? peer_fin_ : nullptr;
  uint8_t fin = pf != nullptr ? __atomic_load_n(pf, __ATOMIC_RELAXED) : 0;
  if (fin == 1) micros = 0;  // set already: nothing more to wait for
  auto finished = [&] { return pf != nullptr && __atomic_load_n(pf, __ATOMIC_RELAXED) != fin; };
  uint32_t n = SpinFor(micros, 1, [&] { return Available(env); }, [&] { return moved() || finished(); });
  // A payload or the peer's fin (set, not cleared by a hostile peer) ended
  // the spin: the caller takes it, so no wake-up is asked for (the peer's
  // next write would kick us for nothing).
  bool fin_set = pf != nullptr && __atomic_load_n(pf, __ATOMIC_RELAXED) == 1;
  if (n == 0 && info.Length() > 1 && info[1].ToBoolean() && !moved() && !fin_set) {
    RequestNotify(kNotifyWrite);
    n = Available(env);
  }
  Publish(env);
  return Napi::Number::New(env, n);
}

// waitSpace(micros, want) -> writable bytes: spins up to `micros` until at
// least `want` bytes are free (or the peer's live byte changes), so a writer
// facing a full ring whose reader is busy copying need not sleep.
Napi::Value RingEndpoint::WaitSpace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  int64_t micros = IntArg(info, 0, "micros", 0, 1000000);
  uint32_t want = static_cast<uint32_t>(IntArg(info, 1, "want", 1, tx_.size));
  uint32_t n = SpinFor(micros, want, [&] { return Space(env); }, [] { return false; });
  Publish(env);
  return Napi::Number::New(env, n);
}

// peerState() -> live | (fin << 8). live is the peer's byte (0 gone,
// 1 connected, 2 not yet connected); anything else is a protocol error.
Napi::Value RingEndpoint::PeerState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  return Napi::Number::New(env, LoadPeerState(env));
}

Napi::Value RingEndpoint::SetLive(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  int64_t v = IntArg(info, 0, "live", kLiveGone, kLiveWaiting);
  __atomic_store_n(own_live_, static_cast<uint8_t>(v), __ATOMIC_SEQ_CST);
  return info.Env().Undefined();
}

// setFin(): our last byte is in the ring (xenring extension). Published after
// the final producer index so a reader that sees fin also sees every byte.
Napi::Value RingEndpoint::SetFin(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  if (ext_) __atomic_store_n(own_fin_, static_cast<uint8_t>(1), __ATOMIC_SEQ_CST);
  return Napi::Boolean::New(info.Env(), ext_);
}

// setNotifier(notifier): how we wake the peer and consume our wake-ups (a
// Notifier made by the transport: eventfdNotifier() or xen.evtchnNotifier()).
Napi::Value RingEndpoint::SetNotifier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  NotifierHandle* h = info.Length() > 0 ? NotifierHandle::FromValue(info[0]) : nullptr;
  if (h == nullptr) ThrowType(env, "The \"notifier\" argument must be a Notifier");
  notifier_ref_.Reset(info[0].As<Napi::Object>(), 1);
  notifier_ = h->get();
  return env.Undefined();
}

// kick(): wakes the peer unconditionally; throws the notifier's error.
Napi::Value RingEndpoint::Kick(const Napi::CallbackInfo& info) {
  if (int err = DoKick()) ThrowErrno(info.Env(), err, "kick");
  return info.Env().Undefined();
}

// ack() -> number of wake-ups consumed (the notifier re-arms them).
Napi::Value RingEndpoint::Ack(const Napi::CallbackInfo& info) {
  int64_t n = notifier_ != nullptr ? notifier_->Ack() : 0;
  ThrowIfNotifyFailed(info.Env(), n, "ack");
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

// bindState(words: Uint32Array): from now on every read, write, wait,
// request and service() also leaves the ring's state in `words` (StateWord
// order), so the caller learns it without more calls. JS owns the array.
Napi::Value RingEndpoint::BindState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  Napi::Uint32Array a = WordsArg(info, kStateWords, "The state array is too short");
  state_ref_.Reset(a.ArrayBuffer(), 1);
  state_ = a.Data();
  Publish(env);
  return env.Undefined();
}

// bindWatch(word: Uint32Array | null): the word a spin in waitData() also
// watches (its first element), e.g. a pool queue's peerIndex() view. Held
// until replaced; once its buffer is detached (the queue closed) it is dropped.
Napi::Value RingEndpoint::BindWatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  watch_ = nullptr;
  if (!watch_ref_.IsEmpty()) watch_ref_.Reset();
  if (info.Length() < 1 || info[0].IsNull() || info[0].IsUndefined()) return env.Undefined();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
    ThrowType(env, "The \"word\" argument must be a Uint32Array or null");
  Napi::Uint32Array a = info[0].As<Napi::Uint32Array>();
  if (a.ElementLength() < 1 || a.ArrayBuffer().IsDetached()) ThrowRange(env, "The watched array is empty");
  watch_ref_.Reset(a.ArrayBuffer(), 1);
  watch_ = a.Data();
  return env.Undefined();
}

// poolWord() -> Uint32Array(1) over the extension's u32 at kExtPoolWord
// (bytes: client fin, server fin, client pool, server pool); null without
// the extension. JS writes only its own pool byte (through a Uint8Array of
// the same buffer) and reads the peer's as a hint (lib/pool/lazy_open.ts).
// The buffer is the control mapping's (SharedMapping::FirstPageWord), which
// outlives this endpoint when a kept link reuses the ring: JS forgets its
// view at close (LazyOpen.close()); the buffer is detached before the pages
// are unmapped. Throws where the runtime refuses external buffers.
Napi::Value RingEndpoint::PoolWord(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (!ext_) return env.Null();
  // The control mapping's view of the word when the control page is in its
  // first page (always, locally and on Xen): no external buffer per endpoint.
  Napi::Value shared = mappings_[0]->FirstPageWord(env, static_cast<size_t>(ctrl_ - mappings_[0]->base()) + kExtPoolWord);
  if (!shared.IsUndefined()) return shared;
  if (pool_word_ref_.IsEmpty()) {
    // No finalizer: the buffer owns nothing; ReleaseAll() detaches it.
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, ctrl_ + kExtPoolWord, sizeof(uint32_t));
    pool_word_ref_.Reset(ab, 1);
  }
  return Napi::Uint32Array::New(env, 1, pool_word_ref_.Value(), 0);
}

// bindWakeRead(words: Uint32Array): the wake-read words (WakeWord) a wake-up
// reads by, natively, before JS runs (an FdWatcher bound to this endpoint
// with bindRing()). JS owns the array; arming is a store into it, no call.
Napi::Value RingEndpoint::BindWakeRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  Napi::Uint32Array a = WordsArg(info, kWakeWords, "The wake-read array is too short");
  wake_ref_.Reset(a.ArrayBuffer(), 1);
  wake_ = a.Data();
  return env.Undefined();
}

// setWakeTarget(target: Uint8Array | null): the buffer a wake-up reads into
// (at the words' offset). Held until replaced or the endpoint closes.
Napi::Value RingEndpoint::SetWakeTarget(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (!wake_target_.IsEmpty()) wake_target_.Reset();
  if (info.Length() < 1 || info[0].IsNull() || info[0].IsUndefined()) return env.Undefined();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    ThrowType(env, "The \"target\" argument must be a Uint8Array or null");
  wake_target_.Reset(info[0].As<Napi::Object>(), 1);
  return env.Undefined();
}

// service() -> readable bytes: what a wake-up needs in one call: consumes
// the pending wake-ups and publishes the ring's state.
Napi::Value RingEndpoint::Service(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  int64_t acked = notifier_ != nullptr ? notifier_->Ack() : 0;
  ThrowIfNotifyFailed(env, acked, "ack");
  Publish(env);
  return Napi::Number::New(env, Available(env));
}

Napi::Value RingEndpoint::Close(const Napi::CallbackInfo& info) {
  ReleaseAll();
  return info.Env().Undefined();
}

Napi::Value RingEndpoint::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("role", server_ ? "server" : "client");
  o.Set("rxSize", rx_.size);
  o.Set("txSize", tx_.size);
  o.Set("ext", ext_);
  o.Set("closed", ctrl_ == nullptr);
  return o;
}

}  // namespace xenring
