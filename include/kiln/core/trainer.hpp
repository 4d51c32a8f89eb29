// kiln/core/trainer.hpp — a training pipeline composed from policies.
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
#pragma once

#include <kiln/callbacks/callbacks.hpp>
#include <kiln/core/batch.hpp>
#include <kiln/core/context.hpp>
#include <kiln/core/metric_values.hpp>
#include <kiln/core/recipe.hpp>
#include <kiln/core/role.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/detail/network.hpp>
#include <kiln/execution/execution.hpp>
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

#include <torch/nn/modules/linear.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cstddef>
#include <cstdint>
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
  std::int64_t epochs = 1;

  void validate() const { detail::check_option(epochs >= 1, "kiln::fit", "epochs", "at least 1", epochs); }
};

/// One metric_values per epoch, in order.
using history = std::vector<metric_values>;

namespace detail {

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

  static_assert(detail::execution_allows<execution_policy, optimizer_type, scheduler_policy, accumulation,
                                         precision_type::scales_loss, callbacks_policy>());

  static_assert(!DeclaresDepth<backbone_module> ||
                    frozen_children <= detail::depth_or_zero<backbone_module>(),
                "kiln::freeze<N>: N is larger than the number of top-level children the backbone "
                "declares (its Impl's `depth`); freeze at most that many.");

  explicit trainer(Policies... policies)
      : trainer(detail::from_tuple{}, std::tie(policies...)) {}

  trainer(const trainer&) = delete;  // the context refers to the model and optimizer inside
  trainer& operator=(const trainer&) = delete;

  /// Trains for `options.epochs` epochs, validating after each on `val`.
  template <BatchRange Train, BatchRange Val>
  history fit(Train&& train, Val&& val, const fit_options& options = {}) {
    return run_fit(train, &val, options);
  }

