// kiln/trainer/trainer.hpp — a training pipeline composed from policies.
//
// The policies are written in any order; each role a list leaves out gets its default (see
// kiln/core/role.hpp). The trainer expands them into the loop a careful engineer would write
// with LibTorch — zero_grad, forward, loss, backward, step — with no virtual dispatch, no
// std::function and no host–device synchronisation of its own per step: the running loss and
// the metrics stay on the device and are read once per epoch.
//
//   kiln::trainer t{kiln::backbone<SmallCnn>{.weights = "pretrained.pt"}, kiln::freeze<2>{},
//                   kiln::head{torch::nn::Linear(128, 5)}, kiln::adamw{.lr = 3e-4},
//                   kiln::accumulate<4>{}, kiln::metrics<kiln::accuracy>{}};
//   auto history = t.fit(train_batches, val_batches, {.epochs = 3});
//   torch::Tensor logits = t.predict(test_batches);
//
// Built with a runtime configuration first (kiln::config, from kiln/config/config.hpp), the
// trainer takes each policy's options from it — see the constructor.
#pragma once

#include <kiln/callbacks/callbacks.hpp>
#include <kiln/core/batch.hpp>
#include <kiln/core/context.hpp>
#include <kiln/core/metric_values.hpp>
#include <kiln/core/recipe.hpp>
#include <kiln/core/role.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/detail/forward.hpp>
#include <kiln/detail/linkage.hpp>
#include <kiln/execution/execution.hpp>
#include <kiln/io/atomic_file.hpp>
#include <kiln/loop/accumulate.hpp>
#include <kiln/loss/losses.hpp>
#include <kiln/metrics/metrics.hpp>
#include <kiln/model/backbone.hpp>
#include <kiln/model/freeze.hpp>
#include <kiln/model/head.hpp>
#include <kiln/model/weights.hpp>
#include <kiln/optim/optimizers.hpp>
#include <kiln/precision/precision.hpp>
#include <kiln/schedule/schedulers.hpp>
#include <kiln/trainer/checkpointing.hpp>
#include <kiln/trainer/network.hpp>

#include <torch/nn/modules/linear.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace kiln {

/// Runtime settings of one call to fit.
struct fit_options {
  std::int64_t epochs = 1;  ///< the epoch the fit ends at; a resumed fit counts the epochs before it
  /// A checkpoint to continue from (see kiln/trainer/checkpointing.hpp): the fit restores everything
  /// in it and trains epochs [its epoch, epochs). Empty: a fresh fit. Only a pipeline compiled
  /// with checkpoints can resume (trainer::has_checkpoint_hooks); any other refuses.
  std::filesystem::path resume_from;

  /// The runtime options by name, for kiln::config ("fit.epochs", "fit.resume_from").
  template <class F>
  void each_option(F&& f) { f("epochs", epochs); f("resume_from", resume_from); }

  void validate() const { detail::check_option(epochs >= 1, "kiln::fit", "epochs", "at least 1", epochs); }
};

/// One metric_values per epoch, in order.
using history = std::vector<metric_values>;

namespace detail {

[[noreturn, gnu::cold]] KILN_DECL void throw_cannot_resume(const std::filesystem::path& checkpoint);

struct from_tuple {};

template <class M>
constexpr std::size_t depth_or_zero() {
  if constexpr (DeclaresDepth<M>) {
    return M::ContainedType::depth;
  } else {
    return 0;
  }
}

// Stands in for the backbone a pipeline lacks, so that the one error shown is the message
// asking for it.
using missing_backbone = backbone<torch::nn::Identity>;

template <class P>
void validate_policy(const P& p) {
  if constexpr (requires { p.validate(); }) p.validate();
}

// The names of the metrics in kiln::metrics<Ms...>, without prefix.
template <class Metrics>
struct metric_names;
template <class... Ms>
struct metric_names<metrics<Ms...>> {
  static std::vector<std::string_view> get() { return {Ms::name...}; }
};

/// True when a pipeline with these metrics computes `name` in a fit with validation data.
template <class Metrics>
constexpr bool computes_metric(std::string_view name) {
  return name == "train/loss" || name == "val/loss" ||
         (name.starts_with("val/") && Metrics::has(name.substr(4)));
}

template <class>
inline constexpr bool dependent_true = true;

/// What a trainer needs of a runtime configuration; kiln::config (kiln/config/config.hpp) is
/// one. Only the shape is asked for here, so that this header includes no JSON or CLI library.
template <class C>
concept ConfigSource = std::copy_constructible<C> && requires(C& c, const C& cc, fit_options& options) {
  c.apply(std::string_view{}, options);
  cc.check_all_used();
  { cc.effective_json() } -> std::convertible_to<std::string>;
};

// Applied to each policy as the trainer takes it: nothing, or the configuration's section of the
// policy's role ("optimizer", "callbacks", ...) when the configuration can apply to it.
struct no_configuration {
  template <class P>
  void operator()(P&) const noexcept {}
};
template <class C>
struct configure_with {
  C& config;
  template <class P>
  void operator()(P& policy) const {
    if constexpr (requires { config.apply(role_of_t<P>::name, policy); }) config.apply(role_of_t<P>::name, policy);
  }
};

// A copy of the configuration a trainer was built with, to apply "fit.*" to the options of each
// fit and record them; held behind void so that this header needs nothing of the config's type.
struct fit_configuration {
  std::shared_ptr<void> config;
  std::string (*apply)(void* config, fit_options& options) = nullptr;

