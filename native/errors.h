// Errors thrown to JS carry Node's shape: code, errno (negative), syscall.
#pragma once
#include <napi.h>

namespace xenring {

// Errors are built with checked N-API calls: while the environment is
// terminating (worker.terminate()) they are dropped, never a fatal error.

// Throws an Error like libuv's: message "<syscall> <CODE>", .code, .errno,
// .syscall; with a path, "<syscall> <CODE> '<path>'" and .path, as fs does.
[[noreturn]] void ThrowErrno(Napi::Env env, int err, const char* syscall, const char* path = nullptr);

// Throws an Error with a Node-style code (e.g. "EPROTO", "ERR_INVALID_ARG_TYPE").
[[noreturn]] void ThrowCode(Napi::Env env, const char* code, const char* message);

// TypeError / RangeError with Node's argument-validation codes.
[[noreturn]] void ThrowType(Napi::Env env, const char* message);
[[noreturn]] void ThrowRange(Napi::Env env, const char* message);

// Inside a catch block: makes the C++ exception being handled the pending JS
// exception (dropped if the environment can no longer take one). Never throws.
void ThrowPendingFromCurrent(Napi::Env env) noexcept;

// Runs the body of an ObjectWrap constructor. Such a constructor must not
// throw once its base has wrapped `this`: node-addon-api then frees the object
// and asks N-API to remove the wrap, which N-API refuses while an exception is
// pending or JS may no longer run (a worker being terminated: refused in 466
// of 600 PoolQueue constructions cut short), leaving the JS object wrapped
// around freed memory. (Node 20 drops the wrap's finalizer with its reference,
// so it is never called; nothing can reach that object either.) Here what the
// body throws becomes the pending JS exception instead: `new` still throws,
// and the object, as the body left it, is freed once, by its finalizer (so
// every destructor copes with any state its constructor's body can leave).
template <typename Body>
void GuardConstructor(Napi::Env env, Body&& body) noexcept {
  try {
    body();
  } catch (...) {
    ThrowPendingFromCurrent(env);
  }
}

// Argument helpers that throw ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE.
int64_t IntArg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo, int64_t hi);
int FdArg(const Napi::CallbackInfo& info, size_t i);

}  // namespace xenring
