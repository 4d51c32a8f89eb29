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
//
// The trainer stands above the roles it composes (kiln/core/ is the ground they share), and this
// folder holds it in parts, each owning one thing:
//
//   trainer.hpp        the class: which policy plays each role (every composition rule is a
//                      static_assert here), the members, fit / validate / predict and the
//                      checkpoint calls, and the outline of a fit, epoch by epoch
//   network.hpp        assembling the network: backbone and its weights, head, freeze<N>,
//                      parameter groups and discriminative learning rates
//   epoch.hpp          the epoch loop: a training pass, the optimizer step with accumulation,
//                      the scheduler's advances, the evaluation pass
//   checkpointing.hpp  the checkpoint format, its writer and its reader
//   configuration.hpp  fit_options, and what the trainer takes from a kiln::config
//
// What comes next builds beside this folder, not inside it:
//
// - Driving trainers from outside (cross-validation, ensembles, searches): a trainer is built
//   whole by its constructor, so a function that returns a fresh one per fold gives each fold
//   the same initial weights (seed first), optimizer, schedule and callback states, and nothing
//   is shared between two trainers. Its public members are all a driver needs: fit (with
//   fit_options::resume_from to continue), validate, predict, save_checkpoint and
//   load_checkpoint, state() for the epoch, step and metrics, metric_list() for the pipeline's
//   metrics with their options, to(device).
// - Data-parallel training: the distributed role (kiln/distributed/distributed.hpp) is called at
//   each point where processes must agree, and a policy of that role needs no edit here:
//     where gradients are complete: epoch_loop::optimizer_step, after the backward pass of the
//       batch that ends an accumulation window and before anything reads the gradients
//       (distributed reduce_gradients, then the loss scaler's unscale, the callbacks'
//       on_before_optimizer_step, the step); before each backward pass, before_backward says
//       whether that batch steps;
//     where a pass's sums and metric states are final: the end of epoch_loop::train and of
//       epoch_loop::evaluate, before "train/loss", "val/loss" and the metrics are computed
//       (reduce_sums, reduce_metrics);
//     which process writes: ctx.rank and ctx.world_size, from the role when the trainer is
//       built; only rank 0 writes files (context::writes_files): ctx.save_checkpoint writes
//       there only, and callbacks marked rank_zero_only (the loggers, model_checkpoint,
//       progress_bar) run there only.
// - Augmentation: the augment role (kiln/augment/augment.hpp) transforms each training batch
//   in epoch_loop::train before on_batch_begin, with a generator seeded per rank that to(device)
//   moves and checkpoints carry; predict(data, tta) runs a test-time augmentation
//   (kiln/augment/tta.hpp) through the model, batch by batch.
#pragma once

#include <kiln/augment/augment.hpp>
#include <kiln/callbacks/callbacks.hpp>
#include <kiln/core/batch.hpp>
#include <kiln/core/context.hpp>
#include <kiln/core/metric_values.hpp>
#include <kiln/core/recipe.hpp>
#include <kiln/core/role.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/detail/forward.hpp>
#include <kiln/detail/linkage.hpp>
#include <kiln/data/distributed_sampler.hpp>
#include <kiln/distributed/distributed.hpp>
#include <kiln/execution/execution.hpp>
#include <kiln/loop/accumulate.hpp>
#include <kiln/loss/losses.hpp>
#include <kiln/metrics/metrics.hpp>
#include <kiln/model/backbone.hpp>
#include <kiln/model/freeze.hpp>
#include <kiln/model/head.hpp>
#include <kiln/optim/optimizers.hpp>
#include <kiln/precision/precision.hpp>
#include <kiln/schedule/schedulers.hpp>
#include <kiln/trainer/checkpointing.hpp>
#include <kiln/trainer/configuration.hpp>
#include <kiln/trainer/epoch.hpp>
#include <kiln/trainer/network.hpp>

#include <torch/nn/modules/linear.h>
#include <torch/types.h>
#include <torch/utils.h>

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

