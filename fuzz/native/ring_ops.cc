// Fuzz target `ring_ops`: one RingEndpoint (native/ring_endpoint.cc, compiled
// unchanged) against a hostile peer played by the input. The input picks the
// role, ring orders and page layout (local memfd, Xen out-of-page, in-page,
// mixed), then drives a sequence of endpoint calls interleaved with the
// peer's writes: honest produce/consume, arbitrary indices, scribbles on any
// control-page byte, live/fin/notify bytes and ring data.
//
// It also drives the pool's watched word (bindWatch(); read()'s and
// waitData()'s `watched` argument) and the wake-up read an FdWatcher does
// before calling JS (WakeRead(), armed through bindWakeRead() words and a
// setWakeTarget() buffer), from spare values of the close step's byte.
//
// Every call is checked against an exact model, not only for crashes:
// - the result (bytes read/written, readable/writable counts, peer state) or
//   the error (EPROTO when the peer's index or state byte is impossible; the
//   argument errors when the harness passed a bad argument on purpose);
// - every byte of every mapping and of the caller's buffers: the endpoint may
//   change only the tx ring bytes it wrote, its own index, live, fin and
//   notify fields, and nothing else.
// Each mapping is its own exact-size heap block, so ASan reports any access
// past a ring that lies at the end of its mapping.
#include <string.h>

#include <cmath>
#include <memory>

#include "../../native/vchan_layout.h"
#include "fuzz_support.h"
#include "memory_model.h"

using namespace xenring::vchan;

namespace {

enum class Layout { kLocal, kXenOut, kXenIn, kXenMixed };

// The transport's wake-up seam, scripted: counts kicks, fails when told to.
struct FakeNotifier : xenring::Notifier {
  int kick_err = 0;
  int64_t ack_ret = 0;
  int kicks = 0;
  int Kick() override {
    kicks++;
    return kick_err;
  }
  int64_t Ack() override { return ack_ret; }
  int WaitFd() const override { return -1; }
};

struct RingView {
  uint8_t* data;
  uint32_t size;
  uint32_t* prod;
  uint32_t* cons;
};

struct Harness : fuzz::Memory {
  fuzz::World& w = fuzz::World::Get();
  bool server = false, ext = false, closed = false, with_notifier = false;
  uint8_t* ctrl = nullptr;
  RingView rx{}, tx{};
  uint32_t rx_cons = 0, tx_prod = 0;  // the model of the endpoint's shadows
  size_t own_live, peer_live, own_notify, peer_notify, own_fin, peer_fin;
  Napi::Object ep;
  FakeNotifier* notifier = nullptr;  // owned by notifier_obj's handle
  Napi::Object notifier_obj;
  int expect_kicks = 0;
  uint32_t* words = nullptr;  // the bound state array, if any
  uint32_t* watch = nullptr;  // the bindWatch() word, if any (the peer moves it)
  uint32_t* wake = nullptr;   // the bindWakeRead() words, if any (the harness arms them, as JS)
  uint8_t* wake_target = nullptr;  // the setWakeTarget() buffer, if any
  size_t wake_target_len = 0;
  uint32_t seq = 0;  // pattern generator for the bytes the harness writes

  uint8_t Pattern() { return static_cast<uint8_t>((seq++ * 2654435761u) >> 24); }

  void Store32(size_t off, uint32_t v) { memcpy(ctrl + off, &v, 4); }

