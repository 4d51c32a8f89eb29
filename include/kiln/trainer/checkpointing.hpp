// kiln/trainer/checkpointing.hpp — a trainer's checkpoints: what one holds, the writer that
// saves a trainer into one, and the reader that restores it, with clear errors.
//
// A checkpoint is one LibTorch archive (the zip format torch::save writes), followed by kiln's
// seal: a checksum of every byte before it (kiln/detail/seal.hpp), verified before anything is
// loaded, so that a damaged file is an error rather than silently wrong numbers. It holds:
//
//   kiln.format          2; a file of another format is refused
//   kiln.pipeline.<role> the policy type of each role, as the compiler names it: a checkpoint
//                        is resumed only by a pipeline of the same structure
//   model                parameters and buffers, loaded strictly (kiln::load_weights reads them)
//   optimizer            torch::optim's own state (momenta, Adam's moments and step counts)
//   scheduler            the learning-rate schedule's position and its own variables
//   precision            with kiln::mixed_precision<fp16>: the loss scale and growth tracker
//   callbacks/<i>        the state of the i-th callback that declares one (see below)
//   counters             epoch (epochs the fit completed), batch (batches done of the next
//                        epoch when ctx.interrupt() ended the fit part way, with that epoch's
//                        running loss_sum and samples), step, passes (training passes, which
//                        replay data orders), frozen (backbone children still frozen), stopped
//   rng/cpu, rng/cuda<i> the random-number generators: dropout and shuffling resume exactly
//   augment              with kiln::augment: its generator's state, so that the augmentations
//                        resume exactly too
//   history/<e>          each completed epoch's metric names and values
//   hyperparameters      the run's effective configuration, JSON text (empty without one)
//
// trainer::save_checkpoint writes it atomically (kiln/io/atomic_file.hpp), through
// detail::checkpointing::save below: a process killed during the write leaves the previous
// checkpoint whole. trainer::load_checkpoint, or fit(..., {.resume_from = path}), restores every
// part (detail::checkpointing::restore). fit() and ctx.save_checkpoint reach checkpoints only in
// pipelines compiled with them (kiln::trainer::has_checkpoint_hooks).
//
// A callback keeps state across a resume by naming it `state` and giving its type a member
// `template <class F> void each(F&& f)` that calls f("name", field) for each field to keep;
// fields may be bool, integers, double, std::string, torch::Tensor or std::vector of those.
//
//   struct count_batches {
//     struct state_type {
//       std::int64_t seen = 0;
//       template <class F> void each(F&& f) { f("seen", seen); }
//     } state;
//     void on_batch_end(kiln::context&) { ++state.seen; }
//   };
//
// kiln::read_checkpoint_info(path) reads the header and counters without a pipeline.
#pragma once

#include <kiln/core/metric_values.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>
#include <kiln/io/archive.hpp>
#include <kiln/io/atomic_file.hpp>
#include <kiln/model/weights.hpp>
#include <kiln/trainer/network.hpp>

#include <ATen/Context.h>
#include <torch/cuda.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <istream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace kiln {

/// Thrown for a checkpoint that cannot be used: missing, truncated, corrupt, from another
/// pipeline, or of shapes this model does not have. The message names the file and the problem.
struct checkpoint_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// What a checkpoint says about itself.
struct checkpoint_info {
  std::int64_t format = 0;
  std::vector<std::pair<std::string, std::string>> pipeline;  ///< role, policy type
  std::int64_t epoch = 0;   ///< epochs the fit had completed
  std::int64_t step = 0;    ///< optimizer steps taken
  bool stopped = false;     ///< a callback had asked the fit to stop
  std::vector<metric_values> history;
  std::string hyperparameters;
};

