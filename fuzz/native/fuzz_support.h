// Shared pieces of the native fuzz targets: a reader that turns the fuzzer's
// bytes into decisions, the failure path (a crash both libFuzzer and the
// standalone driver record), and a fake N-API environment with the addon's
// classes registered.
#pragma once
#include <napi.h>

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../../native/addon_data.h"
#include "../../native/notifier.h"
#include "failure_hook.h"
#include "../../native/ring_endpoint.h"
#include "../../native/shared_mapping.h"

namespace fuzz {

// An invariant broke: report and crash, so the input is kept as a reproducer.
[[noreturn]] inline void Fail(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] inline void Fail(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "\n==FUZZ INVARIANT== ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  if (g_on_failure) g_on_failure();
  abort();
}

// Consumes the input front to back; past the end every read yields zero, so
// any prefix of an input is itself a valid input.
class Input {
 public:
  Input(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  bool done() const { return n_ == 0; }
  uint8_t u8() {
    if (n_ == 0) return 0;
    n_--;
    return *p_++;
  }
  // One call per statement: operand order is unspecified in C++, and the
  // corpus must decode the same under g++ and clang.
  uint16_t u16() {
    uint16_t lo = u8();
    return static_cast<uint16_t>(lo | (u8() << 8));
  }
  uint32_t u32() {
    uint32_t lo = u16();
    return lo | (static_cast<uint32_t>(u16()) << 16);
  }
  // A value in [0, n] biased to the edges (0, 1, n-1, n) that matter most.
  uint32_t upto(uint32_t n) {
    uint8_t k = u8();
    switch (k & 7) {
      case 0: return 0;
      case 1: return n;
      case 2: return n > 0 ? n - 1 : 0;
      case 3: return n < 1 ? n : 1;
      default: return n == 0 ? 0 : u32() % (n + 1);
    }
  }
  // A double that a careless caller might pass: edge integers, fractions, NaN, huge.
  double weird_double(double typical) {
    switch (u8() % 12) {
      case 0: return 0;
      case 1: return -1;
      case 2: return typical + 0.5;
      case 3: return __builtin_nan("");
      case 4: return __builtin_inf();
      case 5: return -__builtin_inf();
      case 6: return 1e300;
      case 7: return 18446744073709551616.0;  // 2^64
      case 8: return 9007199254740993.0;      // 2^53 + 1
      case 9: return static_cast<double>(u32());
      case 10: return -static_cast<double>(u16());
      default: return typical;
    }
  }

 private:
  const uint8_t* p_;
  size_t n_;
};

// One fake N-API environment per process, with the addon's classes defined.
struct World {
  Napi::fake::EnvData env_data;
  xenring::AddonData addon;
  Napi::Env env{&env_data};
  Napi::Function mapping_class;
  Napi::Function notifier_class;
  Napi::Function ring_class;
  World() {
    env.SetInstanceData(&addon);
    mapping_class = xenring::SharedMapping::Init(env, &addon.mapping_ctor);
    notifier_class = xenring::NotifierHandle::Init(env, &addon.notifier_ctor);
    ring_class = xenring::RingEndpoint::Init(env);
  }
  static World& Get() {
    static World* w = new World();  // never destroyed: no exit-time ordering issues
    return *w;
  }
  Napi::Number Num(double d) const { return Napi::Number::New(env, d); }
  Napi::String Str(const char* s) const { return Napi::String::New(env, s); }
  Napi::Boolean Bool(bool b) const { return Napi::Boolean::New(env, b); }
  Napi::TypedArray View(uint8_t* p, size_t n) const { return Napi::TypedArray::NewView(env, p, n); }
  Napi::Object Mapping(uint8_t* p, size_t n, bool writable) const {
    return mapping_class.New({View(p, n), Bool(writable)});
  }
};

// obj.method(...args)
inline Napi::Value Call(const Napi::Object& obj, const char* method, const std::vector<Napi::Value>& args = {}) {
  return Napi::fake::Call(obj, method, args);
}

}  // namespace fuzz
