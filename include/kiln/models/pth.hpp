// kiln/models/pth.hpp — torchvision's weight files (and any state_dict that Python's torch.save
// wrote, zip format), read in C++ without Python, and loaded strictly.
//
// A .pth file is a zip archive (LibTorch's PyTorchStreamReader opens it) holding data.pkl, a
// pickle of the state_dict — an OrderedDict of names to tensors, each rebuilt by
// torch._utils._rebuild_tensor_v2 from a storage kept as its own record — and the storages.
// LibTorch's own unpickler refuses the OrderedDict's _metadata attribute, so the pickle is read
// here: the opcodes of pickle protocols 2 to 4 that torch.save writes for a state_dict (anything
// else is an error naming the opcode or the class).
//
// Loading checks, as torch.hub does, the SHA-256 prefix in the file's name ("resnet18-f37072fd.pth":
// the file's SHA-256 must begin with f37072fd), then that every parameter and buffer of the module
// has a tensor of its shape in the file and that the file has nothing more (a missing, extra or
// misshapen tensor is an error naming it). A backbone, which has no classifier, declares the
// prefix of the classifier it leaves out (`classifier_prefix`, "fc." for a ResNet): those entries
// of the file are skipped.
//
//   kiln::models::load_torchvision_weights(trainer.backbone(), "resnet18-f37072fd.pth");
//   auto state = kiln::models::read_state_dict("resnet18-f37072fd.pth");   // names and tensors
#pragma once

#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>
#include <kiln/detail/sha256.hpp>

#include <torch/nn/module.h>
#include <torch/types.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::models {

/// The tensors of a state_dict, in the file's order.
using state_dict = std::vector<std::pair<std::string, torch::Tensor>>;

/// Reads a state_dict that Python's torch.save wrote (zip format). Throws std::runtime_error
/// naming the file and the problem.
KILN_DECL state_dict read_state_dict(const std::filesystem::path& path);

/// The hash prefix in a weight file's name, as torch.hub reads it: the hex digits between the
/// first '-' that is followed only by hex digits and a '.'; empty when the name has none.
KILN_DECL std::string hash_prefix_of(const std::filesystem::path& path);

struct load_options {
  /// Check the file against the SHA-256 prefix in its name (torch.hub's check_hash).
  bool check_hash = true;
  /// Entries of the file to leave out, by name prefix ("fc." for a ResNet's classifier); a
  /// backbone's own classifier_prefix is added to these.
  std::vector<std::string> skip_prefixes;
};

/// Copies the file's tensors into `module`'s parameters and buffers of the same names, strictly.
KILN_DECL void load_state_dict(torch::nn::Module& module, const std::filesystem::path& path, const load_options& options = {});

/// load_state_dict into a torchvision architecture of kiln::models, leaving out the classifier
/// the module does not have (its classifier_prefix).
template <class Holder>
void load_torchvision_weights(Holder& module, const std::filesystem::path& path, load_options options = {}) {
  using impl = typename Holder::Impl;
  if constexpr (requires { impl::classifier_prefix; }) {
    if (!module->has_classifier()) options.skip_prefixes.emplace_back(impl::classifier_prefix);
  }
  load_state_dict(*module, path, options);
}

}  // namespace kiln::models

#if KILN_FUNCTION_DEFINITIONS

#include <caffe2/serialize/inline_container.h>
#include <torch/utils.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <variant>

