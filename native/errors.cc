#include "errors.h"

#include <uv.h>

#include <cmath>
#include <new>
#include <string>

namespace xenring {

namespace {

using CreateFn = napi_status (*)(napi_env, napi_value, napi_value, napi_value*);

bool SetString(napi_env env, napi_value obj, const char* key, const char* value) {
  napi_value v;
  return napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v) == napi_ok &&
         napi_set_named_property(env, obj, key, v) == napi_ok;
}

// Every N-API status is checked: while an environment is terminating some
// calls fail, and node-addon-api would turn that into a fatal error. Then the
// error is dropped instead (an empty Napi::Error throws nothing): no JS is left
// to catch it.
[[noreturn]] void ThrowBuilt(napi_env env, CreateFn create, const char* code, const std::string& message,
                             int err = 0, const char* syscall = nullptr, const char* path = nullptr) {
  napi_value msg, code_value, error, errno_value;
  bool ok = napi_create_string_utf8(env, message.data(), message.size(), &msg) == napi_ok &&
            napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value) == napi_ok &&
            create(env, code_value, msg, &error) == napi_ok;
  if (ok && err != 0)
    ok = napi_create_int32(env, -err, &errno_value) == napi_ok &&
         napi_set_named_property(env, error, "errno", errno_value) == napi_ok && SetString(env, error, "syscall", syscall);
  if (ok && path != nullptr) ok = SetString(env, error, "path", path);
  if (!ok) throw Napi::Error();
  throw Napi::Error(env, error);
}

}  // namespace

void ThrowErrno(Napi::Env env, int err, const char* syscall, const char* path) {
  const char* code = uv_err_name(-err);
  std::string msg = std::string(syscall) + " " + code;
  if (path != nullptr) msg += std::string(" '") + path + "'";
  ThrowBuilt(env, napi_create_error, code, msg, err, syscall, path);
}

void ThrowCode(Napi::Env env, const char* code, const char* message) {
  ThrowBuilt(env, napi_create_error, code, message);
}

void ThrowType(Napi::Env env, const char* message) {
  ThrowBuilt(env, napi_create_type_error, "ERR_INVALID_ARG_TYPE", message);
}

void ThrowRange(Napi::Env env, const char* message) {
  ThrowBuilt(env, napi_create_range_error, "ERR_OUT_OF_RANGE", message);
}

void ThrowPendingFromCurrent(Napi::Env env) noexcept {
  try {
    throw;
  } catch (const Napi::Error& e) {
    try {
      if (!e.IsEmpty()) napi_throw(env, e.Value());
    } catch (...) {
      // Its value is out of reach: the environment is being torn down.
    }
  } catch (const std::bad_alloc&) {
    napi_throw_error(env, "ERR_MEMORY_ALLOCATION_FAILED", "out of memory");
  } catch (...) {
    napi_throw_error(env, "ERR_INTERNAL", "unexpected native error");
  }
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