  // ---- setup ---------------------------------------------------------------
  // Returns false when the constructor refused the page (a fine outcome).
  bool Setup(fuzz::Input& in) {
    uint8_t flags = in.u8();
    server = flags & 1;
    ext = flags & 2;
    with_notifier = flags & 4;
    Layout layout = static_cast<Layout>((flags >> 3) & 3);
    int lo = 10 + in.u8() % 4, ro = 10 + in.u8() % 4;
    if (layout == Layout::kXenIn || layout == Layout::kXenMixed) ext = false;  // the ext area needs the page
    if (layout == Layout::kXenIn) {
      lo = 10 + (lo & 1);
      ro = lo == 10 ? 11 : 10;
    }
    if (layout == Layout::kXenMixed) lo = 10 + (lo & 1);
    uint32_t ls = 1u << lo, rs = 1u << ro;

    Napi::Object control, left, right;
    uint8_t *lp, *rp;
    double loff = 0, roff = 0;
    switch (layout) {
      case Layout::kLocal: {
        fuzz::Block* b = Alloc(kPageSize + ls + rs);
        ctrl = b->mem.get();
        control = left = right = w.Mapping(ctrl, b->size, true);
        loff = kPageSize;
        roff = kPageSize + ls;
        lp = ctrl + kPageSize;
        rp = lp + ls;
        break;
      }
      case Layout::kXenOut: {
        ctrl = Alloc(kPageSize)->mem.get();
        lp = Alloc(ls)->mem.get();
        rp = Alloc(rs)->mem.get();
        control = w.Mapping(ctrl, kPageSize, true);
        // Xen's client maps the server->client ring read-only.
        left = w.Mapping(lp, ls, true);
        right = w.Mapping(rp, rs, server);
        break;
      }
      case Layout::kXenIn:
      case Layout::kXenMixed: {
        ctrl = Alloc(kPageSize)->mem.get();
        control = left = w.Mapping(ctrl, kPageSize, true);
        loff = lo == 10 ? kInPageOrder10Offset : kInPageOrder11Offset;
        lp = ctrl + static_cast<size_t>(loff);
        if (layout == Layout::kXenIn) {
          right = control;
          roff = ro == 10 ? kInPageOrder10Offset : kInPageOrder11Offset;
          rp = ctrl + static_cast<size_t>(roff);
        } else {
          if (ro <= 11) ro = 12, rs = 1u << 12;
          rp = Alloc(rs)->mem.get();
          right = w.Mapping(rp, rs, server);
        }
        break;
      }
    }
    // The control page as the peer left it (a client finds the server's page).
    for (size_t i = 0; i < kHeaderSize; i++) ctrl[i] = in.u8();
    uint32_t magic = (in.u8() & 7) == 0 ? in.u32() : kExtMagicValue;
    memcpy(ctrl + kExtMagic, &magic, 4);

    if (server) {
      rx = {lp, ls, reinterpret_cast<uint32_t*>(ctrl + kLeftProd), reinterpret_cast<uint32_t*>(ctrl + kLeftCons)};
      tx = {rp, rs, reinterpret_cast<uint32_t*>(ctrl + kRightProd), reinterpret_cast<uint32_t*>(ctrl + kRightCons)};
      own_live = kSrvLive, peer_live = kCliLive, own_notify = kSrvNotify, peer_notify = kCliNotify;
      own_fin = kExtSrvFin, peer_fin = kExtCliFin;
    } else {
      rx = {rp, rs, reinterpret_cast<uint32_t*>(ctrl + kRightProd), reinterpret_cast<uint32_t*>(ctrl + kRightCons)};
      tx = {lp, ls, reinterpret_cast<uint32_t*>(ctrl + kLeftProd), reinterpret_cast<uint32_t*>(ctrl + kLeftCons)};
      own_live = kCliLive, peer_live = kSrvLive, own_notify = kCliNotify, peer_notify = kSrvNotify;
      own_fin = kExtCliFin, peer_fin = kExtSrvFin;
    }

    Napi::Object opts = Napi::Object::New(w.env);
    opts.Set("role", server ? "server" : "client");
    opts.Set("init", server);
    opts.Set("ext", ext);
    opts.Set("control", control);
    opts.Set("controlOffset", 0.0);
    auto ring = [&](Napi::Object m, double off, int order) {
      Napi::Object o = Napi::Object::New(w.env);
      o.Set("mapping", m);
      o.Set("offset", off);
      o.Set("order", static_cast<double>(order));
      return o;
    };
    opts.Set("left", ring(left, loff, lo));
    opts.Set("right", ring(right, roff, ro));

    Snapshot();
    bool refused = !server && ext && magic != kExtMagicValue;
    try {
      ep = w.ring_class.New({opts});
    } catch (const Napi::Error& e) {
      if (refused && e.Code() == "EPROTO") return false;
      fuzz::Fail("constructor threw %s (%s)", e.Code().c_str(), e.what());
    }
    if (refused) fuzz::Fail("client accepted a page without the extension magic");
    if (server) {
      // init: zeroed header, orders, live bytes, the client's notify bit, magic.
      memset(Expected(ctrl), 0, kHeaderSize);
      uint16_t orders[2] = {static_cast<uint16_t>(lo), static_cast<uint16_t>(ro)};
      memcpy(Expected(ctrl + kLeftOrder), orders, 4);
      *Expected(ctrl + kCliLive) = 2;
      *Expected(ctrl + kSrvLive) = 1;
      *Expected(ctrl + kCliNotify) = kNotifyWrite;
      if (ext) {
        memset(Expected(ctrl + kExtMagic), 0, kExtEnd - kExtMagic);
        ExpectU32(ctrl + kExtMagic, kExtMagicValue);
      }
    }
    Verify("constructor");
    rx_cons = *rx.cons;
    tx_prod = *tx.prod;
    if (with_notifier) {
      auto impl = std::make_unique<FakeNotifier>();
      notifier = impl.get();
      notifier_obj = xenring::NotifierHandle::Wrap(w.env, std::move(impl));
      fuzz::Call(ep, "setNotifier", {notifier_obj});
    }
    return true;
  }

