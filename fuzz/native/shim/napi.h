// A fake of the few node-addon-api pieces that native/ring_endpoint.cc,
// native/errors.cc and native/shared_mapping.h use, so the fuzz harnesses
// compile the addon's real ring code without Node. Values are a tiny dynamic
// model (undefined, boolean, number, string, object, array, typed array,
// function); errors are C++ exceptions as with NAPI_CPP_EXCEPTIONS. Only what
// the compiled files call exists here: a compile error after a change in
// native/ means one more piece to fake, nothing more.
#pragma once
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <vector>

struct napi_type_tag {
  uint64_t lower;
  uint64_t upper;
};

enum napi_typedarray_type { napi_int8_array, napi_uint8_array, napi_uint8_clamped_array, napi_int16_array,
                            napi_uint16_array, napi_int32_array, napi_uint32_array };

namespace Napi {

class Value;
class Object;
class Function;

namespace fake {

enum class Kind { kUndefined, kNull, kBoolean, kNumber, kString, kObject, kArray, kTypedArray, kFunction };

struct Node;
using NodePtr = std::shared_ptr<Node>;
class CallbackInfoData;

// A constructor made by ObjectWrap<T>::DefineClass: how to make a T and its methods.
struct Class {
  std::string name;
  std::function<void*(const CallbackInfoData&)> make;
  std::function<void(void*)> destroy;
  std::map<std::string, std::function<NodePtr(void*, const CallbackInfoData&)>> methods;
};

struct Node : std::enable_shared_from_this<Node> {
  Kind kind = Kind::kUndefined;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::map<std::string, NodePtr> props;
  std::vector<NodePtr> elems;
  // Typed arrays view caller-owned memory (the harness allocates exact sizes
  // so ASan sees any access outside them).
  uint8_t* bytes = nullptr;
  size_t length = 0;  // in bytes
  napi_typedarray_type type = napi_uint8_array;
  // An external ArrayBuffer (PoolQueue::peerIndex) after Detach().
  bool detached = false;
  // Object::TypeTag(): the tag's address (the addon's tags are constants).
  const napi_type_tag* tag = nullptr;
  // Objects made by a class: the wrapped instance.
  std::shared_ptr<Class> cls;
  void* wrapped = nullptr;
  ~Node() {
    if (wrapped != nullptr && cls) cls->destroy(wrapped);
  }
};

struct EnvData {
  void* instance_data = nullptr;
  // Values made through the C API (napi_value is a raw pointer): kept alive
  // here until they are attached to something, trimmed now and then.
  std::vector<NodePtr> arena;
  // What napi_throw() made pending (errors.h GuardConstructor): the construct
  // call that returns with it pending throws it, as N-API does.
  NodePtr pending;
};

inline NodePtr Make(Kind k) {
  auto n = std::make_shared<Node>();
  n->kind = k;
  return n;
}

}  // namespace fake

class Env {
 public:
  Env(fake::EnvData* d = nullptr) : d_(d) {}  // implicit, like napi_env -> Napi::Env
  Value Undefined() const;
  Value Null() const;
  template <typename T>
  T* GetInstanceData() const { return d_ ? static_cast<T*>(d_->instance_data) : nullptr; }
  template <typename T>
  void SetInstanceData(T* p) const { if (d_) d_->instance_data = p; }
  fake::EnvData* data() const { return d_; }
  operator fake::EnvData*() const { return d_; }

 private:
  fake::EnvData* d_;
};

class Boolean;

class Value {
 public:
  Value() : n_(fake::Make(fake::Kind::kUndefined)) {}
  Value(Napi::Env env, fake::NodePtr n) : env_(env), n_(n ? n : fake::Make(fake::Kind::kUndefined)) {}
  Napi::Env Env() const { return env_; }
  bool IsUndefined() const { return n_->kind == fake::Kind::kUndefined; }
  bool IsNull() const { return n_->kind == fake::Kind::kNull; }
  bool IsBoolean() const { return n_->kind == fake::Kind::kBoolean; }
  bool IsNumber() const { return n_->kind == fake::Kind::kNumber; }
  bool IsString() const { return n_->kind == fake::Kind::kString; }
  bool IsArray() const { return n_->kind == fake::Kind::kArray; }
  bool IsTypedArray() const { return n_->kind == fake::Kind::kTypedArray; }
  bool IsBuffer() const { return n_->kind == fake::Kind::kTypedArray; }
  bool IsFunction() const { return n_->kind == fake::Kind::kFunction; }
  bool IsObject() const {
    return n_->kind == fake::Kind::kObject || n_->kind == fake::Kind::kArray ||
           n_->kind == fake::Kind::kTypedArray || n_->kind == fake::Kind::kFunction;
  }
  Boolean ToBoolean() const;
  template <typename T>
  T As() const { return T(env_, n_); }
  const fake::NodePtr& node() const { return n_; }