  template <class C>
  static fit_configuration of(const C& c) {
    return {std::make_shared<C>(c), [](void* copy, fit_options& options) -> std::string {
              auto& config = *static_cast<C*>(copy);
              config.apply("fit", options);
              return config.effective_json();
            }};
  }
};

}  // namespace detail

template <class... Policies>
class trainer {
  using recipe_type = recipe<std::remove_cvref_t<Policies>...>;
  static_assert(recipe_type::all_known);

  template <class Role>
  static constexpr std::size_t count = recipe_type::template count<Role>;
  static_assert(count<role::backbone> >= 1,
                "kiln::trainer: the pipeline has no backbone; add kiln::backbone<YourModule>{}.");
  static_assert(count<role::backbone> <= 1,
                "kiln::trainer: the pipeline names two backbones; keep one kiln::backbone<...>.");
  static_assert(count<role::head> <= 1,
                "kiln::trainer: the pipeline names two heads; keep one kiln::head{...}.");
  static_assert(count<role::freeze> <= 1,
                "kiln::trainer: the pipeline names two freeze policies; keep one kiln::freeze<N>.");
  static_assert(count<role::loss> <= 1,
                "kiln::trainer: the pipeline names two losses; keep one, or combine them in one "
                "kiln::loss{[](auto& out, auto& y) { ... }}.");
  static_assert(count<role::optimizer> <= 1,
                "kiln::trainer: the pipeline names two optimizers; keep one.");
  static_assert(count<role::scheduler> <= 1,
                "kiln::trainer: the pipeline names two schedulers; keep one.");
  static_assert(count<role::accumulate> <= 1,
                "kiln::trainer: the pipeline names two accumulate<K>; keep one.");
  static_assert(count<role::metrics> <= 1,
                "kiln::trainer: the pipeline names two metrics lists; put all metrics in one "
                "kiln::metrics<...>.");
  static_assert(count<role::callbacks> <= 1,
                "kiln::trainer: the pipeline names two callbacks lists; put all callbacks in one "
                "kiln::callbacks{...}.");
  static_assert(count<role::precision> <= 1,
                "kiln::trainer: the pipeline names two precision policies; keep one.");
  static_assert(count<role::execution> <= 1,
                "kiln::trainer: the pipeline names two execution policies; keep one.");

  template <class Role, class Default>
  using policy = typename recipe_type::template policy<Role, Default>;

 public:
  using backbone_policy = policy<role::backbone, detail::missing_backbone>;
  using head_policy = policy<role::head, no_head>;
  using freeze_policy = policy<role::freeze, freeze<0>>;
  using loss_policy = policy<role::loss, cross_entropy>;
  using optimizer_policy = policy<role::optimizer, adam>;
  using scheduler_policy = policy<role::scheduler, constant_lr>;
  using accumulate_policy = policy<role::accumulate, accumulate<1>>;
  using metrics_policy = policy<role::metrics, metrics<>>;
  using callbacks_policy = policy<role::callbacks, callbacks<>>;
  using precision_policy = policy<role::precision, full_precision>;
  using execution_policy = policy<role::execution, eager>;

  static_assert(LossPolicy<loss_policy>,
                "kiln::trainer: the loss policy is not a kiln::LossPolicy; it must be callable "
                "as loss(output, target) with two torch::Tensor and return a torch::Tensor.");
  static_assert(OptimizerPolicy<optimizer_policy>,
                "kiln::trainer: the optimizer policy is not a kiln::OptimizerPolicy; it needs "
                "optimizer_type (a torch::optim optimizer), options_type, `double lr` and "
                "`options_type options() const`.");
  static_assert(SchedulerPolicy<scheduler_policy>,
                "kiln::trainer: the scheduler policy is not a kiln::SchedulerPolicy; it needs "
                "`kiln::interval interval` and either `double next_lr(std::int64_t t, double current, "
                "double initial) const` or a state_type with start and advance (see "
                "kiln/schedule/scheduler.hpp).");
  static_assert(PrecisionPolicy<precision_policy>,
                "kiln::trainer: the precision policy is not a kiln::PrecisionPolicy (see "
                "kiln/precision/precision.hpp); use kiln::mixed_precision<kiln::bf16 or kiln::fp16>.");
  static_assert(ExecutionPolicy<execution_policy>,
                "kiln::trainer: the execution policy is not a kiln::ExecutionPolicy (see "
                "kiln/execution/execution.hpp); use kiln::eager or kiln::cuda_graph.");
  // The metric a scheduler names in its type, e.g. kiln::reduce_on_plateau<"val/accuracy">.
  static constexpr std::string_view scheduler_monitor = detail::fixed_monitor_of<scheduler_policy>();
  static_assert(scheduler_monitor.empty() || detail::computes_metric<metrics_policy>(scheduler_monitor),
                "kiln::reduce_on_plateau<\"...\">: the pipeline never computes the metric the scheduler "
                "monitors (its name is in the scheduler's type, in the instantiation note); monitor "
                "\"val/loss\", \"train/loss\", or \"val/<name>\" of a metric listed in kiln::metrics<...>.");