  // ---- the endpoint's calls, each against the model --------------------------
  // Calls that need an open ring fail with ERR_SOCKET_CLOSED after close().
  template <typename F>
  Napi::Value Expect(const char* op, const std::string& want, F call) {
    return CallExpecting(op, closed ? "ERR_SOCKET_CLOSED" : want, call);
  }

  // What the endpoint sees: bytes ready / used, or 'bad' for an impossible index.
  bool ReadyOk(uint32_t* ready) const {
    *ready = *rx.prod - rx_cons;
    return *ready <= rx.size;
  }
  bool SpaceOk(uint32_t* space) const {
    uint32_t used = tx_prod - *tx.cons;
    *space = tx.size - used;
    return used <= tx.size;
  }
  static std::string Code(bool ok) { return ok ? "" : "EPROTO"; }
  static std::string Errno(int err) { return strerrorname_np(err); }

  // SendNotify(bit): clears the bit the peer set and kicks; "" or the kick's error.
  std::string ExpectNotifySent(uint8_t bit) {
    uint8_t* p = Expected(ctrl + own_notify);
    if ((Before(ctrl + own_notify) & bit) == 0) return "";
    *p = static_cast<uint8_t>(*p & ~bit);
    if (notifier == nullptr || closed) return "";
    expect_kicks++;
    return notifier->kick_err ? Errno(notifier->kick_err) : "";
  }

  // Publish(): with a bound state array, the peer state, readable and writable
  // words, in that order, each check able to stop it with EPROTO.
  std::string ExpectPublish() {
    if (words == nullptr) return "";
    uint8_t fin = ext ? Before(ctrl + peer_fin) : 0, live = Before(ctrl + peer_live);
    if (live > kLiveWaiting || fin > 1) return "EPROTO";
    ExpectU32(words + 2, live);
    ExpectU32(words + 3, fin);
    uint32_t v;
    if (!ReadyOk(&v)) return "EPROTO";
    ExpectU32(words + 0, v);
    if (!SpaceOk(&v)) return "EPROTO";
    ExpectU32(words + 1, v);
    return "";
  }
  static std::string First(const std::string& a, const std::string& b) { return a.empty() ? b : a; }

  static bool ValidInt(double d, double lo, double hi) { return std::isfinite(d) && std::floor(d) == d && d >= lo && d <= hi; }