 protected:
  Napi::Env env_;
  fake::NodePtr n_;
};

class Boolean : public Value {
 public:
  using Value::Value;
  static Boolean New(Napi::Env env, bool b) {
    auto n = fake::Make(fake::Kind::kBoolean);
    n->boolean = b;
    return Boolean(env, n);
  }
  operator bool() const { return n_->boolean; }
};

inline Boolean Value::ToBoolean() const {
  switch (n_->kind) {
    case fake::Kind::kUndefined:
    case fake::Kind::kNull: return Boolean::New(env_, false);
    case fake::Kind::kBoolean: return Boolean::New(env_, n_->boolean);
    case fake::Kind::kNumber: return Boolean::New(env_, n_->number != 0 && n_->number == n_->number);
    case fake::Kind::kString: return Boolean::New(env_, !n_->string.empty());
    default: return Boolean::New(env_, true);
  }
}

class Number : public Value {
 public:
  using Value::Value;
  static Number New(Napi::Env env, double d) {
    auto n = fake::Make(fake::Kind::kNumber);
    n->number = d;
    return Number(env, n);
  }
  double DoubleValue() const { return n_->number; }
  // As V8 does: NaN/Infinity -> 0 or saturated for Int64, modulo 2^32 for Int32.
  int64_t Int64Value() const {
    double d = n_->number;
    if (d != d) return 0;
    if (d >= 9223372036854775807.0) return INT64_MAX;
    if (d <= -9223372036854775808.0) return INT64_MIN;
    return static_cast<int64_t>(d);
  }
  int32_t Int32Value() const {
    double d = n_->number;
    if (d != d || d > 1e300 || d < -1e300) return 0;
    double m = __builtin_fmod(__builtin_trunc(d), 4294967296.0);
    if (m < 0) m += 4294967296.0;
    return static_cast<int32_t>(static_cast<uint32_t>(m));
  }
  uint32_t Uint32Value() const { return static_cast<uint32_t>(Int32Value()); }
  operator double() const { return n_->number; }
};

class String : public Value {
 public:
  using Value::Value;
  static String New(Napi::Env env, const std::string& s) {
    auto n = fake::Make(fake::Kind::kString);
    n->string = s;
    return String(env, n);
  }
  static String New(Napi::Env env, const char* s) { return New(env, std::string(s)); }
  std::string Utf8Value() const { return n_->string; }
};

class Object : public Value {
 public:
  using Value::Value;
  static Object New(Napi::Env env) { return Object(env, fake::Make(fake::Kind::kObject)); }
  Napi::Value Get(const std::string& key) const {
    auto it = n_->props.find(key);
    return it == n_->props.end() ? Napi::Value(env_, nullptr) : Napi::Value(env_, it->second);
  }
  void Set(const std::string& key, const Napi::Value& v) { n_->props[key] = v.node(); }
  void Set(const std::string& key, const char* s) { Set(key, String::New(env_, s)); }
  void Set(const std::string& key, const std::string& s) { Set(key, String::New(env_, s)); }
  void Set(const std::string& key, bool b) { Set(key, Boolean::New(env_, b)); }
  void Set(const std::string& key, double d) { Set(key, Number::New(env_, d)); }
  void Set(const std::string& key, uint32_t d) { Set(key, Number::New(env_, d)); }
  void Set(const std::string& key, int32_t d) { Set(key, Number::New(env_, d)); }
  bool InstanceOf(const Napi::Value& ctor) const;
  void TypeTag(const napi_type_tag* tag) const { n_->tag = tag; }
  bool CheckTypeTag(const napi_type_tag* tag) const { return n_->tag == tag; }
};

class Array : public Object {
 public:
  using Object::Object;
  static Array New(Napi::Env env, size_t = 0) { return Array(env, fake::Make(fake::Kind::kArray)); }
  uint32_t Length() const { return static_cast<uint32_t>(n_->elems.size()); }
  Napi::Value Get(uint32_t i) const {
    return i < n_->elems.size() ? Napi::Value(env_, n_->elems[i]) : Napi::Value(env_, nullptr);
  }
  void Set(uint32_t i, const Napi::Value& v) {
    if (i >= n_->elems.size()) n_->elems.resize(i + 1, fake::Make(fake::Kind::kUndefined));
    n_->elems[i] = v.node();
  }
};

// The memory behind a typed array (here: the typed array's own node), or an
// external buffer over caller-owned memory.
class ArrayBuffer : public Object {
 public:
  using Object::Object;
  ArrayBuffer() = default;
  static ArrayBuffer New(Napi::Env env, void* data, size_t length) {
    auto n = fake::Make(fake::Kind::kObject);
    n->bytes = static_cast<uint8_t*>(data);
    n->length = length;
    return ArrayBuffer(env, n);
  }
  void* Data() const { return n_->bytes; }
  size_t ByteLength() const { return n_->length; }
  bool IsDetached() const { return n_->detached; }
  void Detach() {
    n_->detached = true;
    n_->bytes = nullptr;
    n_->length = 0;
  }
};

class TypedArray : public Object {
 public:
  using Object::Object;
  // The harness's typed arrays are views at offset 0 of their own memory.
  static TypedArray NewView(Napi::Env env, void* bytes, size_t length, napi_typedarray_type type = napi_uint8_array) {
    auto n = fake::Make(fake::Kind::kTypedArray);
    n->bytes = static_cast<uint8_t*>(bytes);
    n->length = length;
    n->type = type;
    return TypedArray(env, n);
  }
  Napi::ArrayBuffer ArrayBuffer() const { return Napi::ArrayBuffer(env_, n_); }
  size_t ByteOffset() const { return 0; }
  size_t ByteLength() const { return n_->length; }
  napi_typedarray_type TypedArrayType() const { return n_->type; }
};

class Uint32Array : public TypedArray {
 public:
  using TypedArray::TypedArray;
  // A view of `ab` (its bytes as they are now; the harness reads them through `ab`).
  static Uint32Array New(Napi::Env env, size_t count, const Napi::ArrayBuffer& ab, size_t byte_offset) {
    auto n = fake::Make(fake::Kind::kTypedArray);
    n->bytes = static_cast<uint8_t*>(ab.Data()) + byte_offset;
    n->length = count * 4;
    n->type = napi_uint32_array;
    n->props["buffer"] = ab.node();
    return Uint32Array(env, n);
  }
  size_t ElementLength() const { return n_->length / 4; }
  uint32_t* Data() const { return reinterpret_cast<uint32_t*>(n_->bytes); }
};

template <typename T>
class Buffer : public TypedArray {
 public:
  using TypedArray::TypedArray;
  T* Data() const { return reinterpret_cast<T*>(n_->bytes); }
  size_t Length() const { return n_->length / sizeof(T); }
};

class Error : public Object, public std::exception {
 public:
  Error() = default;  // empty: what a failed error construction throws
  Error(Napi::Env env, fake::NodePtr n) : Object(env, n) {}
  Error(Napi::Env env, fake::Node* n) : Object(env, n->shared_from_this()) {}
  static Error New(Napi::Env env, const std::string& message) { return Make(env, message, "Error"); }
  bool IsEmpty() const { return n_ == nullptr; }
  fake::Node* Value() const { return n_.get(); }
  const char* what() const noexcept override {
    auto it = n_->props.find("message");
    return it == n_->props.end() ? "(empty error)" : it->second->string.c_str();
  }
  // The harness classifies errors by these.
  std::string Name() const {
    auto it = n_->props.find("name");
    return it == n_->props.end() ? std::string() : it->second->string;
  }
  std::string Code() const {
    auto it = n_->props.find("code");
    return it == n_->props.end() ? std::string() : it->second->string;
  }