  /// Trains without validation.
  template <BatchRange Train>
  history fit(Train&& train, const fit_options& options = {}) {
    static_assert(detail::dependent_true<Train> && !scheduler_monitor.starts_with("val/"),
                  "kiln::trainer::fit(train): the scheduler monitors a \"val/...\" metric, which needs "
                  "validation data; call fit(train, val), or monitor \"train/loss\".");
    return run_fit(train, static_cast<std::remove_reference_t<Train>*>(nullptr), options);
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
      outputs.push_back(model_->forward(detail::inputs_of(batch, device_)).to(torch::kCPU));
    }
    if (outputs.empty()) throw std::invalid_argument("kiln::trainer::predict: the data has no batches");
    return torch::cat(outputs);
  }

  /// Moves the model (and any tensors the loss holds) to `device`; call before fit.
  void to(const torch::Device& device) {
    device_ = device;
    model_->to(device);
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

 private:
  template <class P>
  static P take(const std::tuple<Policies&...>& policies) {
    if constexpr ((std::is_same_v<P, Policies> || ...)) {
      return std::move(std::get<P&>(policies));
    } else {
      return P{};
    }
  }

  // References to the constructor's arguments: a tuple of values would ask whether each policy
  // is default-constructible, which LibTorch's module holders answer with a hard error.
  trainer(detail::from_tuple, std::tuple<Policies&...> policies)
      : backbone_(take<backbone_policy>(policies)),
        loss_(take<loss_policy>(policies)),
        optimizer_policy_(take<optimizer_policy>(policies)),
        metrics_(take<metrics_policy>(policies)),
        callbacks_(take<callbacks_policy>(policies)),
        model_(build_network(backbone_, take<head_policy>(policies))),
        frozen_(freeze_children(model_->backbone())),
        optimizer_(param_groups(), optimizer_policy_.options()),
        scheduler_(take<scheduler_policy>(policies), optimizer_),
        precision_(validated(take<precision_policy>(policies))),
        execution_(validated(take<execution_policy>(policies))),
        ctx_{*model_, optimizer_} {
    ctx_.learning_rates = scheduler_.learning_rates();
  }

  template <class P>
  static P validated(P p) {
    detail::validate_policy(p);
    return p;
  }

  static network_type build_network(backbone_policy& b, head_policy h) {
    detail::validate_policy(b);
    if (!b.weights.empty()) load_weights(b.module, b.weights);
    if constexpr (has_head) {
      return network_type(b.module, std::move(h.module));
    } else {
      return network_type(b.module, typename network_type::ContainedType::head_type{});
    }
  }

  static std::vector<std::shared_ptr<torch::nn::Module>> freeze_children(backbone_module& b) {
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

  std::vector<torch::optim::OptimizerParamGroup> param_groups() {
    detail::validate_policy(loss_);
    detail::validate_policy(optimizer_policy_);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    auto group = [&](std::vector<torch::Tensor> params, double lr) {
      auto options = std::make_unique<optimizer_options>(optimizer_policy_.options());
      options->lr(lr);
      groups.emplace_back(std::move(params), std::move(options));
    };
    if constexpr (has_head) {
      group(model_->backbone()->parameters(), optimizer_policy_.lr * backbone_.lr_ratio);
      group(model_->head()->parameters(), optimizer_policy_.lr);
    } else {
      group(model_->backbone()->parameters(), optimizer_policy_.lr);
    }
    return groups;
  }

  template <class Train, class Val>
  history run_fit(Train& train, Val* val, const fit_options& options) {
    options.validate();
    prepare_scheduler(train, val != nullptr, options);
    history epochs;
    ctx_.max_epochs = options.epochs;
    callbacks_.template run<hook::fit_begin>(ctx_);
    for (std::int64_t epoch = 0; epoch < options.epochs && !ctx_.stop_requested(); ++epoch) {
      ctx_.epoch = epoch;
      train_epoch(train);
      if (val != nullptr && !ctx_.stop_requested()) {
        evaluate(*val, ctx_.metrics);
        callbacks_.template run<hook::validation_end>(ctx_);
      }
      if (scheduler_.interval() == interval::epoch) advance_scheduler();
      callbacks_.template run<hook::epoch_end>(ctx_);
      epochs.push_back(ctx_.metrics);
    }
    callbacks_.template run<hook::fit_end>(ctx_);
    return epochs;
  }

  template <class Train>
  void train_epoch(Train& train) {
    model_->train();
    for (const auto& child : frozen_) child->eval();
    if constexpr (requires { std::size(train); }) {
      ctx_.batches_per_epoch = static_cast<std::int64_t>(std::size(train));
    }
    callbacks_.template run<hook::epoch_begin>(ctx_);
    precision_.prepare(device_);
    loss_sum_ = torch::zeros({}, torch::TensorOptions(device_).dtype(torch::kDouble));
    std::int64_t samples = 0;
    std::size_t in_window = 0;
    ctx_.batch = 0;
    for (const auto& batch : train) {
      auto [input, target] = detail::unpack(batch, device_);
      callbacks_.template run<hook::batch_begin>(ctx_);
      if constexpr (captures_step) {
        torch::Tensor loss = execution_.run(input, target, [this](const torch::Tensor& x, const torch::Tensor& y) {
          return whole_step(x, y);
        });
        {
          torch::NoGradGuard no_grad;
          loss_sum_.add_(loss, input.size(0));
        }
        samples += input.size(0);
        if constexpr (wants_batch_loss) ctx_.loss = loss;
        count_step();
        callbacks_.template run<hook::batch_end>(ctx_);
        ++ctx_.batch;
        if (ctx_.stop_requested()) break;
        continue;
      }
      if (in_window == 0) optimizer_.zero_grad();
      torch::Tensor loss = precision_.forward([&] { return loss_(model_->forward(input), target); });
      if constexpr (accumulation == 1) {
        precision_.backward(loss);
      } else {
        precision_.backward(loss.div(static_cast<double>(accumulation)));
      }
      {
        torch::NoGradGuard no_grad;  // in place, no graph, no allocation
        loss_sum_.add_(loss, input.size(0));
      }
      samples += input.size(0);
      if constexpr (wants_batch_loss) ctx_.loss = loss;
      if (++in_window == accumulation) {
        optimizer_step();
        in_window = 0;
      }
      callbacks_.template run<hook::batch_end>(ctx_);
      ++ctx_.batch;
      if (ctx_.stop_requested()) break;
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
    if (samples == 0) {
      throw std::invalid_argument("kiln::trainer::fit: the training data produced no batches");
    }
    ctx_.metrics.set("train/loss", loss_sum_.item<double>() / static_cast<double>(samples));
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
  void prepare_scheduler(Train& train, bool validates, const fit_options& options) {
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
    std::int64_t samples = 0;
    metrics_.reset(device_);
    for (const auto& batch : data) {
      auto [input, target] = detail::unpack(batch, device_);
      torch::Tensor output = model_->forward(input);
      loss_sum.add_(loss_(output, target), input.size(0));
      metrics_.update(output, target);
      samples += input.size(0);
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
  std::vector<std::shared_ptr<torch::nn::Module>> frozen_;
  optimizer_type optimizer_;
  scheduler_type scheduler_;
  [[no_unique_address]] precision_type precision_;
  [[no_unique_address]] execution_type execution_;
  context ctx_;
  torch::Tensor loss_sum_;
  torch::Device device_{torch::kCPU};
};

template <class... Policies>
trainer(Policies...) -> trainer<Policies...>;

}  // namespace kiln