namespace detail {

inline constexpr std::int64_t checkpoint_format = 2;

/// The name the compiler gives T, e.g. "kiln::adamw".
template <class T>
constexpr std::string_view type_name() {
  std::string_view s = __PRETTY_FUNCTION__;  // "... type_name() [with T = X; ...]" or "[T = X]"
  const auto start = s.find("T = ") + 4;
  const auto end = s.find_first_of(";]", start);
  return s.substr(start, end - start);
}

template <class T>
struct is_vector : std::false_type {};
template <class T>
struct is_vector<std::vector<T>> : std::true_type {};

/// The kinds of field a callback's state may keep.
template <class T>
concept StateField = std::is_same_v<T, bool> || std::is_integral_v<T> || std::is_enum_v<T> ||
                     std::is_same_v<T, double> || std::is_same_v<T, std::string> ||
                     std::is_same_v<T, torch::Tensor> || is_vector<T>::value;

template <class T>
c10::IValue to_ivalue(const T& value) {
  if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, double> || std::is_same_v<T, std::string> ||
                std::is_same_v<T, torch::Tensor>) {
    return value;
  } else if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) {
    return static_cast<std::int64_t>(value);
  } else {
    c10::impl::GenericList list(c10::AnyType::get());
    for (const auto& item : value) list.push_back(to_ivalue(item));
    return list;
  }
}

template <class T>
T from_ivalue(const c10::IValue& v, const std::string& where) {
  auto wrong = [&](const char* expected) {
    return checkpoint_error(concat(where, ": expected ", expected, ", the file holds ", v.tagKind(),
                                   "; the checkpoint was written by a different pipeline"));
  };
  if constexpr (std::is_same_v<T, bool>) {
    if (!v.isBool()) throw wrong("a bool");
    return v.toBool();
  } else if constexpr (std::is_integral_v<T> || std::is_enum_v<T>) {
    if (!v.isInt()) throw wrong("an integer");
    return static_cast<T>(v.toInt());
  } else if constexpr (std::is_same_v<T, double>) {
    if (!v.isDouble()) throw wrong("a number");
    return v.toDouble();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!v.isString()) throw wrong("a string");
    return v.toStringRef();
  } else if constexpr (std::is_same_v<T, torch::Tensor>) {
    if (!v.isTensor()) throw wrong("a tensor");
    return v.toTensor();
  } else {
    if (!v.isList()) throw wrong("a list");
    T out;
    for (const c10::IValue& item : v.toListRef()) {
      out.push_back(from_ivalue<typename T::value_type>(item, where + "[]"));
    }
    return out;
  }
}

/// Writes fields of a state into an archive: the `f` of a state's each(f).
class state_writer {
 public:
  explicit state_writer(torch::serialize::OutputArchive& archive) : archive_(archive) {}
  template <class T>
  void operator()(const char* key, const T& value) {
    static_assert(StateField<T>, "kiln checkpoint: a state field must be bool, an integer, an enum, double, "
                                 "std::string, torch::Tensor or a std::vector of those");
    archive_.write(key, to_ivalue(value));
  }

 private:
  torch::serialize::OutputArchive& archive_;
};

/// Reads fields of a state back; `where` names the state in error messages.
class state_reader {
 public:
  state_reader(torch::serialize::InputArchive& archive, std::string where)
      : archive_(archive), where_(std::move(where)) {}
  template <class T>
  void operator()(const char* key, T& value) {
    c10::IValue v;
    if (!archive_.try_read(key, v)) {
      throw checkpoint_error(concat(where_, ": the file has no '", key,
                                    "'; the checkpoint was written by a different pipeline"));
    }
    value = from_ivalue<T>(v, concat(where_, ": '", key, "'"));
  }

 private:
  torch::serialize::InputArchive& archive_;
  std::string where_;
};

template <class S>
concept PersistentState = requires(S& s, state_writer& w) { s.each(w); };

template <class C>
concept HasPersistentState = requires(C& c) { c.state; } && PersistentState<decltype(std::declval<C&>().state)>;

/// The default generator of each device kiln can see: the CPU, then each CUDA device.
KILN_DECL std::vector<std::pair<std::string, at::Generator>> generators();

KILN_DECL void save_generators(torch::serialize::OutputArchive& archive);

/// Restores each generator the file holds; a CUDA generator the machine lacks is left out, as
/// is one the file lacks (a checkpoint from a CPU run resumed on a GPU machine).
KILN_DECL void load_generators(torch::serialize::InputArchive& archive, const std::string& where);

KILN_DECL void save_history(torch::serialize::OutputArchive& archive, const std::vector<metric_values>& history);