 protected:
  static Error Make(Napi::Env env, const std::string& message, const char* name) {
    Error e(env, fake::Make(fake::Kind::kObject));
    e.Set("message", message);
    e.Set("name", name);
    return e;
  }
};

class TypeError : public Error {
 public:
  using Error::Error;
  static TypeError New(Napi::Env env, const std::string& message) {
    Error e = Make(env, message, "TypeError");
    return TypeError(env, e.node());
  }
};

class RangeError : public Error {
 public:
  using Error::Error;
  static RangeError New(Napi::Env env, const std::string& message) {
    Error e = Make(env, message, "RangeError");
    return RangeError(env, e.node());
  }
};

class CallbackInfo;

}  // namespace Napi

namespace Napi {
namespace fake {
// What a call passes: `this` and the arguments.
class CallbackInfoData {
 public:
  Napi::Env env;
  NodePtr self;
  std::vector<NodePtr> args;
};
}  // namespace fake

class CallbackInfo {
 public:
  explicit CallbackInfo(const fake::CallbackInfoData& d) : d_(d) {}
  Napi::Env Env() const { return d_.env; }
  size_t Length() const { return d_.args.size(); }
  Value operator[](size_t i) const { return i < d_.args.size() ? Value(d_.env, d_.args[i]) : Value(d_.env, nullptr); }
  Object This() const { return Object(d_.env, d_.self); }

