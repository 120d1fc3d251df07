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

// Argument helpers that throw ERR_INVALID_ARG_TYPE / ERR_OUT_OF_RANGE.
int64_t IntArg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo, int64_t hi);
int FdArg(const Napi::CallbackInfo& info, size_t i);

}  // namespace xenring