  using backbone_module = typename backbone_policy::module_type;
  using head_module = typename head_policy::module_type;
  using network_type = detail::network<backbone_module, head_module>;
  using optimizer_type = typename optimizer_policy::optimizer_type;
  using optimizer_options = typename optimizer_policy::options_type;
  using scheduler_type = lr_scheduler<scheduler_policy, optimizer_options>;
  using precision_type = typename precision_policy::state_type;
  using execution_type = typename execution_policy::state_type;

  static constexpr std::size_t accumulation = accumulate_policy::batches;
  static constexpr std::size_t frozen_children = freeze_policy::children;
  static constexpr bool has_head = !std::is_void_v<head_module>;
  static constexpr bool captures_step = execution_type::captures;
  /// Whether fit() can resume from a checkpoint and callbacks can write one (ctx.save_checkpoint).
  /// Checkpoints are written from the on_checkpoint and on_interrupt hooks, so a pipeline with a
  /// callback that has one of them (kiln::model_checkpoint, kiln::checkpoint_on_signal) compiles
  /// the checkpoint writer and reader in; so does a trainer built from a kiln::config, whose
  /// "fit.resume_from" arrives at run time. Other pipelines leave them out, which took 1.5 s off
  /// the compile time of a program with two pipelines (bench/README.md); their save_checkpoint()
  /// and load_checkpoint() members still work, compiled where they are called.
  static constexpr bool has_checkpoint_hooks =
      callbacks_policy::template any<hook::checkpoint> || callbacks_policy::template any<hook::interrupt>;

  static_assert(detail::execution_allows<execution_policy, optimizer_type, scheduler_policy, accumulation,
                                         precision_type::scales_loss, callbacks_policy>());

  static_assert(!DeclaresDepth<backbone_module> ||
                    frozen_children <= detail::depth_or_zero<backbone_module>(),
                "kiln::freeze<N>: N is larger than the number of top-level children the backbone "
                "declares (its Impl's `depth`); freeze at most that many.");

  explicit trainer(Policies... policies)
      : trainer(detail::from_tuple{}, std::tie(policies...), detail::no_configuration{}) {}

  /// Builds the pipeline with each policy's options taken from `config` (a kiln::config): the
  /// keys "backbone.*", "loss.*", "optimizer.*", "scheduler.*" and "callbacks.<config_name>.*"
  /// override the values written here (or a left-out role's defaults), and "fit.epochs" and
  /// "fit.resume_from", when given, override those passed to fit(). Then a key that nothing has
  /// read is an error, so read the program's own keys with config.value(...) before building
  /// the trainer.
  ///
  /// The effective configuration is in state().hyperparameters, where the loggers and
  /// checkpoints find it: the policies' options from here on, and "fit.*" as each fit runs.
  ///
  ///   auto cfg = kiln::config::from_command_line(argc, argv);  // --set optimizer.lr=1e-3
  ///   kiln::trainer t{cfg, kiln::backbone<Net>{}, kiln::adamw{.lr = 3e-4}};
  ///   t.fit(train, val, {.epochs = 10});                        // --set fit.epochs=20: 20
  template <class Config>
    requires detail::ConfigSource<std::remove_reference_t<Config>>
  explicit trainer(Config&& config, Policies... policies)
      : trainer(detail::from_tuple{}, std::tie(policies...),
                detail::configure_with<std::remove_reference_t<Config>>{config}) {
    ctx_.hyperparameters = config.effective_json();
    fit_configuration_ = detail::fit_configuration::of(config);  // without "fit.*": each fit adds its own
    fit_options defaults;
    config.apply("fit", defaults);  // checked now, so that a bad fit.epochs fails before any training
    config.check_all_used();
    enable_checkpoints();  // "fit.resume_from" may name a checkpoint
  }

  trainer(const trainer&) = delete;  // the context refers to the model and optimizer inside
  trainer& operator=(const trainer&) = delete;

  /// Trains for `options.epochs` epochs, validating after each on `val`; returns every epoch's
  /// results (a resumed fit's include those of the epochs before the checkpoint).
  template <BatchRange Train, BatchRange Val>
  history fit(Train&& train, Val&& val, const fit_options& options = {}) {
    return run_fit(train, &val, configured(options));
  }

  /// Trains without validation.
  template <BatchRange Train>
  history fit(Train&& train, const fit_options& options = {}) {
    static_assert(detail::dependent_true<Train> && !scheduler_monitor.starts_with("val/"),
                  "kiln::trainer::fit(train): the scheduler monitors a \"val/...\" metric, which needs "
                  "validation data; call fit(train, val), or monitor \"train/loss\".");
    return run_fit(train, static_cast<std::remove_reference_t<Train>*>(nullptr), configured(options));
  }

  /// Loss and metrics on `data`, in eval mode and without gradients: "val/loss", "val/<metric>".
  template <BatchRange Data>
  metric_values validate(Data&& data) {
    metric_values out;
    evaluate(data, out);
    return out;
  }

  /// Model outputs for every batch of `data`, concatenated along the batch dimension, on the CPU.
  template <InputRange Data>
  torch::Tensor predict(Data&& data) {
    torch::NoGradGuard no_grad;
    model_->eval();
    std::vector<torch::Tensor> outputs;
    for (const auto& batch : data) {
      outputs.push_back(
          detail::forward_explained(model_, detail::inputs_of(batch, device_), std::ssize(outputs)).to(torch::kCPU));
    }
    if (outputs.empty()) throw std::invalid_argument("kiln::trainer::predict: the data has no batches");
    return torch::cat(outputs);
  }