 private:
  const fake::CallbackInfoData& d_;
};

class Function : public Object {
 public:
  using Object::Object;
  // new F(args...): an object wrapping a fresh instance of the class.
  Object New(const std::vector<Napi::Value>& args) const {
    auto self = fake::Make(fake::Kind::kObject);
    self->cls = n_->cls;
    fake::CallbackInfoData d{env_, self, {}};
    for (const auto& a : args) d.args.push_back(a.node());
    self->wrapped = n_->cls->make(d);
    if (env_.data() != nullptr && env_.data()->pending) {
      // The instance stays wrapped: `self` frees it once, as a finalizer would.
      fake::NodePtr thrown = std::move(env_.data()->pending);
      env_.data()->pending.reset();
      throw Error(env_, thrown);
    }
    return Object(env_, self);
  }
  Object New(std::initializer_list<Napi::Value> args) const { return New(std::vector<Napi::Value>(args)); }
};

inline bool Object::InstanceOf(const Napi::Value& ctor) const {
  return n_->cls && ctor.node()->cls && n_->cls == ctor.node()->cls;
}

inline Value Env::Undefined() const { return Value(*this, fake::Make(fake::Kind::kUndefined)); }
inline Value Env::Null() const { return Value(*this, fake::Make(fake::Kind::kNull)); }

template <typename V>
class Reference {
 public:
  Reference() = default;
  explicit Reference(const V& v) : v_(v), set_(true) {}
  bool IsEmpty() const { return !set_; }
  void Reset() { v_ = V(); set_ = false; }
  void Reset(const V& v, uint32_t /*refcount*/) { v_ = v; set_ = true; }
  V Value() const { return v_; }

 protected:
  V v_;
  bool set_ = false;
};

class ObjectReference : public Reference<Object> {
 public:
  using Reference<Object>::Reference;
};

class FunctionReference : public Reference<Function> {
 public:
  using Reference<Function>::Reference;
  Object New(std::initializer_list<Napi::Value> args) const { return v_.New(args); }
};

inline ObjectReference Persistent(const Object& o) { return ObjectReference(o); }
inline FunctionReference Persistent(const Function& f) { return FunctionReference(f); }

template <typename T>
class ObjectWrap {
 public:
  using Method = Napi::Value (T::*)(const CallbackInfo&);
  struct PropertyDescriptor {
    std::string name;
    Method method;
  };

  explicit ObjectWrap(const CallbackInfo&) {}
  virtual ~ObjectWrap() = default;

  static PropertyDescriptor InstanceMethod(const char* name, Method m) { return {name, m}; }
  static PropertyDescriptor InstanceAccessor(const char* name, Method getter, std::nullptr_t) { return {name, getter}; }