template <class>
inline constexpr bool dependent_true = true;

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
  static_assert(count<role::distributed> <= 1,
                "kiln::trainer: the pipeline names two distributed policies; keep one.");
  static_assert(count<role::augment> <= 1,
                "kiln::trainer: the pipeline names two augmentations; put all transforms in one kiln::augment{...}.");

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
  using distributed_policy = policy<role::distributed, single_process>;
  using augment_policy = policy<role::augment, no_augment>;

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
  static_assert(DistributedPolicy<distributed_policy>,
                "kiln::trainer: the distributed policy is not a kiln::DistributedPolicy (see "
                "kiln/distributed/distributed.hpp for the members its state_type needs).");
  static_assert(AugmentPolicy<augment_policy>,
                "kiln::trainer: the augment policy is not a kiln::AugmentPolicy (see kiln/augment/augment.hpp); "
                "use kiln::augment{transforms...}.");
  static_assert(!augment_policy::mixes_targets || requires { loss_policy::takes_class_probabilities; },
                "kiln::augment: kiln::mixup and kiln::cutmix turn the targets into class probabilities, which this "
                "pipeline's loss does not read; use kiln::cross_entropy (a loss of your own can declare "
                "`static constexpr bool takes_class_probabilities = true`).");
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
  using distributed_type = typename distributed_policy::state_type;
  using augment_type = typename augment_policy::state_type;

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

  static_assert(!captures_step || std::is_same_v<distributed_policy, single_process>,
                "kiln::cuda_graph: a data-parallel step averages gradients through collectives that a CUDA "
                "graph cannot capture; use kiln::eager (the default) with kiln::data_parallel.");

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
    detail::epoch_loop::evaluate(*this, data, out);
    return out;
  }

  /// Model outputs for every batch of `data`, concatenated along the batch dimension, on the CPU.
  template <InputRange Data>
  torch::Tensor predict(Data&& data) {
    return predict_batches(data, [this](const torch::Tensor& x, std::int64_t batch) {
      return detail::forward_explained(model_, x, batch);
    });
  }

  /// The outputs of a test-time augmentation (kiln/augment/tta.hpp, which the caller includes)
  /// for every batch of `data`: the plain pass and one per variant, merged by its rule.
  ///   auto p = t.predict(test, kiln::tta<kiln::mean_probabilities, kiln::hflip>{.beta = 0.25});
  template <InputRange Data, TestTimeAugmentation TTA>
  torch::Tensor predict(Data&& data, const TTA& tta) {
    static_assert(requires { loss_policy::output; },
                  "kiln::trainer::predict(data, tta): the pipeline's loss does not say what its outputs are "
                  "(kiln::output_kind), which the merge rule needs; kiln's losses declare it.");
    return predict_batches(data, [&](const torch::Tensor& x, std::int64_t batch) {
      return tta.template run<loss_policy::output>(
          [&](const torch::Tensor& images) { return detail::forward_explained(model_, images, batch); }, x);
    });
  }

  /// Moves the model (and any tensors the loss holds) to `device`; call before fit.
  void to(const torch::Device& device) {
    device_ = device;
    model_->to(device);
    if (device.is_cuda() && !device.has_index()) {  // "cuda" is the current device: name it, as tensors do
      if (const auto parameters = model_->parameters(); !parameters.empty()) device_ = parameters.front().device();
    }
    if constexpr (requires { loss_.to(device); }) loss_.to(device);
    augment_.to(device_, ctx_.rank);
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
  /// The distributed policy's state: this process's rank, the process group.
  [[nodiscard]] distributed_type& distributed() noexcept { return distributed_; }
  /// The augmentation's transforms and generator.
  [[nodiscard]] augment_type& augmentation() noexcept { return augment_; }
  /// The validation metrics, with their runtime options; a cross-validation or an ensemble
  /// copies them to score predictions made outside a fit.
  [[nodiscard]] const metrics_policy& metric_list() const noexcept { return metrics_; }
  [[nodiscard]] const context& state() const noexcept { return ctx_; }

  // [[gnu::cold]] marks what runs once per fit or per checkpoint: g++ then optimizes it for
  // size, which saves about a tenth of a pipeline's compile time (bench/README.md); the
  // training step is not marked.

  /// Writes everything needed to continue this run to `path`, atomically: a crash during the
  /// write leaves the previous file whole. See kiln/trainer/checkpointing.hpp for what it holds.
  [[gnu::cold]] void save_checkpoint(const std::filesystem::path& path) { detail::checkpointing::save(*this, path); }

  /// Restores everything a checkpoint holds: weights, optimizer, scheduler, callback states,
  /// counters, random-number generators, history. Throws kiln::checkpoint_error naming the
  /// file and the problem (missing, truncated, corrupt, another pipeline, other shapes); the
  /// trainer may then be partly restored and should not be trained further.
  /// To continue training, pass the path as fit_options::resume_from instead.
  [[gnu::cold]] void load_checkpoint(const std::filesystem::path& path) {
    const std::string where = "kiln::trainer::load_checkpoint('" + path.string() + "')";
    auto callback_states = detail::checkpointing::restore(*this, path, where);
    detail::checkpointing::load_callback_states(*this, callback_states, where);
  }

 private:
  friend struct detail::epoch_loop;
  friend struct detail::checkpointing;

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
        model_(detail::build_network<network_type>(backbone_, take<head_policy>(policies, configure))),
        optimizer_(param_groups(), optimizer_policy_.options()),
        scheduler_(take<scheduler_policy>(policies, configure),
                   detail::with_group_rates<optimizer_options>(optimizer_, group_rates())),
        precision_(validated(take<precision_policy>(policies, configure))),
        execution_(validated(take<execution_policy>(policies, configure))),
        distributed_(validated(take<distributed_policy>(policies, configure))),
        augment_(validated(take<augment_policy>(policies, configure))),
        ctx_{*model_, optimizer_} {
    ctx_.rank = distributed_.rank();
    ctx_.world_size = distributed_.world_size();
    augment_.to(device_, ctx_.rank);
    ctx_.learning_rates = scheduler_.learning_rates();
    ctx_.frozen = detail::freeze_children<frozen_children>(model_->backbone());
    if constexpr (has_checkpoint_hooks) enable_checkpoints();
  }

  // Compiles the checkpoint writer and reader into this pipeline and hands them to the context
  // and to fit().
  void enable_checkpoints() noexcept {
    ctx_.bind_saver(this, [](void* self, const std::filesystem::path& path) {
      static_cast<trainer*>(self)->save_checkpoint(path);
    });
    restore_ = &detail::checkpointing::restore<trainer>;
    load_callback_states_ = &detail::checkpointing::load_callback_states<trainer>;
  }

  // Each batch's inputs on the device, through `forward`, gathered on the CPU.
  template <class Data, class Forward>
  torch::Tensor predict_batches(Data& data, Forward&& forward) {
    torch::NoGradGuard no_grad;
    model_->eval();
    std::vector<torch::Tensor> outputs;
    for (const auto& batch : data) {
      outputs.push_back(forward(detail::inputs_of(batch, device_), std::ssize(outputs)).to(torch::kCPU));
    }
    if (outputs.empty()) throw std::invalid_argument("kiln::trainer::predict: the data has no batches");
    return torch::cat(outputs);
  }

  template <class P>
  static P validated(P p) {
    detail::validate_policy(p);
    return p;
  }

  std::vector<double> group_rates() const {
    return detail::group_rates<has_head>(optimizer_policy_.lr, backbone_.lr_ratio);
  }

  [[gnu::cold]] std::vector<torch::optim::OptimizerParamGroup> param_groups() {
    detail::validate_policy(loss_);
    detail::validate_policy(optimizer_policy_);
    return detail::param_groups(model_, optimizer_policy_.options(), group_rates());
  }

  // The options a fit runs with: the configuration's "fit.*" over the caller's, recorded.
  [[gnu::cold]] fit_options configured(fit_options options) {
    if (fit_configuration_.apply != nullptr) {
      ctx_.hyperparameters = fit_configuration_.apply(fit_configuration_.config.get(), options);
    }
    return options;
  }

  // The outline of a fit: the hooks in their order around the epoch loop's passes.
  template <class Train, class Val>
  history run_fit(Train& train, Val* val, const fit_options& options) {
    using loop = detail::epoch_loop;
    options.validate();
    const bool resuming = !options.resume_from.empty();
    if (resuming && restore_ == nullptr) detail::throw_cannot_resume(options.resume_from);
    history_.clear();
    ctx_.restore_stop(false);
    interrupted_batch_ = 0;
    torch::serialize::InputArchive callback_states;
    const std::string where =
        resuming ? "kiln::trainer::fit: resuming from '" + options.resume_from.string() + "'" : std::string{};
    if (resuming) callback_states = restore_(*this, options.resume_from, where);
    if (ctx_.world_size > 1) shard(train, val);  // before the schedule counts the batches
    loop::prepare_scheduler(*this, train, val != nullptr, options.epochs);
    ctx_.max_epochs = options.epochs;
    distributed_.begin_fit(*model_);  // every process starts from the same weights
    callbacks_.template run<hook::fit_begin>(ctx_);
    if (resuming) load_callback_states_(*this, callback_states, where);  // after fit_begin, which resets them
    for (auto epoch = static_cast<std::int64_t>(history_.size());
         epoch < options.epochs && !ctx_.stop_requested() && !ctx_.interrupted(); ++epoch) {
      ctx_.epoch = epoch;
      // Data that can replay a pass's order (kiln::data::tensor_batches) gets the pass number,
      // so that a resumed run sees the batches the uninterrupted one would have seen.
      if constexpr (requires { train.set_epoch(passes_); }) train.set_epoch(passes_);
      loop::train(*this, train);
      if (interrupted_batch_ > 0) {  // mid-epoch: no validation, the epoch is not done
        callbacks_.template run<hook::interrupt>(ctx_);
        break;
      }
      ++passes_;
      if (val != nullptr && !ctx_.stop_requested()) {
        loop::evaluate(*this, *val, ctx_.metrics);
        callbacks_.template run<hook::validation_end>(ctx_);
      }
      if (scheduler_.interval() == interval::epoch) loop::advance_scheduler(*this);
      callbacks_.template run<hook::epoch_end>(ctx_);
      history_.push_back(ctx_.metrics);
      callbacks_.template run<hook::checkpoint>(ctx_);
      after_files();
    }
    callbacks_.template run<hook::fit_end>(ctx_);
    after_files();
    return history_;
  }

  // Each process's share of data that can be sharded (kiln::data::tensor_batches), unless the
  // caller sharded it: training data padded so that every process has as many batches,
  // validation data not, so that no sample counts twice. Other data is each process's share.
  template <class Train, class Val>
  [[gnu::cold]] void shard(Train& train, Val* val) {
    if constexpr (requires { train.shard(ctx_.rank, ctx_.world_size, data::shard_tail::pad); }) {
      if (!train.sharded()) train.shard(ctx_.rank, ctx_.world_size, data::shard_tail::pad);
    }
    if constexpr (requires { val->shard(ctx_.rank, ctx_.world_size, data::shard_tail::uneven); }) {
      if (val != nullptr && !val->sharded()) val->shard(ctx_.rank, ctx_.world_size, data::shard_tail::uneven);
    }
  }

  // Where rank 0 may have written files that every process may read next (a checkpoint): the
  // processes wait for each other, if the distributed policy has a barrier.
  void after_files() {
    if constexpr (requires { distributed_.barrier(); }) distributed_.barrier();
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
  [[no_unique_address]] distributed_type distributed_;
  [[no_unique_address]] augment_type augment_;
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
  torch::serialize::InputArchive (*restore_)(trainer&, const std::filesystem::path&, const std::string&) = nullptr;
  void (*load_callback_states_)(trainer&, torch::serialize::InputArchive&, const std::string&) = nullptr;
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