  /// Moves the model (and any tensors the loss holds) to `device`; call before fit.
  void to(const torch::Device& device) {
    device_ = device;
    model_->to(device);
    if (device.is_cuda() && !device.has_index()) {  // "cuda" is the current device: name it, as tensors do
      if (const auto parameters = model_->parameters(); !parameters.empty()) device_ = parameters.front().device();
    }
    if constexpr (requires { loss_.to(device); }) loss_.to(device);
  }

  [[nodiscard]] const torch::Device& device() const noexcept { return device_; }
  [[nodiscard]] network_type& model() noexcept { return model_; }
  [[nodiscard]] backbone_module& backbone() noexcept { return model_->backbone(); }
  [[nodiscard]] optimizer_type& optimizer() noexcept { return optimizer_; }
  [[nodiscard]] callbacks_policy& callback_list() noexcept { return callbacks_; }
  /// The scheduler bound to the optimizer, with its state (state()/load_state(), save()/load()).
  [[nodiscard]] scheduler_type& scheduler() noexcept { return scheduler_; }
  /// The precision policy's state; with fp16, precision().scaler() has the loss scale's
  /// state()/load_state() for checkpoints.
  [[nodiscard]] precision_type& precision() noexcept { return precision_; }
  [[nodiscard]] execution_type& execution() noexcept { return execution_; }
  [[nodiscard]] const context& state() const noexcept { return ctx_; }

  // [[gnu::cold]] marks what runs once per fit or per checkpoint: g++ then optimizes it for
  // size, which saves about a tenth of a pipeline's compile time (bench/README.md); the
  // training step is not marked.

  /// Writes everything needed to continue this run to `path`, atomically: a crash during the
  /// write leaves the previous file whole. See kiln/trainer/checkpointing.hpp for what it holds.
  [[gnu::cold]] void save_checkpoint(const std::filesystem::path& path) {
    atomic_write(path, [&](const std::filesystem::path& tmp) {
      auto archive = detail::new_archive();
      write_checkpoint(archive);
      detail::save_archive(archive, tmp);
    });
  }

  /// Restores everything a checkpoint holds: weights, optimizer, scheduler, callback states,
  /// counters, random-number generators, history. Throws kiln::checkpoint_error naming the
  /// file and the problem (missing, truncated, corrupt, another pipeline, other shapes); the
  /// trainer may then be partly restored and should not be trained further.
  /// To continue training, pass the path as fit_options::resume_from instead.
  [[gnu::cold]] void load_checkpoint(const std::filesystem::path& path) {
    const std::string where = "kiln::trainer::load_checkpoint('" + path.string() + "')";
    auto callback_states = restore(path, where);
    load_callback_states(callback_states, where);
  }

 private:
  // The policy of a role, as given or defaulted, configured.
  template <class P, class Configure>
  static P take(const std::tuple<Policies&...>& policies, const Configure& configure) {
    if constexpr ((std::is_same_v<P, Policies> || ...)) {
      P& given = std::get<P&>(policies);
      configure(given);
      return std::move(given);
    } else {
      P made{};
      configure(made);
      return made;
    }
  }

  // References to the constructor's arguments: a tuple of values would ask whether each policy
  // is default-constructible, which LibTorch's module holders answer with a hard error.
  template <class Configure>
  trainer(detail::from_tuple, std::tuple<Policies&...> policies, const Configure& configure)
      : backbone_(take<backbone_policy>(policies, configure)),
        loss_(take<loss_policy>(policies, configure)),
        optimizer_policy_(take<optimizer_policy>(policies, configure)),
        metrics_(take<metrics_policy>(policies, configure)),
        callbacks_(take<callbacks_policy>(policies, configure)),
        model_(build_network(backbone_, take<head_policy>(policies, configure))),
        optimizer_(param_groups(), optimizer_policy_.options()),
        scheduler_(take<scheduler_policy>(policies, configure), with_group_rates(optimizer_)),
        precision_(validated(take<precision_policy>(policies, configure))),
        execution_(validated(take<execution_policy>(policies, configure))),
        ctx_{*model_, optimizer_} {
    ctx_.learning_rates = scheduler_.learning_rates();
    ctx_.frozen = freeze_children(model_->backbone());
    if constexpr (has_checkpoint_hooks) enable_checkpoints();
  }

  // Compiles the checkpoint writer and reader into this pipeline and hands them to the context
  // and to fit().
  void enable_checkpoints() noexcept {
    ctx_.bind_saver(this, [](void* self, const std::filesystem::path& path) {
      static_cast<trainer*>(self)->save_checkpoint(path);
    });
    restore_ = &trainer::restore;
    load_callback_states_ = &trainer::load_callback_states;
  }

  template <class P>
  static P validated(P p) {
    detail::validate_policy(p);
    return p;
  }

  [[gnu::cold]] static network_type build_network(backbone_policy& b, head_policy h) {
    detail::validate_policy(b);
    if (!b.weights.empty()) load_weights(b.module, b.weights);
    if constexpr (has_head) {
      return network_type(b.module, std::move(h.module));
    } else {
      return network_type(b.module, typename network_type::ContainedType::head_type{});
    }
  }

