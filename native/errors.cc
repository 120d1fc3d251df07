#include "errors.h"

#include <uv.h>

#include <cmath>
#include <string>

namespace xenring {

void ThrowErrno(Napi::Env env, int err, const char* syscall) {
  const char* code = uv_err_name(-err);
  std::string msg = std::string(syscall) + " " + code;
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  throw e;
}

void ThrowCode(Napi::Env env, const char* code, const char* message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  throw e;
}

void ThrowType(Napi::Env env, const char* message) {
  Napi::TypeError e = Napi::TypeError::New(env, message);
  e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  throw e;
}

void ThrowRange(Napi::Env env, const char* message) {
  Napi::RangeError e = Napi::RangeError::New(env, message);
  e.Set("code", Napi::String::New(env, "ERR_OUT_OF_RANGE"));
  throw e;
}

int64_t IntArg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo, int64_t hi) {
  if (info.Length() <= i || !info[i].IsNumber())
    ThrowType(info.Env(), (std::string("The \"") + name + "\" argument must be of type number").c_str());
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || d < static_cast<double>(lo) || d > static_cast<double>(hi))
    ThrowRange(info.Env(), (std::string("The value of \"") + name + "\" is out of range").c_str());
  return static_cast<int64_t>(d);
}

int FdArg(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<int>(IntArg(info, i, "fd", 0, 0x7fffffff));
}

}  // namespace xenring