KILN_DECL std::vector<metric_values> load_history(torch::serialize::InputArchive& archive, const std::string& where);

/// Opens the checkpoint that `file` holds, with every problem as a checkpoint_error that names
/// the file: damage (found by the seal before anything is loaded), not a LibTorch archive, not
/// a kiln checkpoint, another format.
KILN_DECL torch::serialize::InputArchive open_checkpoint(const sealed_bytes& file, const std::string& where);

inline torch::serialize::InputArchive open_checkpoint(const std::filesystem::path& path, const std::string& where) {
  return open_checkpoint(read_sealed<checkpoint_error>(path, where), where);
}

KILN_DECL torch::serialize::InputArchive sub_archive(torch::serialize::InputArchive& archive, const char* key,
                                                     const std::string& where);

KILN_DECL checkpoint_info read_info(torch::serialize::InputArchive& archive, const std::string& where);

/// The policy type of each role that decides the numbers a fit produces, as "kiln.pipeline"
/// records them. Metrics and callbacks are left out: adding a logger to a resumed run is fine,
/// and callback states match by type.
template <class T>
constexpr std::array<std::pair<const char*, std::string_view>, 7> pipeline_roles() {
  return {{{"backbone", type_name<typename T::backbone_policy>()},
           {"head", type_name<typename T::head_policy>()},
           {"freeze", type_name<typename T::freeze_policy>()},
           {"loss", type_name<typename T::loss_policy>()},
           {"optimizer", type_name<typename T::optimizer_policy>()},
           {"scheduler", type_name<typename T::scheduler_policy>()},
           {"accumulate", type_name<typename T::accumulate_policy>()}}};
}

/// The checkpoint writer and reader of kiln::trainer T (a friend of T's). They are templates, so
/// a pipeline compiles them only where it calls them (see trainer::has_checkpoint_hooks).
struct checkpointing {
  /// Writes every part listed at the top of this file to `path`, atomically.
  template <class T>
  [[gnu::cold]] static void save(T& t, const std::filesystem::path& path) {
    atomic_write(path, [&](const std::filesystem::path& tmp) {
      auto archive = new_archive();
      write(t, archive);
      save_archive(archive, tmp);
    });
  }

  template <class T>
  [[gnu::cold]] static void write(T& t, torch::serialize::OutputArchive& archive) {
    auto part = [&](const char* key, auto&& write_part) {
      auto sub = new_archive();
      write_part(sub);
      archive.write(key, sub);
    };
    archive.write("kiln.format", checkpoint_format);
    part("kiln.pipeline", [&](auto& a) {
      for (const auto& [role, type] : pipeline_roles<T>()) a.write(role, std::string{type});
    });
    part("model", [&](auto& a) { t.model_->save(a); });
    part("optimizer", [&](auto& a) { t.optimizer_.save(a); });
    part("scheduler", [&](auto& a) { t.scheduler_.save(a); });
    if constexpr (T::precision_type::scales_loss) {
      part("precision", [&](auto& a) {
        auto scaler = t.precision_.scaler().state();
        state_writer w{a};
        scaler.each(w);
      });
    }
    part("callbacks", [&](auto& a) {
      each_persistent_callback(t, [&](const std::string& key, auto& state) {
        auto one = new_archive();
        state_writer w{one};
        state.each(w);
        a.write(key, one);
      });
    });
    part("counters", [&](auto& a) {
      state_writer w{a};
      w("epoch", static_cast<std::int64_t>(t.history_.size()));
      w("batch", t.interrupted_batch_);  // batches done of an epoch interrupted part way; else 0
      w("loss_sum", t.loss_sum_.defined() ? t.loss_sum_.detach().cpu() : torch::zeros({}, torch::kDouble));
      w("samples", t.samples_);
      w("step", t.ctx_.step);
      w("passes", t.passes_);
      w("frozen", static_cast<std::int64_t>(t.ctx_.frozen.size()));
      w("stopped", t.ctx_.stop_requested());
    });
    part("rng", [&](auto& a) { save_generators(a); });
    if constexpr (T::augment_type::active) part("augment", [&](auto& a) { a.write("generator", t.augment_.state()); });
    part("history", [&](auto& a) { save_history(a, t.history_); });
    archive.write("hyperparameters", t.ctx_.hyperparameters);
  }

