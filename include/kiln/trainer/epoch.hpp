// kiln/trainer/epoch.hpp — the epoch loop of a kiln::trainer: one training pass over the data
// (forward, loss, backward, and an optimizer step every accumulate<K> batches), the learning-rate
// schedule's advances, and the evaluation pass.
//
// This is the hot path, and the whole of it: no virtual dispatch, no std::function, no allocation
// of kiln's own and no host–device synchronisation per step. The running loss stays on the device
// and is read once per pass. The trainer (kiln/trainer/trainer.hpp) owns every member named here;
// epoch_loop is the set of its operations that run per batch, kept in one place so that the loop
// reads as one.
//
// A training batch meets, in order: the augment role's transforms (kiln/augment/augment.hpp;
// none by default); on_batch_begin; zero_grad at the start of a window; the
// precision role's forward (model and loss); the distributed role's before_backward (does this
// batch step?); the precision role's backward (the loss ÷ K); at the end of a window the
// optimizer step (the distributed role's reduce_gradients, the loss scaler's unscale,
// on_before_optimizer_step, step, a per-step scheduler advance); on_batch_end. A captured step
// (kiln::cuda_graph) replays all of that but the hooks at the batch's ends as one graph. A pass
// ends with the distributed role's reduce_sums (and reduce_metrics after an evaluation) before
// its values are computed: in one process these calls compile to nothing.
#pragma once

#include <kiln/callbacks/callbacks.hpp>
#include <kiln/core/batch.hpp>
#include <kiln/core/context.hpp>
#include <kiln/core/metric_values.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/detail/forward.hpp>
#include <kiln/metrics/metrics.hpp>
#include <kiln/schedule/scheduler.hpp>

#include <torch/types.h>
#include <torch/utils.h>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::detail {

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

/// The per-batch operations of kiln::trainer T (a friend of T's): train one epoch, step, advance
/// the schedule, evaluate.
struct epoch_loop {
  /// One pass over `train`: "train/loss" is its mean loss. A checkpoint's mid-epoch position
  /// (t.resume_batch_) skips the batches trained before it; ctx.interrupt() ends the pass at the
  /// next complete step and leaves the position in t.interrupted_batch_.
  template <class T, class Train>
  static void train(T& t, Train& train) {
    auto& ctx = t.ctx_;
    t.model_->train();
    for (const auto& child : ctx.frozen) child->eval();
    if constexpr (requires { std::size(train); }) {
      ctx.batches_per_epoch = static_cast<std::int64_t>(std::size(train));
    }
    const std::int64_t skip = std::exchange(t.resume_batch_, 0);  // a checkpoint's mid-epoch position
    ctx.batch = skip;  // > 0 tells the hooks that this epoch is resumed part way
    t.callbacks_.template run<hook::epoch_begin>(ctx);
    t.precision_.prepare(t.device_);
    if (skip == 0) {
      t.loss_sum_ = torch::zeros({}, torch::TensorOptions(t.device_).dtype(torch::kDouble));
      t.samples_ = 0;
    }
    std::size_t in_window = 0;
    ctx.batch = 0;
    for (const auto& batch : train) {
      if (ctx.batch < skip) {  // trained before the checkpoint
        ++ctx.batch;
        continue;
      }
      auto [input, target] = unpack(batch, t.device_);
      if constexpr (T::augment_type::active) t.augment_.apply(input, target);
      t.callbacks_.template run<hook::batch_begin>(ctx);
      torch::Tensor loss;
      if constexpr (T::captures_step) {
        loss = t.execution_.run(input, target, [&t](const torch::Tensor& x, const torch::Tensor& y) {
          return whole_step(t, x, y);
        });
      } else {
        if (in_window == 0) t.optimizer_.zero_grad();
        loss = t.precision_.forward([&] {
          const torch::Tensor output = forward_explained(t.model_, input, ctx.batch);
          return loss_explained(t.loss_, output, target, /*check_values=*/ctx.batch == skip);
        });
        t.distributed_.before_backward(/*steps=*/in_window + 1 == T::accumulation);
        if constexpr (T::accumulation == 1) {
          t.precision_.backward(loss);
        } else {
          t.precision_.backward(loss.div(static_cast<double>(T::accumulation)));
        }
      }
      {
        torch::NoGradGuard no_grad;  // in place, no graph, no allocation
        t.loss_sum_.add_(loss, input.size(0));
      }
      t.samples_ += input.size(0);
      if constexpr (T::wants_batch_loss) ctx.loss = loss;
      if constexpr (T::captures_step) {
        count_step(t);  // the graph took the optimizer step
      } else if (++in_window == T::accumulation) {
        optimizer_step(t);
        in_window = 0;
      }
      t.callbacks_.template run<hook::batch_end>(ctx);
      ++ctx.batch;
      if (ctx.stop_requested()) break;
      if (ctx.interrupted() && in_window == 0) {
        t.interrupted_batch_ = ctx.batch;
        return;
      }
    }
    if constexpr (T::accumulation > 1) {
      if (in_window > 0) {  // the epoch's last, partial window: mean over its real size
        torch::NoGradGuard no_grad;
        const double scale = static_cast<double>(T::accumulation) / static_cast<double>(in_window);
        for (auto& p : t.model_->parameters()) {
          if (p.grad().defined()) p.mutable_grad().mul_(scale);
        }
        optimizer_step(t);
      }
    }
    if (t.samples_ == 0) {
      throw std::invalid_argument("kiln::trainer::fit: the training data produced no batches");
    }
    t.distributed_.reduce_sums(t.loss_sum_, t.samples_);
    ctx.metrics.set("train/loss", t.loss_sum_.template item<double>() / static_cast<double>(t.samples_));
  }