  [[gnu::cold]] static std::vector<std::shared_ptr<torch::nn::Module>> freeze_children(backbone_module& b) {
    auto children = b->children();
    if (frozen_children > children.size()) {
      throw std::invalid_argument(detail::concat(
          "kiln::freeze<", frozen_children, ">: the backbone has only ", children.size(),
          " top-level children; freeze at most ", children.size()));
    }
    children.resize(frozen_children);
    for (const auto& child : children) {
      for (auto& p : child->parameters()) {
        p.requires_grad_(false);
        p.mutable_grad().reset();  // a stale gradient would still feed weight decay and momentum
      }
    }
    return children;
  }

  // The learning rate of each parameter group: the backbone's, then the head's.
  std::vector<double> group_rates() const {
    if constexpr (has_head) return {optimizer_policy_.lr * backbone_.lr_ratio, optimizer_policy_.lr};
    return {optimizer_policy_.lr};
  }

  [[gnu::cold]] std::vector<torch::optim::OptimizerParamGroup> param_groups() {
    detail::validate_policy(loss_);
    detail::validate_policy(optimizer_policy_);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    const auto rates = group_rates();
    auto group = [&](std::vector<torch::Tensor> params, double lr) {
      auto options = std::make_unique<optimizer_options>(optimizer_policy_.options());
      options->lr(lr);
      groups.emplace_back(std::move(params), std::move(options));
    };
    group(model_->backbone()->parameters(), rates[0]);
    if constexpr (has_head) group(model_->head()->parameters(), rates[1]);
    return groups;
  }

  // LibTorch 2.x's optimizers give a group's option that equals its options class's default
  // (SGD's lr 1e-3, say) the optimizer's default instead, so a backbone rate that happens to be
  // exactly that would become the head's: the rates are set again once the groups are in place.
  [[gnu::cold]] optimizer_type& with_group_rates(optimizer_type& optimizer) const {
    const auto rates = group_rates();
    for (std::size_t i = 0; i < rates.size(); ++i) {
      static_cast<optimizer_options&>(optimizer.param_groups()[i].options()).lr(rates[i]);
    }
    return optimizer;
  }

  // The options a fit runs with: the configuration's "fit.*" over the caller's, recorded.
  [[gnu::cold]] fit_options configured(fit_options options) {
    if (fit_configuration_.apply != nullptr) {
      ctx_.hyperparameters = fit_configuration_.apply(fit_configuration_.config.get(), options);
    }
    return options;
  }

  template <class Train, class Val>
  history run_fit(Train& train, Val* val, const fit_options& options) {
    options.validate();
    const bool resuming = !options.resume_from.empty();
    if (resuming && restore_ == nullptr) detail::throw_cannot_resume(options.resume_from);
    history_.clear();
    ctx_.restore_stop(false);
    interrupted_batch_ = 0;
    torch::serialize::InputArchive callback_states;
    const std::string where =
        resuming ? "kiln::trainer::fit: resuming from '" + options.resume_from.string() + "'" : std::string{};
    if (resuming) callback_states = (this->*restore_)(options.resume_from, where);
    prepare_scheduler(train, val != nullptr, options);
    ctx_.max_epochs = options.epochs;
    callbacks_.template run<hook::fit_begin>(ctx_);
    if (resuming) (this->*load_callback_states_)(callback_states, where);  // after fit_begin, which resets them
    for (auto epoch = static_cast<std::int64_t>(history_.size());
         epoch < options.epochs && !ctx_.stop_requested() && !ctx_.interrupted(); ++epoch) {
      ctx_.epoch = epoch;
      // Data that can replay a pass's order (kiln::data::tensor_batches) gets the pass number,
      // so that a resumed run sees the batches the uninterrupted one would have seen.
      if constexpr (requires { train.set_epoch(passes_); }) train.set_epoch(passes_);
      train_epoch(train);
      if (interrupted_batch_ > 0) {  // mid-epoch: no validation, the epoch is not done
        callbacks_.template run<hook::interrupt>(ctx_);
        break;
      }
      ++passes_;
      if (val != nullptr && !ctx_.stop_requested()) {
        evaluate(*val, ctx_.metrics);
        callbacks_.template run<hook::validation_end>(ctx_);
      }
      if (scheduler_.interval() == interval::epoch) advance_scheduler();
      callbacks_.template run<hook::epoch_end>(ctx_);
      history_.push_back(ctx_.metrics);
      callbacks_.template run<hook::checkpoint>(ctx_);
    }
    callbacks_.template run<hook::fit_end>(ctx_);
    return history_;
  }

  // The policy type of each role that decides the numbers a fit produces. Metrics and callbacks
  // are left out: adding a logger to a resumed run is fine, and callback states match by type.
  [[gnu::cold]] void write_pipeline(torch::serialize::OutputArchive& archive) const {
    auto put = [&](const char* role, std::string_view type) { archive.write(role, std::string{type}); };
    put("backbone", detail::type_name<backbone_policy>());
    put("head", detail::type_name<head_policy>());
    put("freeze", detail::type_name<freeze_policy>());
    put("loss", detail::type_name<loss_policy>());
    put("optimizer", detail::type_name<optimizer_policy>());
    put("scheduler", detail::type_name<scheduler_policy>());
    put("accumulate", detail::type_name<accumulate_policy>());
  }