  static Function DefineClass(Napi::Env env, const char* name, const std::vector<PropertyDescriptor>& props) {
    auto cls = std::make_shared<fake::Class>();
    cls->name = name;
    cls->make = [](const fake::CallbackInfoData& d) -> void* { return new T(CallbackInfo(d)); };
    cls->destroy = [](void* p) { delete static_cast<T*>(p); };
    for (const auto& p : props) {
      Method m = p.method;
      cls->methods[p.name] = [m](void* self, const fake::CallbackInfoData& d) {
        return (static_cast<T*>(self)->*m)(CallbackInfo(d)).node();
      };
    }
    auto f = fake::Make(fake::Kind::kFunction);
    f->cls = cls;
    return Function(env, f);
  }

  static T* Unwrap(const Object& o) { return static_cast<T*>(o.node()->wrapped); }
};

namespace fake {
// obj.method(args...) as JS would call it; errors propagate as C++ exceptions.
inline Napi::Value Call(const Object& obj, const std::string& method, const std::vector<Napi::Value>& args) {
  const NodePtr& n = obj.node();
  CallbackInfoData d{obj.Env(), n, {}};
  for (const auto& a : args) d.args.push_back(a.node());
  return Napi::Value(obj.Env(), n->cls->methods.at(method)(n->wrapped, d));
}
}  // namespace fake

}  // namespace Napi

// The few raw N-API C calls the addon makes (native/errors.cc builds its
// errors with them): napi_value is a node of the model above.
using napi_env = Napi::fake::EnvData*;
using napi_value = Napi::fake::Node*;
enum napi_status { napi_ok, napi_generic_failure };
#define NAPI_AUTO_LENGTH SIZE_MAX

namespace Napi {
namespace fake {
inline napi_value Keep(napi_env env, NodePtr n) {
  if (env->arena.size() > 4096) env->arena.erase(env->arena.begin(), env->arena.end() - 64);
  env->arena.push_back(n);
  return n.get();
}
inline napi_status MakeError(napi_env env, const char* name, napi_value code, napi_value msg, napi_value* result) {
  auto e = Make(Kind::kObject);
  e->props["message"] = msg->shared_from_this();
  auto nm = Make(Kind::kString);
  nm->string = name;
  e->props["name"] = nm;
  if (code != nullptr) e->props["code"] = code->shared_from_this();
  *result = Keep(env, e);
  return napi_ok;
}
}  // namespace fake
}  // namespace Napi

inline napi_status napi_create_string_utf8(napi_env env, const char* s, size_t len, napi_value* result) {
  auto n = Napi::fake::Make(Napi::fake::Kind::kString);
  n->string = len == NAPI_AUTO_LENGTH ? std::string(s) : std::string(s, len);
  *result = Napi::fake::Keep(env, n);
  return napi_ok;
}
inline napi_status napi_create_int32(napi_env env, int32_t v, napi_value* result) {
  auto n = Napi::fake::Make(Napi::fake::Kind::kNumber);
  n->number = v;
  *result = Napi::fake::Keep(env, n);
  return napi_ok;
}
inline napi_status napi_set_named_property(napi_env, napi_value obj, const char* key, napi_value v) {
  obj->props[key] = v->shared_from_this();
  return napi_ok;
}
inline napi_status napi_create_error(napi_env env, napi_value code, napi_value msg, napi_value* result) {
  return Napi::fake::MakeError(env, "Error", code, msg, result);
}
inline napi_status napi_create_type_error(napi_env env, napi_value code, napi_value msg, napi_value* result) {
  return Napi::fake::MakeError(env, "TypeError", code, msg, result);
}
inline napi_status napi_throw(napi_env env, napi_value error) {
  env->pending = error->shared_from_this();
  return napi_ok;
}
inline napi_status napi_throw_error(napi_env env, const char* code, const char* msg) {
  napi_value c = nullptr, m, e;
  if (code != nullptr) napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  Napi::fake::MakeError(env, "Error", c, m, &e);
  return napi_throw(env, e);
}
inline napi_status napi_create_range_error(napi_env env, napi_value code, napi_value msg, napi_value* result) {
  return Napi::fake::MakeError(env, "RangeError", code, msg, result);
}