  /// Restores all but the callbacks' states, which it returns: a fit loads them after
  /// on_fit_begin, which resets them.
  template <class T>
  [[gnu::cold]] static torch::serialize::InputArchive restore(T& t, const std::filesystem::path& path,
                                                              const std::string& where) {
    auto archive = open_checkpoint(path, where);
    check_pipeline<T>(archive, where);
    const checkpoint_info info = read_info(archive, where);
    auto model = sub_archive(archive, "model", where);
    auto optimizer = sub_archive(archive, "optimizer", where);
    auto scheduler = sub_archive(archive, "scheduler", where);
    auto counters = sub_archive(archive, "counters", where);
    auto rng = sub_archive(archive, "rng", where);
    std::int64_t passes = 0, frozen = 0, batch = 0, samples = 0;
    torch::Tensor loss_sum;
    state_reader read{counters, where + ", counters"};
    read("passes", passes);
    read("frozen", frozen);
    read("batch", batch);
    read("loss_sum", loss_sum);
    read("samples", samples);
    if (batch < 0 || samples < 0 || loss_sum.numel() != 1) {
      throw checkpoint_error(where + ": the counters are corrupt");
    }
    const auto pipeline_frozen = static_cast<std::int64_t>(T::frozen_children);
    if (frozen != 0 && frozen != pipeline_frozen) {
      throw checkpoint_error(concat(where, ": the checkpoint has ", frozen,
                                    " frozen backbone children, this pipeline freezes ", pipeline_frozen));
    }
    try {
      load_module(*t.model_, model, where, "");
    } catch (const c10::Error& e) {
      throw checkpoint_error(concat(where, ": the weights do not load (", first_line(e.what()), ")"));
    } catch (const std::runtime_error& e) {
      throw checkpoint_error(e.what());
    }
    try {
      t.optimizer_.load(optimizer);
    } catch (const c10::Error& e) {
      throw checkpoint_error(concat(where, ": the optimizer state does not fit this optimizer (",
                                    first_line(e.what()), ")"));
    }
    try {
      t.scheduler_.load(scheduler);
    } catch (const std::exception& e) {
      throw checkpoint_error(concat(where, ": the scheduler state does not fit this scheduler (",
                                    first_line(e.what()), ")"));
    }
    auto& ctx = t.ctx_;
    if (frozen == 0) {
      ctx.unfreeze();
    } else if (ctx.frozen.empty()) {
      ctx.frozen = freeze_children<T::frozen_children>(t.model_->backbone());
    }
    if constexpr (T::precision_type::scales_loss) {  // a checkpoint of a run without loss scaling has none
      torch::serialize::InputArchive precision;
      if (archive.try_read("precision", precision)) {
        auto scaler = t.precision_.scaler().state();
        state_reader r{precision, where + ", loss scaler"};
        scaler.each(r);
        t.precision_.scaler().load_state(scaler);
      }
    }
    load_generators(rng, where);
    if constexpr (T::augment_type::active) {
      torch::serialize::InputArchive augment;
      torch::Tensor state;
      if (!archive.try_read("augment", augment) || !augment.try_read("generator", state)) {
        throw checkpoint_error(where + ": the checkpoint has no augmentation state (it was written by a pipeline "
                                       "without kiln::augment); resume it with the pipeline that wrote it");
      }
      try {
        t.augment_.load_state(state);
      } catch (const c10::Error& e) {
        throw checkpoint_error(concat(where, ": the augmentation's generator state does not fit this device's (",
                                      first_line(e.what()), ")"));
      }
    }
    t.history_ = info.history;
    ctx.metrics = t.history_.empty() ? metric_values{} : t.history_.back();
    ctx.step = info.step;
    ctx.learning_rates = t.scheduler_.learning_rates();
    ctx.restore_stop(info.stopped);
    t.passes_ = passes;
    t.resume_batch_ = batch;
    t.loss_sum_ = loss_sum.to(torch::TensorOptions(t.device_).dtype(torch::kDouble)).reshape({});
    t.samples_ = samples;
    return sub_archive(archive, "callbacks", where);
  }