  [[gnu::cold]] void write_checkpoint(torch::serialize::OutputArchive& archive) {
    auto part = [&](const char* key, auto&& write) {
      auto sub = detail::new_archive();
      write(sub);
      archive.write(key, sub);
    };
    archive.write("kiln.format", detail::checkpoint_format);
    part("kiln.pipeline", [&](auto& a) { write_pipeline(a); });
    part("model", [&](auto& a) { model_->save(a); });
    part("optimizer", [&](auto& a) { optimizer_.save(a); });
    part("scheduler", [&](auto& a) { scheduler_.save(a); });
    if constexpr (precision_type::scales_loss) {
      part("precision", [&](auto& a) {
        auto scaler = precision_.scaler().state();
        detail::state_writer w{a};
        scaler.each(w);
      });
    }
    part("callbacks", [&](auto& a) {
      each_persistent_callback([&](const std::string& key, auto& state) {
        auto one = detail::new_archive();
        detail::state_writer w{one};
        state.each(w);
        a.write(key, one);
      });
    });
    part("counters", [&](auto& a) {
      detail::state_writer w{a};
      w("epoch", static_cast<std::int64_t>(history_.size()));
      w("batch", interrupted_batch_);  // batches done of an epoch interrupted part way; else 0
      w("loss_sum", loss_sum_.defined() ? loss_sum_.detach().cpu() : torch::zeros({}, torch::kDouble));
      w("samples", samples_);
      w("step", ctx_.step);
      w("passes", passes_);
      w("frozen", static_cast<std::int64_t>(ctx_.frozen.size()));
      w("stopped", ctx_.stop_requested());
    });
    part("rng", [&](auto& a) { detail::save_generators(a); });
    part("history", [&](auto& a) { detail::save_history(a, history_); });
    archive.write("hyperparameters", ctx_.hyperparameters);
  }

  // Calls f("<type>#<k>", state) for each callback with a persistent state; k counts the
  // callbacks of that type before it, so that two loggers keep their own states.
  template <class F>
  void each_persistent_callback(F&& f) {
    std::vector<std::string_view> seen;
    callbacks_.each([&](auto& callback) {
      using C = std::remove_cvref_t<decltype(callback)>;
      if constexpr (detail::HasPersistentState<C>) {
        constexpr std::string_view type = detail::type_name<C>();
        std::size_t k = 0;
        for (const auto t : seen) k += t == type;
        seen.push_back(type);
        f(detail::concat(type, '#', k), callback.state);
      }
    });
  }

  // Restores all but the callbacks' states, which it returns for after on_fit_begin.
  [[gnu::cold]] torch::serialize::InputArchive restore(const std::filesystem::path& path, const std::string& where) {
    auto archive = detail::open_checkpoint(path, where);
    check_pipeline(archive, where);
    const checkpoint_info info = detail::read_info(archive, where);
    auto model = detail::sub_archive(archive, "model", where);
    auto optimizer = detail::sub_archive(archive, "optimizer", where);
    auto scheduler = detail::sub_archive(archive, "scheduler", where);
    auto counters = detail::sub_archive(archive, "counters", where);
    auto rng = detail::sub_archive(archive, "rng", where);
    std::int64_t passes = 0, frozen = 0, batch = 0, samples = 0;
    torch::Tensor loss_sum;
    detail::state_reader read{counters, where + ", counters"};
    read("passes", passes);
    read("frozen", frozen);
    read("batch", batch);
    read("loss_sum", loss_sum);
    read("samples", samples);
    if (batch < 0 || samples < 0 || loss_sum.numel() != 1) {
      throw checkpoint_error(where + ": the counters are corrupt");
    }
    const auto pipeline_frozen = static_cast<std::int64_t>(frozen_children);
    if (frozen != 0 && frozen != pipeline_frozen) {
      throw checkpoint_error(detail::concat(where, ": the checkpoint has ", frozen,
                                            " frozen backbone children, this pipeline freezes ", pipeline_frozen));
    }
    try {
      detail::load_module(*model_, model, where, "");
    } catch (const c10::Error& e) {
      throw checkpoint_error(detail::concat(where, ": the weights do not load (", detail::first_line(e.what()), ")"));
    } catch (const std::runtime_error& e) {
      throw checkpoint_error(e.what());
    }
    try {
      optimizer_.load(optimizer);
    } catch (const c10::Error& e) {
      throw checkpoint_error(detail::concat(where, ": the optimizer state does not fit this optimizer (",
                                            detail::first_line(e.what()), ")"));
    }
    try {
      scheduler_.load(scheduler);
    } catch (const std::exception& e) {
      throw checkpoint_error(detail::concat(where, ": the scheduler state does not fit this scheduler (",
                                            detail::first_line(e.what()), ")"));
    }
    if (frozen == 0) {
      ctx_.unfreeze();
    } else if (ctx_.frozen.empty()) {
      ctx_.frozen = freeze_children(model_->backbone());
    }
    if constexpr (precision_type::scales_loss) {  // a checkpoint of a run without loss scaling has none
      torch::serialize::InputArchive precision;
      if (archive.try_read("precision", precision)) {
        auto scaler = precision_.scaler().state();
        detail::state_reader r{precision, where + ", loss scaler"};
        scaler.each(r);
        precision_.scaler().load_state(scaler);
      }
    }
    detail::load_generators(rng, where);
    history_ = info.history;
    ctx_.metrics = history_.empty() ? metric_values{} : history_.back();
    ctx_.step = info.step;
    ctx_.learning_rates = scheduler_.learning_rates();
    ctx_.restore_stop(info.stopped);
    passes_ = passes;
    resume_batch_ = batch;
    loss_sum_ = loss_sum.to(torch::TensorOptions(device_).dtype(torch::kDouble)).reshape({});
    samples_ = samples;
    return detail::sub_archive(archive, "callbacks", where);
  }