namespace kiln::models {
namespace detail {

using kiln::detail::concat;

// A value on the pickle machine's stack: what a state_dict's pickle holds.
struct pickled;
using pickled_ptr = std::shared_ptr<pickled>;
struct pickled {
  struct none {};
  struct mark {};
  struct global {
    std::string module, name;
  };
  struct tuple {
    std::vector<pickled_ptr> items;
  };
  struct list {
    std::vector<pickled_ptr> items;
  };
  struct dict {
    std::vector<std::pair<pickled_ptr, pickled_ptr>> items;
  };
  struct storage {
    torch::Tensor flat;  // one-dimensional, the storage's dtype
  };
  std::variant<none, mark, bool, std::int64_t, double, std::string, global, tuple, list, dict, storage, torch::Tensor> value;
};

template <class T>
pickled_ptr make(T v) {
  auto p = std::make_shared<pickled>();
  p->value = std::move(v);
  return p;
}

// The dtype of a storage class of torch (torch.FloatStorage, ...).
inline torch::Dtype storage_dtype(const std::string& name, const std::string& where) {
  static const std::map<std::string, torch::Dtype> dtypes{
      {"FloatStorage", torch::kFloat},   {"DoubleStorage", torch::kDouble}, {"HalfStorage", torch::kHalf},
      {"BFloat16Storage", torch::kBFloat16}, {"LongStorage", torch::kLong}, {"IntStorage", torch::kInt},
      {"ShortStorage", torch::kShort},   {"CharStorage", torch::kChar},     {"ByteStorage", torch::kByte},
      {"BoolStorage", torch::kBool}};
  const auto found = dtypes.find(name);
  if (found == dtypes.end()) kiln::detail::throw_runtime_error(where, concat("a storage of type torch.", name, ", which kiln cannot read"));
  return found->second;
}

class unpickler {
 public:
  unpickler(caffe2::serialize::PyTorchStreamReader& archive, std::string where)
      : archive_(archive), where_(std::move(where)) {}