  void Write(fuzz::Input& in, bool as_array) {
    uint32_t nchunks = as_array ? in.u8() % 5 : 1;
    std::vector<std::unique_ptr<uint8_t[]>> bufs;
    std::vector<uint8_t> all;
    Napi::Array arr = Napi::Array::New(w.env);
    Napi::Value single;
    for (uint32_t i = 0; i < nchunks; i++) {
      uint32_t len = in.upto(tx.size + 64);
      bufs.emplace_back(new uint8_t[len ? len : 1]);
      for (uint32_t j = 0; j < len; j++) all.push_back(bufs.back()[j] = Pattern());
      Napi::TypedArray ta = w.View(bufs.back().get(), len);
      if (as_array) arr.Set(i, ta);
      else single = ta;
    }
    uint8_t mode = in.u8() % 4;
    double off = mode == 0 ? 0 : mode == 1 ? in.upto(static_cast<uint32_t>(all.size()) + 2) : in.weird_double(1);
    std::vector<Napi::Value> args{as_array ? Napi::Value(arr) : single};
    if (mode != 0) args.push_back(w.Num(off));
    // The model of Write: skip `off` bytes of the chunk list, copy what fits.
    size_t skip = off > 0 ? (off >= 18446744073709551616.0 || std::isnan(off) ? SIZE_MAX : static_cast<size_t>(off)) : 0;
    Snapshot();
    uint32_t space;
    bool ok = SpaceOk(&space);
    size_t avail = all.size() > skip ? all.size() - skip : 0;
    size_t n = ok ? std::min<size_t>(space, avail) : 0;
    std::string code = Code(ok);
    if (ok && !closed) {
      for (size_t i = 0; i < n; i++) *Expected(tx.data + ((tx_prod + i) & (tx.size - 1))) = all[skip + i];
      if (n > 0) ExpectU32(tx.prod, tx_prod + static_cast<uint32_t>(n));
      tx_prod += static_cast<uint32_t>(n);  // in the ring, whatever follows
      if (n > 0) code = ExpectNotifySent(kNotifyWrite);
      // A failed kick throws at once: the bytes are in the ring, nothing is
      // published after it (the caller fails the channel).
      if (code.empty()) code = ExpectPublish();
    }
    Napi::Value v = Expect("write", code, [&] { return fuzz::Call(ep, "write", args); });
    ExpectNumber("write", v, static_cast<double>(n));
  }

  // read()'s body (RingEndpoint::ReadInto): `ack` consumes the wake-ups
  // first; with `check`, a watched word that differs from `watched` reads
  // nothing. `put(i, byte)` records where the i-th byte must land.
  template <typename Put>
  std::string ModelRead(size_t max, bool ack, bool check, uint32_t watched, size_t* n_out, Put put) {
    std::string code;
    if (ack && notifier != nullptr && !closed && notifier->ack_ret < 0) code = Errno(static_cast<int>(-notifier->ack_ret));
    uint32_t ready;
    bool ok = ReadyOk(&ready);
    if (code.empty() && !ok) code = "EPROTO";
    bool moved = code.empty() && check && watch != nullptr && *watch != watched;
    size_t n = code.empty() && !moved ? std::min<size_t>(ready, max) : 0;
    if (code.empty() && !closed) {
      for (size_t i = 0; i < n; i++) put(i, Before(rx.data + ((rx_cons + i) & (rx.size - 1))));
      if (n > 0) ExpectU32(rx.cons, rx_cons + static_cast<uint32_t>(n));
      rx_cons += static_cast<uint32_t>(n);
      // A waiting writer is woken once half the ring is free (ring_endpoint.cc ReadInto).
      if (n > 0 && ready - n <= rx.size / 2) code = ExpectNotifySent(kNotifyRead);
      if (code.empty()) code = ExpectPublish();  // as in Write(): a failed kick throws at once
    }
    *n_out = n;
    return code;
  }