  [[gnu::cold]] void check_pipeline(torch::serialize::InputArchive& archive, const std::string& where) const {
    auto saved = detail::sub_archive(archive, "kiln.pipeline", where);
    auto check = [&](const char* role, std::string_view ours) {
      std::string theirs;
      detail::state_reader{saved, where + ", pipeline"}(role, theirs);
      if (theirs != ours) {
        throw checkpoint_error(detail::concat(where, ": the checkpoint was written by another pipeline: its ", role,
                                              " is ", theirs, ", this trainer's is ", ours));
      }
    };
    check("backbone", detail::type_name<backbone_policy>());
    check("head", detail::type_name<head_policy>());
    check("freeze", detail::type_name<freeze_policy>());
    check("loss", detail::type_name<loss_policy>());
    check("optimizer", detail::type_name<optimizer_policy>());
    check("scheduler", detail::type_name<scheduler_policy>());
    check("accumulate", detail::type_name<accumulate_policy>());
  }

  // A callback whose state the checkpoint lacks (one added since) keeps its fresh state.
  [[gnu::cold]] void load_callback_states(torch::serialize::InputArchive& archive, const std::string& where) {
    each_persistent_callback([&](const std::string& key, auto& state) {
      torch::serialize::InputArchive one;
      if (!archive.try_read(key, one)) return;
      state = std::remove_cvref_t<decltype(state)>{};
      detail::state_reader r{one, where + ", callback " + key};
      state.each(r);
    });
  }

  template <class Train>
  void train_epoch(Train& train) {
    model_->train();
    for (const auto& child : ctx_.frozen) child->eval();
    if constexpr (requires { std::size(train); }) {
      ctx_.batches_per_epoch = static_cast<std::int64_t>(std::size(train));
    }
    const std::int64_t skip = std::exchange(resume_batch_, 0);  // a checkpoint's mid-epoch position
    ctx_.batch = skip;  // > 0 tells the hooks that this epoch is resumed part way
    callbacks_.template run<hook::epoch_begin>(ctx_);
    precision_.prepare(device_);
    if (skip == 0) {
      loss_sum_ = torch::zeros({}, torch::TensorOptions(device_).dtype(torch::kDouble));
      samples_ = 0;
    }
    std::size_t in_window = 0;
    ctx_.batch = 0;
    for (const auto& batch : train) {
      if (ctx_.batch < skip) {  // trained before the checkpoint
        ++ctx_.batch;
        continue;
      }
      auto [input, target] = detail::unpack(batch, device_);
      callbacks_.template run<hook::batch_begin>(ctx_);
      torch::Tensor loss;
      if constexpr (captures_step) {
        loss = execution_.run(input, target, [this](const torch::Tensor& x, const torch::Tensor& y) {
          return whole_step(x, y);
        });
      } else {
        if (in_window == 0) optimizer_.zero_grad();
        loss = precision_.forward([&] {
          const torch::Tensor output = detail::forward_explained(model_, input, ctx_.batch);
          return detail::loss_explained(loss_, output, target, /*check_values=*/ctx_.batch == skip);
        });
        if constexpr (accumulation == 1) {
          precision_.backward(loss);
        } else {
          precision_.backward(loss.div(static_cast<double>(accumulation)));
        }
      }
      {
        torch::NoGradGuard no_grad;  // in place, no graph, no allocation
        loss_sum_.add_(loss, input.size(0));
      }
      samples_ += input.size(0);
      if constexpr (wants_batch_loss) ctx_.loss = loss;
      if constexpr (captures_step) {
        count_step();  // the graph took the optimizer step
      } else if (++in_window == accumulation) {
        optimizer_step();
        in_window = 0;
      }
      callbacks_.template run<hook::batch_end>(ctx_);
      ++ctx_.batch;
      if (ctx_.stop_requested()) break;
      if (ctx_.interrupted() && in_window == 0) {
        interrupted_batch_ = ctx_.batch;
        return;
      }
    }
    if constexpr (accumulation > 1) {
      if (in_window > 0) {  // the epoch's last, partial window: mean over its real size
        torch::NoGradGuard no_grad;
        const double scale = static_cast<double>(accumulation) / static_cast<double>(in_window);
        for (auto& p : model_->parameters()) {
          if (p.grad().defined()) p.mutable_grad().mul_(scale);
        }
        optimizer_step();
      }
    }
    if (samples_ == 0) {
      throw std::invalid_argument("kiln::trainer::fit: the training data produced no batches");
    }
    ctx_.metrics.set("train/loss", loss_sum_.item<double>() / static_cast<double>(samples_));
  }

  void optimizer_step() {
    if constexpr (precision_type::scales_loss) precision_.unscale(optimizer_);  // callbacks see true gradients
    callbacks_.template run<hook::before_optimizer_step>(ctx_);
    if constexpr (precision_type::scales_loss) {
      if (!precision_.step(optimizer_)) return;  // an inf/NaN gradient: not a step (mixed_precision.hpp)
    } else {
      optimizer_.step();
    }
    count_step();
  }

  void count_step() {
    ++ctx_.step;
    if (scheduler_.interval() == interval::step) advance_scheduler();
  }