  template <class T>
  [[gnu::cold]] static void check_pipeline(torch::serialize::InputArchive& archive, const std::string& where) {
    auto saved = sub_archive(archive, "kiln.pipeline", where);
    for (const auto& [role, ours] : pipeline_roles<T>()) {
      std::string theirs;
      state_reader{saved, where + ", pipeline"}(role, theirs);
      if (theirs != ours) {
        throw checkpoint_error(concat(where, ": the checkpoint was written by another pipeline: its ", role, " is ",
                                      theirs, ", this trainer's is ", ours));
      }
    }
  }

  /// A callback whose state the checkpoint lacks (one added since) keeps its fresh state.
  template <class T>
  [[gnu::cold]] static void load_callback_states(T& t, torch::serialize::InputArchive& archive,
                                                 const std::string& where) {
    each_persistent_callback(t, [&](const std::string& key, auto& state) {
      torch::serialize::InputArchive one;
      if (!archive.try_read(key, one)) return;
      state = std::remove_cvref_t<decltype(state)>{};
      state_reader r{one, where + ", callback " + key};
      state.each(r);
    });
  }

  /// Calls f("<type>#<k>", state) for each callback with a persistent state; k counts the
  /// callbacks of that type before it, so that two loggers keep their own states.
  template <class T, class F>
  static void each_persistent_callback(T& t, F&& f) {
    std::vector<std::string_view> seen;
    t.callbacks_.each([&](auto& callback) {
      using C = std::remove_cvref_t<decltype(callback)>;
      if constexpr (HasPersistentState<C>) {
        constexpr std::string_view type = type_name<C>();
        std::size_t k = 0;
        for (const auto seen_type : seen) k += seen_type == type;
        seen.push_back(type);
        f(concat(type, '#', k), callback.state);
      }
    });
  }
};

}  // namespace detail

/// The header, counters, history and configuration of the checkpoint at `path`.
/// Throws kiln::checkpoint_error naming the file and the problem.
KILN_DECL checkpoint_info read_checkpoint_info(const std::filesystem::path& path);

/// As above, from a stream holding a checkpoint's bytes.
KILN_DECL checkpoint_info read_checkpoint_info(std::istream& stream);

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL std::vector<std::pair<std::string, at::Generator>> generators() {
  std::vector<std::pair<std::string, at::Generator>> out;
  out.emplace_back("cpu", at::globalContext().defaultGenerator(at::kCPU));
  if (torch::cuda::is_available()) {
    for (std::size_t i = 0; i < torch::cuda::device_count(); ++i) {
      out.emplace_back(concat("cuda", i), at::globalContext().defaultGenerator(
                                              at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(i))));
    }
  }
  return out;
}

KILN_DECL void save_generators(torch::serialize::OutputArchive& archive) {
  for (auto& [name, generator] : generators()) {
    std::lock_guard<std::mutex> lock(generator.mutex());
    archive.write(name, generator.get_state());
  }
}

KILN_DECL void load_generators(torch::serialize::InputArchive& archive, const std::string& where) {
  for (auto& [name, generator] : generators()) {
    torch::Tensor state;
    if (!archive.try_read(name, state)) {
      if (name == "cpu") throw checkpoint_error(where + ": the file has no random-number-generator state");
      continue;
    }
    std::lock_guard<std::mutex> lock(generator.mutex());
    try {
      generator.set_state(state);
    } catch (const c10::Error& e) {
      throw checkpoint_error(concat(where, ": the ", name, " random-number-generator state is corrupt"));
    }
  }
}

KILN_DECL void save_history(torch::serialize::OutputArchive& archive, const std::vector<metric_values>& history) {
  archive.write("size", static_cast<std::int64_t>(history.size()));
  for (std::size_t e = 0; e < history.size(); ++e) {
    std::vector<std::string> names;
    std::vector<double> values;
    for (const auto& [name, value] : history[e]) {
      names.push_back(name);
      values.push_back(value);
    }
    auto epoch = detail::new_archive();
    state_writer w{epoch};
    w("names", names);
    w("values", values);
    archive.write(std::to_string(e), epoch);
  }
}

