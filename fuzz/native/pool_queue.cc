// Fuzz target `pool_queue`: one PoolQueue (native/pool_queue.cc, compiled
// unchanged), producer or consumer, against a peer played by the input: the
// peer moves its index honestly or anywhere, writes entries whose extents
// lie inside or outside the pool, and scribbles on any word of the queue.
// Checked against an exact model after every call: the count returned, the
// entries copied out, EPROTO exactly when an index or an extent is
// impossible (nothing consumed then), the argument errors, and every byte of
// the mapping and of the caller's arrays (only the entries pushed and our own
// index may change).
#include <cmath>

#include "../../native/pool_mapping.h"
#include "../../native/pool_queue.h"
#include "fuzz_support.h"
#include "memory_model.h"

namespace {

using xenring::PoolQueue;

struct Harness : fuzz::Memory {
  fuzz::World& w = fuzz::World::Get();
  uint32_t slots = 1, words = 2, limit = 1;
  bool producer = false, closed = false;
  uint32_t *prod = nullptr, *cons = nullptr, *entries = nullptr;
  uint32_t shadow = 0;  // the model of the queue's own index
  Napi::fake::NodePtr peer_view;  // the ArrayBuffer behind peerIndex(), once asked for
  Napi::Object queue;

  static Napi::Function& MappingClass() {
    static Napi::Function f = xenring::PoolMapping::Init(fuzz::World::Get().env);
    return f;
  }
  static Napi::Function& QueueClass() {
    static Napi::Function f = PoolQueue::Init(fuzz::World::Get().env);
    return f;
  }
  Napi::Value U32s(fuzz::Block* b, size_t count) {
    return Napi::TypedArray::NewView(w.env, b->mem.get(), count * 4, napi_uint32_array);
  }

  bool Setup(fuzz::Input& in) {
    slots = 1u << (in.u8() % 7);
    words = 2 + in.u8() % 15;
    static const uint32_t kLimits[] = {1, 4096, 65536, 0xffffffffu};
    uint8_t l = in.u8();
    limit = l < 200 ? kLimits[l % 4] : 1 + in.u32() % 0xfffffffeu;
    uint8_t flags = in.u8();
    producer = flags & 1;
    bool init = flags & 2;
    bool short_by_one = (flags & 0x1c) == 0x1c;  // the queue does not fit
    size_t offset = 64 * ((flags >> 5) & 3);
    size_t bytes = PoolQueue::kEntries + size_t(slots) * words * 4;
    fuzz::Block* b = Alloc(offset + bytes - (short_by_one ? 4 : 0));
    uint8_t* at = b->mem.get() + offset;
    prod = reinterpret_cast<uint32_t*>(at + PoolQueue::kProd);
    cons = reinterpret_cast<uint32_t*>(at + PoolQueue::kCons);
    entries = reinterpret_cast<uint32_t*>(at + PoolQueue::kEntries);
    *prod = in.u32();  // whatever the pages held
    *cons = (in.u8() & 1) ? *prod - in.u8() % (slots + 2) : in.u32();
    Napi::Object mapping = MappingClass().New({w.View(b->mem.get(), b->size)});
    Napi::Object o = Napi::Object::New(w.env);
    o.Set("mapping", mapping);
    o.Set("offset", static_cast<double>(offset));
    o.Set("slots", static_cast<double>(slots));
    o.Set("words", static_cast<double>(words));
    o.Set("role", producer ? "producer" : "consumer");
    o.Set("init", init);
    o.Set("limit", static_cast<double>(limit));
    Snapshot();
    try {
      queue = QueueClass().New({o});
    } catch (const Napi::Error& e) {
      if (short_by_one && e.Code() == "ERR_OUT_OF_RANGE") return false;
      fuzz::Fail("PoolQueue constructor threw %s (%s)", e.Code().c_str(), e.what());
    }
    if (short_by_one) fuzz::Fail("PoolQueue accepted a queue that does not fit its mapping");
    if (init) {
      ExpectU32(prod, 0);
      ExpectU32(cons, 0);
    }
    Verify("constructor");
    shadow = producer ? *prod : *cons;
    return true;
  }

  // Entries between the indices as the queue sees them, or false if impossible.
  bool Queued(uint32_t* n) const {
    *n = producer ? shadow - *cons : *prod - shadow;
    return *n <= slots;
  }

  template <typename F>
  Napi::Value Expect(const char* op, const std::string& want, F call) {
    return CallExpecting(op, closed ? "ERR_SOCKET_CLOSED" : want, call);
  }
  bool Weird(fuzz::Input& in, double* d, double hi) {
    if ((in.u8() & 15) != 0) return false;
    *d = in.weird_double(hi);
    return true;
  }
  static bool ValidInt(double d, double lo, double hi) { return std::isfinite(d) && std::floor(d) == d && d >= lo && d <= hi; }