  // One whole step, as kiln::cuda_graph captures it: accumulate<1>, no loss scaling.
  torch::Tensor whole_step(const torch::Tensor& input, const torch::Tensor& target) {
    optimizer_.zero_grad();
    torch::Tensor loss = precision_.forward([&] { return loss_(model_->forward(input), target); });
    precision_.backward(loss);
    if constexpr (wants_batch_loss) ctx_.loss = loss;
    callbacks_.template run<hook::before_optimizer_step>(ctx_);
    optimizer_.step();
    return loss;
  }

  // Before each fit: the monitored metric must be one this fit computes; the first fit starts
  // the schedule (PyTorch's step at construction), telling it how many advances are planned.
  template <class Train>
  [[gnu::cold]] void prepare_scheduler(Train& train, bool validates, const fit_options& options) {
    if constexpr (scheduler_type::monitors_metric) {
      const std::string_view name = scheduler_.policy().monitored();
      if (validates ? !detail::computes_metric<metrics_policy>(name) : name != "train/loss") {
        std::string computed = "train/loss";  // the list is built only for the message
        if (validates) {
          computed += ", val/loss";
          for (const auto metric : detail::metric_names<metrics_policy>::get()) {
            if (metrics_policy::has(metric)) computed += detail::concat(", val/", metric);
          }
        }
        throw std::invalid_argument(detail::concat(
            "kiln::reduce_on_plateau: monitors \"", name, "\", which this fit never computes; it computes ",
            computed, validates || !name.starts_with("val/") ? "" : " (fit(train) has no validation data)"));
      }
    }
    if (!scheduler_.started()) {
      std::int64_t planned = 0;
      if (scheduler_.interval() == interval::epoch) {
        planned = options.epochs;
      } else if constexpr (requires { std::size(train); }) {
        const auto batches = static_cast<std::int64_t>(std::size(train));
        const auto window = static_cast<std::int64_t>(accumulation);
        planned = options.epochs * ((batches + window - 1) / window);  // the last, partial window steps too
      }
      scheduler_.start(planned);
    }
    ctx_.learning_rates = scheduler_.learning_rates();
  }

  void advance_scheduler() {
    if constexpr (scheduler_type::monitors_metric) {
      scheduler_.advance(ctx_.metrics.at(scheduler_.policy().monitored()));
    } else {
      scheduler_.advance();
    }
    ctx_.learning_rates = scheduler_.learning_rates();  // same size: no allocation
  }

  template <class Data>
  void evaluate(Data& data, metric_values& out) {
    torch::NoGradGuard no_grad;
    model_->eval();
    auto loss_sum = torch::zeros({}, torch::TensorOptions(device_).dtype(torch::kDouble));
    std::int64_t samples = 0, batches = 0;
    metrics_.reset(device_);
    for (const auto& batch : data) {
      auto [input, target] = detail::unpack(batch, device_);
      torch::Tensor output = detail::forward_explained(model_, input, batches);
      loss_sum.add_(detail::loss_explained(loss_, output, target, /*check_values=*/batches == 0), input.size(0));
      metrics_.update(output, target);
      samples += input.size(0);
      ++batches;
    }
    if (samples == 0) {
      throw std::invalid_argument("kiln::trainer: the validation data produced no batches");
    }
    out.set("val/loss", loss_sum.item<double>() / static_cast<double>(samples));
    metrics_.compute("val/", out);
  }

  static constexpr bool wants_batch_loss =
      callbacks_policy::template any<hook::batch_end> ||
      callbacks_policy::template any<hook::before_optimizer_step>;

  backbone_policy backbone_;
  loss_policy loss_;
  optimizer_policy optimizer_policy_;
  metrics_policy metrics_;
  callbacks_policy callbacks_;
  network_type model_;
  optimizer_type optimizer_;
  scheduler_type scheduler_;
  [[no_unique_address]] precision_type precision_;
  [[no_unique_address]] execution_type execution_;
  context ctx_;
  torch::Tensor loss_sum_;
  torch::Device device_{torch::kCPU};
  std::int64_t samples_ = 0;   // samples in loss_sum_, the running training loss of the epoch
  history history_;            // the current fit's epochs, for checkpoints
  std::int64_t passes_ = 0;    // training passes over all fits: each pass's data order
  std::int64_t interrupted_batch_ = 0;  // where ctx.interrupt() ended the epoch; 0: at its end
  std::int64_t resume_batch_ = 0;       // batches of the next epoch a checkpoint has done
  detail::fit_configuration fit_configuration_;
  // Set by enable_checkpoints(); null in a pipeline that left checkpoints out.
  torch::serialize::InputArchive (trainer::*restore_)(const std::filesystem::path&, const std::string&) = nullptr;
  void (trainer::*load_callback_states_)(torch::serialize::InputArchive&, const std::string&) = nullptr;
};

template <class... Policies>
trainer(Policies...) -> trainer<Policies...>;
template <class Config, class... Policies>
  requires detail::ConfigSource<std::remove_reference_t<Config>>
trainer(Config&&, Policies...) -> trainer<Policies...>;

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL void throw_cannot_resume(const std::filesystem::path& checkpoint) {
  throw std::invalid_argument(
      "kiln::trainer::fit: cannot resume from '" + checkpoint.string() +
      "': this pipeline was compiled without checkpoints, since none of its callbacks has an "
      "on_checkpoint or on_interrupt hook (where checkpoints are written). Add the callback that "
      "writes them (kiln::model_checkpoint, kiln::checkpoint_on_signal), or build the trainer from "
      "a kiln::config.");
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