KILN_DECL std::vector<metric_values> load_history(torch::serialize::InputArchive& archive, const std::string& where) {
  std::int64_t size = 0;
  state_reader{archive, where}("size", size);
  if (size < 0 || size > (std::int64_t{1} << 24)) throw checkpoint_error(concat(where, ": the epoch count is corrupt"));
  std::vector<metric_values> history(static_cast<std::size_t>(size));
  for (std::size_t e = 0; e < history.size(); ++e) {
    torch::serialize::InputArchive epoch;
    if (!archive.try_read(std::to_string(e), epoch)) {
      throw checkpoint_error(concat(where, ": epoch ", e, " is missing"));
    }
    std::vector<std::string> names;
    std::vector<double> values;
    state_reader r{epoch, concat(where, " of epoch ", e)};
    r("names", names);
    r("values", values);
    if (names.size() != values.size()) throw checkpoint_error(concat(where, ": epoch ", e, " is corrupt"));
    for (std::size_t i = 0; i < names.size(); ++i) history[e].set(names[i], values[i]);
  }
  return history;
}

KILN_DECL torch::serialize::InputArchive open_checkpoint(const sealed_bytes& file, const std::string& where) {
  torch::serialize::InputArchive archive;
  load_archive<checkpoint_error>(archive, file, where);
  c10::IValue format;
  if (!archive.try_read("kiln.format", format) || !format.isInt()) {
    throw checkpoint_error(concat(
        where, ": not a kiln checkpoint (it has no kiln.format); a file of weights only loads with "
        "kiln::load_weights or kiln::backbone{.weights = ...}"));
  }
  if (format.toInt() != checkpoint_format) {
    throw checkpoint_error(concat(where, ": checkpoint format ", format.toInt(), ", this kiln reads format ",
                                  checkpoint_format, "; resume it with the kiln version that wrote it"));
  }
  if (file.kind != envelope_kind::sealed) {
    throw checkpoint_error(where + ": truncated or corrupt: the seal that ends every checkpoint is missing");
  }
  return archive;
}

KILN_DECL torch::serialize::InputArchive sub_archive(torch::serialize::InputArchive& archive, const char* key,
                                                     const std::string& where) {
  torch::serialize::InputArchive sub;
  if (!archive.try_read(key, sub)) {
    throw checkpoint_error(concat(where, ": the checkpoint has no '", key, "' part; it is truncated or corrupt"));
  }
  return sub;
}

KILN_DECL checkpoint_info read_info(torch::serialize::InputArchive& archive, const std::string& where) {
  checkpoint_info info;
  info.format = checkpoint_format;
  auto pipeline = sub_archive(archive, "kiln.pipeline", where);
  for (const auto& role : pipeline.keys()) {
    std::string type;
    state_reader{pipeline, where + ", pipeline"}(role.c_str(), type);
    info.pipeline.emplace_back(role, std::move(type));
  }
  auto counters = sub_archive(archive, "counters", where);
  state_reader read{counters, where + ", counters"};
  read("epoch", info.epoch);
  read("step", info.step);
  read("stopped", info.stopped);
  if (info.epoch < 0 || info.step < 0) throw checkpoint_error(where + ": the counters are corrupt (negative)");
  auto history = sub_archive(archive, "history", where);
  info.history = load_history(history, where + ", history");
  state_reader{archive, where}("hyperparameters", info.hyperparameters);
  return info;
}

}  // namespace kiln::detail

namespace kiln {

KILN_DECL checkpoint_info read_checkpoint_info(const std::filesystem::path& path) {
  const std::string where = "kiln: reading checkpoint '" + path.string() + "'";
  auto archive = detail::open_checkpoint(path, where);
  return detail::read_info(archive, where);
}

KILN_DECL checkpoint_info read_checkpoint_info(std::istream& stream) {
  const std::string where = "kiln: reading a checkpoint";
  auto archive = detail::open_checkpoint(detail::read_sealed<checkpoint_error>(stream, where), where);
  return detail::read_info(archive, where);
}

}  // namespace kiln

#endif  // KILN_FUNCTION_DEFINITIONS