  void Push(fuzz::Input& in) {
    uint32_t have = in.upto(slots + 2);
    fuzz::Block* src = Alloc(size_t(have) * words * 4);
    for (size_t i = 0; i < src->size; i++) src->mem[i] = in.u8();
    double count = in.upto(have);
    Weird(in, &count, have);
    Snapshot();
    std::string code = producer ? "" : "ERR_INVALID_STATE";
    if (code.empty() && !ValidInt(count, 0, have)) code = "ERR_OUT_OF_RANGE";
    uint32_t queued, n = 0;
    if (code.empty() && !Queued(&queued)) code = "EPROTO";
    if (code.empty() && !closed) {
      n = std::min<uint32_t>(static_cast<uint32_t>(count), slots - queued);
      for (uint32_t i = 0; i < n; i++)
        memcpy(Expected(entries + size_t((shadow + i) & (slots - 1)) * words), src->mem.get() + size_t(i) * words * 4, words * 4);
      if (n > 0) ExpectU32(prod, shadow + n);
    }
    ExpectNumber("push", Expect("push", code, [&] { return fuzz::Call(queue, "push", {U32s(src, size_t(have) * words), w.Num(count)}); }), n);
    if (code.empty() && !closed) shadow += n;
  }

  void Pop(fuzz::Input& in) {
    uint32_t have = in.upto(slots + 2);
    fuzz::Block* out = Alloc(size_t(have) * words * 4);
    double max = in.upto(have);
    Weird(in, &max, have);
    Snapshot();
    std::string code = producer ? "ERR_INVALID_STATE" : "";
    if (code.empty() && !ValidInt(max, 0, have)) code = "ERR_OUT_OF_RANGE";
    uint32_t ready, n = 0;
    if (code.empty() && !Queued(&ready)) code = "EPROTO";
    if (code.empty() && !closed) {
      n = std::min<uint32_t>(static_cast<uint32_t>(max), ready);
      for (uint32_t i = 0; i < n && code.empty(); i++) {
        const uint32_t* e = entries + size_t((shadow + i) & (slots - 1)) * words;
        memcpy(Expected(out->mem.get() + size_t(i) * words * 4), e, words * 4);
        uint32_t off = e[words - 2], len = e[words - 1];
        if (len == 0 || off >= limit || len > limit - off) code = "EPROTO";  // nothing consumed
      }
      if (code.empty() && n > 0) ExpectU32(cons, shadow + n);
    }
    ExpectNumber("pop", Expect("pop", code, [&] { return fuzz::Call(queue, "pop", {U32s(out, size_t(have) * words), w.Num(max)}); }), n);
    if (code.empty() && !closed) shadow += n;
  }

  void Step(fuzz::Input& in) {
    uint32_t v;
    switch (in.u8() % 10) {
      case 0: case 1: Push(in); break;
      case 2: case 3: Pop(in); break;
      case 4: {
        Snapshot();
        bool ok = Queued(&v);
        ExpectNumber("pending", Expect("pending", ok ? "" : "EPROTO", [&] { return fuzz::Call(queue, "pending"); }), v);
        ExpectNumber("index", fuzz::Call(queue, "index", {}), shadow);
        // peerIndex(): a view of exactly the peer's index word, whatever it holds.
        Napi::Value look = Expect("peerIndex", "", [&] { return fuzz::Call(queue, "peerIndex", {}); });
        if (!closed) {
          const Napi::fake::NodePtr& n = look.node();
          if (n->bytes != reinterpret_cast<uint8_t*>(producer ? cons : prod) || n->length != 4)
            fuzz::Fail("peerIndex() does not view the peer's index word");
          peer_view = n->props.at("buffer");
        }
        break;
      }
      case 5: {  // the peer produces k entries (extents from the input) or consumes k
        uint32_t k = in.upto(slots);
        if (producer) {
          *cons += k;
        } else {
          for (uint32_t i = 0; i < k; i++) {
            uint32_t* e = entries + size_t((*prod + i) & (slots - 1)) * words;
            uint8_t kind = in.u8();
            uint32_t off = kind & 1 ? in.u32() : in.u16() % (limit < 65536 ? limit : 65536);
            uint32_t len = kind & 2 ? in.u32() : 1 + in.u16() % 4096;
            e[words - 2] = off;
            e[words - 1] = len;
          }
          *prod += k;
        }
        break;
      }
      case 6: (producer ? *cons : *prod) = in.u32(); break;  // any peer index
      case 7: {  // any word of the queue, our own index included
        size_t n = PoolQueue::kEntries / 4 + size_t(slots) * words;
        size_t at = in.u32() % n;
        reinterpret_cast<uint32_t*>(prod)[at] = in.u32();
        break;
      }
      case 8: {  // a wrong argument type: refused before anything is read
        Snapshot();
        fuzz::Block* b = Alloc(16);
        Snapshot();
        const char* op = producer ? "push" : "pop";
        Expect(op, "ERR_INVALID_ARG_TYPE", [&] { return fuzz::Call(queue, op, {w.View(b->mem.get(), 16), w.Num(0)}); });
        break;
      }
      case 9:
        if ((in.u8() & 7) != 0) break;
        Snapshot();
        fuzz::Call(queue, "close");
        Verify("close");
        closed = true;
        // No view of the region may outlive close (it does not keep the region mapped).
        if (peer_view && !peer_view->detached) fuzz::Fail("peerIndex()'s buffer is not detached at close");
        break;
    }
  }
  void Finish() {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fuzz::RunSteps<Harness>(data, size, 64);
}