  void Read(fuzz::Input& in) {
    uint32_t len = in.upto(rx.size + 64);
    std::unique_ptr<uint8_t[]> buf(new uint8_t[len ? len : 1]);
    memset(buf.get(), 0x5a, len);
    uint8_t mode = in.u8();
    bool weird = (mode & 15) == 0;
    // A woken reader's read (ReadFlag Ack): pending wake-ups are consumed first,
    // and a failing ack throws before the ring is looked at. From a spare bit of
    // the same byte, so older corpus inputs keep their meaning.
    bool ack = (mode & 0x10) != 0;
    // The watched argument (a pool's descriptor mark), as seen or stale: spare
    // bits again, and no more input, so older inputs still decode in step.
    bool pass_watch = (mode & 0x20) != 0;
    uint32_t watched = watch == nullptr ? 0 : (mode & 0x40) ? *watch : *watch + 1;
    double offset = weird ? in.weird_double(0) : in.upto(len);
    double max = weird ? in.weird_double(len) : in.upto(len - static_cast<uint32_t>(offset));
    std::string code;
    if (!ValidInt(offset, 0, len) || !ValidInt(max, 0, len - (ValidInt(offset, 0, len) ? offset : 0)))
      code = "ERR_OUT_OF_RANGE";
    Snapshot();
    // The caller's buffer is checked like a mapping.
    std::vector<uint8_t> expect_buf(buf.get(), buf.get() + len);
    size_t n = 0;
    if (code.empty())
      code = ModelRead(static_cast<size_t>(max), ack, pass_watch, watched, &n,
                       [&](size_t i, uint8_t b) { expect_buf[static_cast<size_t>(offset) + i] = b; });
    Napi::Value v = Expect("read", code, [&] {
      if (pass_watch)
        return fuzz::Call(ep, "read", {w.View(buf.get(), len), w.Num(offset), w.Num(max), w.Num(ack ? 1 : 0), w.Num(watched)});
      if (ack) return fuzz::Call(ep, "read", {w.View(buf.get(), len), w.Num(offset), w.Num(max), w.Num(1)});
      return fuzz::Call(ep, "read", {w.View(buf.get(), len), w.Num(offset), w.Num(max)});
    });
    ExpectNumber("read", v, static_cast<double>(n));
    if (len > 0 && memcmp(buf.get(), expect_buf.data(), len) != 0) fuzz::Fail("read: target bytes differ from the ring's");
  }

  // WakeRead(): what an FdWatcher bound to the endpoint does on a wake-up
  // before calling JS. -1 unless armed (and then disarmed) with a target
  // that holds the armed range; otherwise read(target, offset, max, Ack, mark).
  // `ack`: false for the later rounds after SleepOnReturn (no wake-up to consume).
  void WakeRead(bool ack) {
    Snapshot();
    double expect = -1;
    std::string code;
    if (!closed && wake != nullptr && wake[xenring::kWakeArmed] != 0) {
      ExpectU32(wake + xenring::kWakeArmed, 0);
      uint64_t off = wake[xenring::kWakeOffset], max = wake[xenring::kWakeMax];
      if (wake_target != nullptr && max != 0 && off + max <= wake_target_len) {
        size_t n = 0;
        code = ModelRead(max, ack, wake[xenring::kWakeWatch] != 0, wake[xenring::kWakeMark], &n,
                         [&](size_t i, uint8_t b) { *Expected(wake_target + off + i) = b; });
        expect = static_cast<double>(n);
      }
    }
    auto* raw = Napi::ObjectWrap<xenring::RingEndpoint>::Unwrap(ep);
    Napi::Value v = CallExpecting("wakeRead", code, [&] {
      return Napi::Value(Napi::Number::New(w.env, static_cast<double>(raw->WakeRead(w.env, ack))));
    });
    if (code.empty()) ExpectNumber("wakeRead", v, expect);
  }