  /// The end of an accumulation window: gradients are complete.
  template <class T>
  static void optimizer_step(T& t) {
    t.distributed_.reduce_gradients(*t.model_);
    if constexpr (T::precision_type::scales_loss) t.precision_.unscale(t.optimizer_);  // callbacks see true gradients
    t.callbacks_.template run<hook::before_optimizer_step>(t.ctx_);
    if constexpr (T::precision_type::scales_loss) {
      if (!t.precision_.step(t.optimizer_)) return;  // an inf/NaN gradient: not a step (mixed_precision.hpp)
    } else {
      t.optimizer_.step();
    }
    count_step(t);
  }

  template <class T>
  static void count_step(T& t) {
    ++t.ctx_.step;
    if (t.scheduler_.interval() == interval::step) advance_scheduler(t);
  }

  /// One whole step, as kiln::cuda_graph captures it: accumulate<1>, no loss scaling.
  template <class T>
  static torch::Tensor whole_step(T& t, const torch::Tensor& input, const torch::Tensor& target) {
    t.optimizer_.zero_grad();
    torch::Tensor loss = t.precision_.forward([&] { return t.loss_(t.model_->forward(input), target); });
    t.distributed_.before_backward(/*steps=*/true);
    t.precision_.backward(loss);
    if constexpr (T::wants_batch_loss) t.ctx_.loss = loss;
    t.distributed_.reduce_gradients(*t.model_);
    t.callbacks_.template run<hook::before_optimizer_step>(t.ctx_);
    t.optimizer_.step();
    return loss;
  }

  /// Before each fit: the monitored metric must be one this fit computes; the first fit starts
  /// the schedule (PyTorch's step at construction), telling it how many advances are planned.
  template <class T, class Train>
  [[gnu::cold]] static void prepare_scheduler(T& t, Train& train, bool validates, std::int64_t epochs) {
    using metrics_policy = typename T::metrics_policy;
    if constexpr (T::scheduler_type::monitors_metric) {
      const std::string_view name = t.scheduler_.policy().monitored();
      if (validates ? !computes_metric<metrics_policy>(name) : name != "train/loss") {
        std::string computed = "train/loss";  // the list is built only for the message
        if (validates) {
          computed += ", val/loss";
          for (const auto metric : metric_names<metrics_policy>::get()) {
            if (metrics_policy::has(metric)) computed += concat(", val/", metric);
          }
        }
        throw std::invalid_argument(concat(
            "kiln::reduce_on_plateau: monitors \"", name, "\", which this fit never computes; it computes ",
            computed, validates || !name.starts_with("val/") ? "" : " (fit(train) has no validation data)"));
      }
    }
    if (!t.scheduler_.started()) {
      std::int64_t planned = 0;
      if (t.scheduler_.interval() == interval::epoch) {
        planned = epochs;
      } else if constexpr (requires { std::size(train); }) {
        const auto batches = static_cast<std::int64_t>(std::size(train));
        const auto window = static_cast<std::int64_t>(T::accumulation);
        planned = epochs * ((batches + window - 1) / window);  // the last, partial window steps too
      }
      t.scheduler_.start(planned);
    }
    t.ctx_.learning_rates = t.scheduler_.learning_rates();
  }

  template <class T>
  static void advance_scheduler(T& t) {
    if constexpr (T::scheduler_type::monitors_metric) {
      t.scheduler_.advance(t.ctx_.metrics.at(t.scheduler_.policy().monitored()));
    } else {
      t.scheduler_.advance();
    }
    t.ctx_.learning_rates = t.scheduler_.learning_rates();  // same size: no allocation
  }

  /// Loss and metrics over `data` in eval mode, without gradients: "val/loss", "val/<metric>".
  template <class T, class Data>
  static void evaluate(T& t, Data& data, metric_values& out) {
    torch::NoGradGuard no_grad;
    t.model_->eval();
    auto loss_sum = torch::zeros({}, torch::TensorOptions(t.device_).dtype(torch::kDouble));
    std::int64_t samples = 0, batches = 0;
    t.metrics_.reset(t.device_);
    for (const auto& batch : data) {
      auto [input, target] = unpack(batch, t.device_);
      torch::Tensor output = forward_explained(t.model_, input, batches);
      loss_sum.add_(loss_explained(t.loss_, output, target, /*check_values=*/batches == 0), input.size(0));
      t.metrics_.update(output, target);
      samples += input.size(0);
      ++batches;
    }
    if (samples == 0) {
      throw std::invalid_argument("kiln::trainer: the validation data produced no batches");
    }
    t.distributed_.reduce_sums(loss_sum, samples);
    t.distributed_.reduce_metrics(t.metrics_);
    out.set("val/loss", loss_sum.template item<double>() / static_cast<double>(samples));
    t.metrics_.compute("val/", out);
  }
};

}  // namespace kiln::detail