  pickled_ptr run(const char* data, std::size_t size) {
    data_ = reinterpret_cast<const unsigned char*>(data);
    size_ = size;
    at_ = 0;
    for (;;) {
      const unsigned char op = byte();
      switch (op) {
        case 0x80: byte(); break;              // PROTO
        case 0x95: skip(8); break;             // FRAME
        case '.': return pop();                 // STOP
        case '(': stack_.push_back(make(pickled::mark{})); break;  // MARK
        case 'N': stack_.push_back(make(pickled::none{})); break;
        case 0x88: stack_.push_back(make(true)); break;   // NEWTRUE
        case 0x89: stack_.push_back(make(false)); break;  // NEWFALSE
        case 'K': stack_.push_back(make(std::int64_t{byte()})); break;  // BININT1
        case 'M': stack_.push_back(make(static_cast<std::int64_t>(little(2)))); break;  // BININT2
        case 'J': stack_.push_back(make(static_cast<std::int64_t>(static_cast<std::int32_t>(little(4))))); break;  // BININT
        case 0x8a: stack_.push_back(make(long1())); break;  // LONG1
        case 'G': stack_.push_back(make(binfloat())); break;  // BINFLOAT
        case 'X': stack_.push_back(make(text(little(4)))); break;  // BINUNICODE
        case 0x8c: stack_.push_back(make(text(byte()))); break;    // SHORT_BINUNICODE
        case 'c': {  // GLOBAL: "module\nname\n"
          auto module = line();
          auto name = line();
          stack_.push_back(make(pickled::global{std::move(module), std::move(name)}));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          auto name = as<std::string>(pop(), "STACK_GLOBAL");
          auto module = as<std::string>(pop(), "STACK_GLOBAL");
          stack_.push_back(make(pickled::global{std::move(module), std::move(name)}));
          break;
        }
        case 'q': memo_[byte()] = top(); break;         // BINPUT
        case 'r': memo_[little(4)] = top(); break;      // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = top(); break;  // MEMOIZE
        case 'h': stack_.push_back(recall(byte())); break;     // BINGET
        case 'j': stack_.push_back(recall(little(4))); break;  // LONG_BINGET
        case ')': stack_.push_back(make(pickled::tuple{})); break;  // EMPTY_TUPLE
        case 't': stack_.push_back(make(pickled::tuple{since_mark()})); break;  // TUPLE
        case 0x85: case 0x86: case 0x87: {  // TUPLE1, TUPLE2, TUPLE3
          const std::size_t n = op - 0x84u;
          if (stack_.size() < n) fail("a tuple of more values than the stack holds");
          std::vector<pickled_ptr> items(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
          stack_.resize(stack_.size() - n);
          stack_.push_back(make(pickled::tuple{std::move(items)}));
          break;
        }
        case '}': stack_.push_back(make(pickled::dict{})); break;  // EMPTY_DICT
        case ']': stack_.push_back(make(pickled::list{})); break;  // EMPTY_LIST
        case 's': {  // SETITEM
          auto value = pop();
          auto key = pop();
          as_dict(top()).items.emplace_back(std::move(key), std::move(value));
          break;
        }
        case 'u': {  // SETITEMS
          auto items = since_mark();
          if (items.size() % 2 != 0) fail("SETITEMS with an odd number of values");
          auto& dict = as_dict(top());
          for (std::size_t i = 0; i < items.size(); i += 2) dict.items.emplace_back(items[i], items[i + 1]);
          break;
        }
        case 'a': {  // APPEND
          auto value = pop();
          as_list(top()).items.push_back(std::move(value));
          break;
        }
        case 'e': {  // APPENDS
          auto items = since_mark();
          auto& list = as_list(top());
          list.items.insert(list.items.end(), items.begin(), items.end());
          break;
        }
        case 'Q': stack_.push_back(persistent(pop())); break;  // BINPERSID
        case 'R': {  // REDUCE
          auto arguments = pop();
          auto callable = pop();
          stack_.push_back(reduce(callable, arguments));
          break;
        }
        case 'b': pop(); break;  // BUILD: the OrderedDict's _metadata, which loading does not need
        default: fail(concat("pickle opcode 0x", hex(op), " at byte ", at_ - 1, ", which a state_dict's pickle does not use"));
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const { kiln::detail::throw_runtime_error(where_, problem); }

  static std::string hex(unsigned value) {
    const char* digits = "0123456789abcdef";
    return {digits[(value >> 4) & 15], digits[value & 15]};
  }
  unsigned char byte() {
    if (at_ >= size_) fail("the pickle ends early (the file is truncated or damaged)");
    return data_[at_++];
  }
  void skip(std::size_t n) {
    if (at_ + n > size_) fail("the pickle ends early (the file is truncated or damaged)");
    at_ += n;
  }
  std::uint64_t little(int bytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= std::uint64_t{byte()} << (8 * i);
    return v;
  }
  std::int64_t long1() {
    const int n = byte();
    if (n > 8) fail("an integer of more than 64 bits");
    std::uint64_t v = little(n);
    if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~std::uint64_t{0} << (8 * n);  // sign-extend
    return static_cast<std::int64_t>(v);
  }
  double binfloat() {
    std::uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = (bits << 8) | byte();  // big-endian
    double d;
    std::memcpy(&d, &bits, sizeof d);
    return d;
  }
  std::string text(std::uint64_t n) {
    skip(n);
    return {reinterpret_cast<const char*>(data_ + at_ - n), static_cast<std::size_t>(n)};
  }
  std::string line() {
    std::string s;
    for (unsigned char c = byte(); c != '\n'; c = byte()) s += static_cast<char>(c);
    return s;
  }
  pickled_ptr pop() {
    if (stack_.empty()) fail("the pickle pops an empty stack (the file is damaged)");
    auto v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  pickled_ptr& top() {
    if (stack_.empty()) fail("the pickle reads an empty stack (the file is damaged)");
    return stack_.back();
  }
  pickled_ptr recall(std::uint64_t key) {
    const auto found = memo_.find(key);
    if (found == memo_.end()) fail("the pickle recalls a value it never stored (the file is damaged)");
    return found->second;
  }
  std::vector<pickled_ptr> since_mark() {
    for (std::size_t i = stack_.size(); i-- > 0;) {
      if (std::holds_alternative<pickled::mark>(stack_[i]->value)) {
        std::vector<pickled_ptr> items(stack_.begin() + static_cast<std::ptrdiff_t>(i) + 1, stack_.end());
        stack_.resize(i);
        return items;
      }
    }
    fail("the pickle closes a mark it never opened (the file is damaged)");
  }
  template <class T>
  T as(const pickled_ptr& p, const char* what) {
    if (const auto* v = std::get_if<T>(&p->value)) return *v;
    fail(concat("an unexpected value in ", what));
  }
  pickled::dict& as_dict(pickled_ptr& p) {
    if (auto* d = std::get_if<pickled::dict>(&p->value)) return *d;
    fail("items set on something that is not a dict");
  }
  pickled::list& as_list(pickled_ptr& p) {
    if (auto* l = std::get_if<pickled::list>(&p->value)) return *l;
    fail("items appended to something that is not a list");
  }

  // ('storage', <storage class>, key, location, numel): the record data/<key>, on the CPU.
  pickled_ptr persistent(const pickled_ptr& id) {
    const auto& items = as<pickled::tuple>(id, "a persistent id").items;
    if (items.size() < 5 || as<std::string>(items[0], "a persistent id") != "storage") {
      fail("a persistent id that is not a storage");
    }
    const auto type = as<pickled::global>(items[1], "a storage's type");
    const auto key = as<std::string>(items[2], "a storage's key");
    const auto numel = as<std::int64_t>(items[4], "a storage's size");
    if (const auto cached = storages_.find(key); cached != storages_.end()) return cached->second;
    const auto dtype = storage_dtype(type.name, where_);
    const std::string record = "data/" + key;
    if (!archive_.hasRecord(record)) fail(concat("the storage '", record, "' is missing from the archive"));
    auto [bytes, size] = archive_.getRecord(record);
    const auto expected = static_cast<std::size_t>(numel) * c10::elementSize(dtype);
    if (size != expected) fail(concat("the storage '", record, "' has ", size, " bytes, not the ", expected, " its tensor needs"));
    auto flat = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
    if (size > 0) std::memcpy(flat.data_ptr(), bytes.get(), size);
    return storages_[key] = make(pickled::storage{std::move(flat)});
  }

  pickled_ptr reduce(const pickled_ptr& callable, const pickled_ptr& arguments) {
    const auto function = as<pickled::global>(callable, "a call");
    const auto& args = as<pickled::tuple>(arguments, "a call's arguments").items;
    const std::string name = function.module + "." + function.name;
    if (name == "collections.OrderedDict") return make(pickled::dict{});
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      if (args.size() < 4) fail("_rebuild_tensor_v2 with too few arguments");
      const auto flat = as<pickled::storage>(args[0], "a tensor's storage").flat;
      const auto offset = as<std::int64_t>(args[1], "a tensor's offset");
      const auto sizes = integers(args[2]);
      const auto strides = integers(args[3]);
      return make(flat.as_strided(sizes, strides, offset));
    }
    if (name == "torch._utils._rebuild_parameter") {
      if (args.empty()) fail("_rebuild_parameter without its tensor");
      return make(as<torch::Tensor>(args[0], "a parameter's tensor"));
    }
    fail(concat("the pickle calls ", name, ", which a state_dict's pickle does not (is this a whole pickled model "
                "rather than its state_dict? save model.state_dict())"));
  }
  std::vector<std::int64_t> integers(const pickled_ptr& p) {
    std::vector<std::int64_t> out;
    for (const auto& item : as<pickled::tuple>(p, "a tensor's shape").items) out.push_back(as<std::int64_t>(item, "a shape"));
    return out;
  }

  caffe2::serialize::PyTorchStreamReader& archive_;
  std::string where_;
  const unsigned char* data_ = nullptr;
  std::size_t size_ = 0, at_ = 0;
  std::vector<pickled_ptr> stack_;
  std::map<std::uint64_t, pickled_ptr> memo_;
  std::map<std::string, pickled_ptr> storages_;
};

}  // namespace detail

KILN_DECL state_dict read_state_dict(const std::filesystem::path& path) {
  const std::string where = "kiln::models::read_state_dict('" + path.string() + "')";
  if (!std::filesystem::exists(path)) kiln::detail::throw_runtime_error(where, "no such file");
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> archive;
  try {
    archive = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path.string());
  } catch (const c10::Error& e) {
    kiln::detail::throw_runtime_error(
        where, detail::concat("not a zip archive of torch.save (", e.what_without_backtrace(),
                              "); a file in PyTorch's legacy format can be re-saved with "
                              "torch.save(torch.load(f), f) by PyTorch 1.6 or later"));
  }
  if (!archive->hasRecord("data.pkl")) kiln::detail::throw_runtime_error(where, "the archive has no data.pkl");
  auto [pickle, size] = archive->getRecord("data.pkl");
  detail::unpickler machine(*archive, where);
  const auto root = machine.run(static_cast<const char*>(pickle.get()), size);
  const auto* dict = std::get_if<detail::pickled::dict>(&root->value);
  if (dict == nullptr) kiln::detail::throw_runtime_error(where, "the file holds something other than a state_dict");
  state_dict out;
  for (const auto& [key, value] : dict->items) {
    const auto* name = std::get_if<std::string>(&key->value);
    const auto* tensor = std::get_if<torch::Tensor>(&value->value);
    if (name == nullptr || tensor == nullptr) {
      kiln::detail::throw_runtime_error(where, "the state_dict maps something other than names to tensors");
    }
    out.emplace_back(*name, *tensor);
  }
  return out;
}

KILN_DECL std::string hash_prefix_of(const std::filesystem::path& path) {
  const std::string name = path.filename().string();
  // torch.hub's HASH_REGEX, r'-([a-f0-9]*)\.', searched from the left.
  for (std::size_t dash = name.find('-'); dash != std::string::npos; dash = name.find('-', dash + 1)) {
    std::size_t end = dash + 1;
    while (end < name.size() && ((name[end] >= '0' && name[end] <= '9') || (name[end] >= 'a' && name[end] <= 'f'))) ++end;
    if (end < name.size() && name[end] == '.') return name.substr(dash + 1, end - dash - 1);
  }
  return {};
}

KILN_DECL void load_state_dict(torch::nn::Module& module, const std::filesystem::path& path, const load_options& options) {
  using kiln::detail::concat;
  const std::string where = "kiln::models::load_state_dict('" + path.string() + "')";
  if (options.check_hash) {
    if (const auto prefix = hash_prefix_of(path); !prefix.empty()) {
      const auto digest = kiln::detail::sha256_of_file(path);
      if (digest.compare(0, prefix.size(), prefix) != 0) {
        kiln::detail::throw_runtime_error(
            where, concat("its SHA-256 is ", digest, ", but its name says it begins with ", prefix,
                          ": the file is damaged or not the one published under that name; download it again"));
      }
    }
  }
  const auto file = read_state_dict(path);
  auto skipped = [&](const std::string& name) {
    for (const auto& prefix : options.skip_prefixes) {
      if (name.starts_with(prefix)) return true;
    }
    return false;
  };
  std::map<std::string, torch::Tensor> from_file;
  for (const auto& [name, tensor] : file) {
    if (!skipped(name)) from_file.emplace(name, tensor);
  }
  std::vector<std::pair<std::string, torch::Tensor>> targets;
  for (const auto& item : module.named_parameters()) targets.emplace_back(item.key(), item.value());
  for (const auto& item : module.named_buffers()) targets.emplace_back(item.key(), item.value());
  std::vector<std::string> missing, misshapen;
  for (const auto& [name, tensor] : targets) {
    const auto found = from_file.find(name);
    if (found == from_file.end()) {
      missing.push_back(name);
    } else if (found->second.sizes() != tensor.sizes()) {
      misshapen.push_back(concat(name, " is ", found->second.sizes(), " in the file and ", tensor.sizes(), " in the module"));
    }
  }
  std::vector<std::string> extra;
  for (const auto& [name, tensor] : from_file) {
    if (std::none_of(targets.begin(), targets.end(), [&](const auto& t) { return t.first == name; })) extra.push_back(name);
  }
  auto listed = [](const std::vector<std::string>& names) {
    std::string out;
    for (std::size_t i = 0; i < names.size() && i < 5; ++i) out += (i > 0 ? ", " : "") + names[i];
    if (names.size() > 5) out += concat(" and ", names.size() - 5, " more");
    return out;
  };
  if (!missing.empty() || !extra.empty() || !misshapen.empty()) {
    std::string problem = "the file does not fit the module:";
    if (!missing.empty()) problem += concat(" missing from the file: ", listed(missing), ";");
    if (!extra.empty()) problem += concat(" in the file but not in the module: ", listed(extra), ";");
    if (!misshapen.empty()) problem += concat(" ", listed(misshapen), ";");
    problem += " are they the weights of this architecture and variant?";
    kiln::detail::throw_runtime_error(where, problem);
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : targets) tensor.copy_(from_file.at(name));
}

}  // namespace kiln::models

#endif  // KILN_FUNCTION_DEFINITIONS