  // bindWakeRead(words) (what 0), setWakeTarget(buffer) (1), bindWatch(word)
  // (2): a Uint32Array of at least 5 words, a Uint8Array of any length or
  // null, a Uint32Array of at least 1 word or null. setWakeTarget and
  // bindWatch drop what was bound before they check; bindWakeRead keeps it.
  void BindArray(fuzz::Input& in, int what) {
    static const char* kNames[] = {"bindWakeRead", "setWakeTarget", "bindWatch"};
    uint8_t k = in.u8();
    bool null = (k & 0x0f) == 0;
    bool wrong = (k & 0x70) == 0x70;
    bool as_bytes = (what == 1) != wrong;  // the type passed
    size_t elems = as_bytes ? in.upto(rx.size + 64) : (k & 0x80) ? k % 8 : (what == 0 ? xenring::kWakeWords : 1) + (k & 3);
    size_t unit = as_bytes ? 1 : 4;
    fuzz::Block* b = Alloc(elems * unit);
    size_t least = what == 0 ? xenring::kWakeWords : what == 2 ? 1 : 0;
    Snapshot();
    std::string code;
    if (null) code = what == 0 ? "ERR_INVALID_ARG_TYPE" : "";
    else if (wrong) code = "ERR_INVALID_ARG_TYPE";
    else if (elems < least) code = "ERR_OUT_OF_RANGE";
    if (!closed) {
      bool bound = code.empty() && !null;
      if (what == 0 && bound) wake = reinterpret_cast<uint32_t*>(b->mem.get());
      if (what == 1) {
        wake_target = bound ? b->mem.get() : nullptr;
        wake_target_len = bound ? elems : 0;
      }
      if (what == 2) watch = bound ? reinterpret_cast<uint32_t*>(b->mem.get()) : nullptr;
    }
    Napi::Value arg = null ? w.env.Null()
                           : Napi::Value(Napi::TypedArray::NewView(w.env, b->mem.get(), elems * unit,
                                                                   as_bytes ? napi_uint8_array : napi_uint32_array));
    Expect(kNames[what], code, [&] { return fuzz::Call(ep, kNames[what], {arg}); });
  }

  // What JS does to arm a wake-up read: plain stores into the words.
  void Arm(fuzz::Input& in) {
    if (wake == nullptr) return;
    uint8_t k = in.u8();
    uint32_t len = static_cast<uint32_t>(wake_target_len);
    wake[xenring::kWakeArmed] = (k & 1) ? 1 : in.u32();
    wake[xenring::kWakeOffset] = (k & 2) ? in.u32() : in.upto(len);
    wake[xenring::kWakeMax] = (k & 4) ? in.u32() : in.upto(len - std::min(len, wake[xenring::kWakeOffset]));
    wake[xenring::kWakeWatch] = (k >> 3) & 1;
    wake[xenring::kWakeMark] = watch != nullptr && (k & 0x10) ? *watch : in.u32();
  }

  // requestData / requestSpace / waitData(arm): set our bit in the peer's
  // notify byte, publish, re-check.
  void Request(bool data) {
    uint32_t v;
    Snapshot();
    if (!closed) *Expected(ctrl + peer_notify) |= data ? kNotifyWrite : kNotifyRead;
    std::string code = closed ? "" : ExpectPublish();
    bool ok = data ? ReadyOk(&v) : SpaceOk(&v);
    code = First(code, Code(ok));
    const char* name = data ? "requestData" : "requestSpace";
    ExpectNumber(name, Expect(name, code, [&] { return fuzz::Call(ep, name); }), v);
  }

  void Step(fuzz::Input& in) {
    StepOnce(in);
    if (notifier != nullptr && notifier->kicks != expect_kicks)
      fuzz::Fail("the peer was kicked %d times, model says %d", notifier->kicks, expect_kicks);
  }

  // info() never depends on the peer.
  void Finish() {
    Napi::Object info = fuzz::Call(ep, "info").As<Napi::Object>();
    if (info.Get("rxSize").As<Napi::Number>().DoubleValue() != rx.size ||
        info.Get("txSize").As<Napi::Number>().DoubleValue() != tx.size || info.Get("closed").ToBoolean() != closed)
      fuzz::Fail("info() disagrees with the setup");
  }

  void StepOnce(fuzz::Input& in) {
    uint8_t op = in.u8() % 28;
    static const bool trace = getenv("FUZZ_TRACE") != nullptr;  // FUZZ_TRACE=1 ring_ops FILE: the call sequence
    if (trace) fprintf(stderr, "op %u rx prod %u cons %u, tx prod %u cons %u\n", op, *rx.prod, rx_cons, tx_prod, *tx.cons);
    uint32_t v;
    bool ok;
    switch (op) {
      case 0: Write(in, false); break;
      case 1: Write(in, true); break;
      case 2: case 3: Read(in); break;
      case 4:
        Snapshot();
        ok = ReadyOk(&v);
        ExpectNumber("readable", Expect("readable", Code(ok), [&] { return fuzz::Call(ep, "readable"); }), v);
        break;
      case 5:
        Snapshot();
        ok = SpaceOk(&v);
        ExpectNumber("writable", Expect("writable", Code(ok), [&] { return fuzz::Call(ep, "writable"); }), v);
        break;
      case 6: Request(true); break;
      case 7: Request(false); break;
      case 8: {
        // Spare bits of the micros byte: pass the watched argument, as seen or moved.
        uint8_t m = in.u8();
        double micros = m & 1;
        bool pass_watch = (m & 2) != 0;
        uint32_t watched = watch == nullptr ? 0 : (m & 4) ? *watch : *watch + 1;
        bool arm = in.u8() & 1;
        Snapshot();
        ok = ReadyOk(&v);
        std::string code = Code(ok);
        // A spin the watched word ended asks for no wake-up (only a spin looks at it).
        bool moved = micros > 0 && pass_watch && watch != nullptr && *watch != watched;
        if (ok && !closed) {
          if (v == 0 && arm && !moved) *Expected(ctrl + peer_notify) |= kNotifyWrite;
          code = ExpectPublish();
        }
        ExpectNumber("waitData", Expect("waitData", code, [&] {
          if (pass_watch) return fuzz::Call(ep, "waitData", {w.Num(micros), w.Bool(arm), w.Num(watched)});
          return fuzz::Call(ep, "waitData", {w.Num(micros), w.Bool(arm)});
        }), v);
        break;
      }
      case 9: {
        double micros = in.u8() & 1;
        bool weird = (in.u8() & 15) == 0;
        double want = weird ? in.weird_double(1) : 1 + in.upto(tx.size - 1);
        Snapshot();
        ok = SpaceOk(&v);
        std::string code = !ValidInt(want, 1, tx.size) ? "ERR_OUT_OF_RANGE" : Code(ok);
        if (code.empty() && !closed) code = ExpectPublish();
        ExpectNumber("waitSpace",
                     Expect("waitSpace", code, [&] { return fuzz::Call(ep, "waitSpace", {w.Num(micros), w.Num(want)}); }), v);
        break;
      }
      case 10: {
        Snapshot();
        uint8_t fin = ext ? ctrl[peer_fin] : 0, live = ctrl[peer_live];
        ok = live <= kLiveWaiting && fin <= 1;
        ExpectNumber("peerState", Expect("peerState", Code(ok), [&] { return fuzz::Call(ep, "peerState"); }),
                     live | (fin << 8));
        break;
      }
      case 11: {
        double live = (in.u8() & 15) == 0 ? in.weird_double(1) : in.u8() % 3;
        Snapshot();
        std::string code = ValidInt(live, 0, 2) ? "" : "ERR_OUT_OF_RANGE";
        if (code.empty() && !closed) *Expected(ctrl + own_live) = static_cast<uint8_t>(live);
        Expect("setLive", code, [&] { return fuzz::Call(ep, "setLive", {w.Num(live)}); });
        break;
      }
      case 12:
        Snapshot();
        if (ext && !closed) *Expected(ctrl + own_fin) = 1;
        Expect("setFin", "", [&] { return fuzz::Call(ep, "setFin"); });
        break;
      case 13: {  // kick: no open ring needed (after close there is no notifier)
        Snapshot();
        bool live_notifier = notifier != nullptr && !closed;
        std::string code = live_notifier && notifier->kick_err ? Errno(notifier->kick_err) : "";
        if (live_notifier) expect_kicks++;
        CallExpecting("kick", code, [&] { return fuzz::Call(ep, "kick"); });
        break;
      }
      case 14: {  // ack
        Snapshot();
        bool live_notifier = notifier != nullptr && !closed;
        int64_t r = live_notifier ? notifier->ack_ret : 0;
        Napi::Value res = CallExpecting("ack", r < 0 ? Errno(static_cast<int>(-r)) : "", [&] { return fuzz::Call(ep, "ack"); });
        ExpectNumber("ack", res, static_cast<double>(r < 0 ? 0 : r));
        break;
      }
      case 15: {  // service(): ack, publish, readable
        Snapshot();
        int64_t r = notifier != nullptr && !closed ? notifier->ack_ret : 0;
        std::string code = r < 0 ? Errno(static_cast<int>(-r)) : "";
        if (code.empty() && !closed) code = ExpectPublish();
        ok = ReadyOk(&v);
        if (code.empty()) code = Code(ok);
        ExpectNumber("service", Expect("service", code, [&] { return fuzz::Call(ep, "service"); }), v);
        break;
      }
      case 16: {  // bindState(words): a Uint32Array of >= 4 words; anything else is refused
        uint8_t k = in.u8();
        size_t count = k & 0x80 ? k % 6 : 4 + (k & 3);
        napi_typedarray_type type = (k & 0x70) == 0x70 ? napi_uint8_array : napi_uint32_array;
        fuzz::Block* b = Alloc(count * 4);
        Snapshot();
        std::string code = type != napi_uint32_array ? "ERR_INVALID_ARG_TYPE" : count < 4 ? "ERR_OUT_OF_RANGE" : "";
        uint32_t* old = words;
        if (code.empty() && !closed) {
          words = reinterpret_cast<uint32_t*>(b->mem.get());
          code = ExpectPublish();
        }
        Expect("bindState", code, [&] {
          return fuzz::Call(ep, "bindState", {Napi::TypedArray::NewView(w.env, b->mem.get(), count * 4, type)});
        });
        if (closed) words = old;
        break;
      }
      case 17: {  // the notifier misbehaves: kicks or acks fail with an errno
        if (notifier == nullptr) break;
        static const int kErrs[] = {0, 0, EBADF, EAGAIN, EPIPE, EIO};
        notifier->kick_err = kErrs[in.u8() % 6];
        static const int64_t kAcks[] = {0, 1, 7, -EBADF, -EINTR};
        notifier->ack_ret = kAcks[in.u8() % 5];
        break;
      }
      case 18: {
        uint8_t k = in.u8();
        switch (k & 7) {
          case 0:  // rare: everything after it must fail cleanly
            Snapshot();
            fuzz::Call(ep, "close");
            Verify("close");
            closed = true;
            break;
          case 1: BindArray(in, 2); break;  // bindWatch
          case 2:  // the peer announces: its watched word moves
            if (watch != nullptr) *watch += 1 + (k >> 3);
            break;
          case 3: WakeRead((k & 8) == 0); break;
          case 4: BindArray(in, 0); break;  // bindWakeRead
          case 5: BindArray(in, 1); break;  // setWakeTarget
          case 6: Arm(in); break;
          default: break;
        }
        break;
      }
      // ---- the peer ----------------------------------------------------------
      case 19: case 20: {  // produce k bytes honestly (or overfill: k up to the ring size)
        uint32_t k = in.upto(rx.size), prod = *rx.prod;
        for (uint32_t i = 0; i < k; i++) rx.data[(prod + i) & (rx.size - 1)] = Pattern();
        *rx.prod = prod + k;
        break;
      }
      case 21: case 22: *tx.cons += in.upto(tx.size); break;  // consume k bytes
      case 23: {  // an index anywhere near, or anything at all
        uint32_t* idx = (in.u8() & 1) ? rx.prod : tx.cons;
        uint32_t base = idx == rx.prod ? rx_cons : tx_prod - tx.size;
        *idx = (in.u8() & 1) ? in.u32() : base + in.upto(2 * rx.size + 2 * tx.size) - (rx.size + tx.size) / 2;
        break;
      }
      case 24: ctrl[in.u16() % kPageSize] = in.u8(); break;  // any control byte
      case 25: {  // any header word
        size_t at = (in.u8() % (kHeaderSize / 4)) * 4;
        Store32(at, in.u32());
        break;
      }
      case 26: {  // the state bytes the endpoint reads
        size_t fields[] = {peer_live, peer_fin, own_notify, peer_notify};
        ctrl[fields[in.u8() % 4]] = (in.u8() & 1) ? in.u8() : in.u8() % 3;
        break;
      }
      case 27: {  // ring data, either ring
        RingView& r = (in.u8() & 1) ? rx : tx;
        r.data[in.u32() & (r.size - 1)] = in.u8();
        break;
      }
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::RunSteps<Harness>(data, size, 96);
}
