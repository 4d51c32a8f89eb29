// kiln/optim/optimizers.hpp — optimizer policies, each a thin, checked front for torch::optim.
//
//   kiln::sgd      SGD with momentum, dampening, Nesterov, weight decay (L2 added to the gradient)
//   kiln::adam     Adam; weight decay as L2 in the gradient, as torch.optim.Adam
//   kiln::adamw    AdamW; decoupled weight decay (the usual choice for fine-tuning)
//   kiln::rmsprop  RMSprop, optionally centered, with momentum
//   kiln::adagrad  Adagrad
//
// Defaults are PyTorch's, except that lr has a default too (PyTorch's SGD has none). The
// update itself is torch::optim's, so kiln's numbers are LibTorch's numbers. Each names its
// runtime options in `each_option`, so that kiln::config can set them ("optimizer.lr").
//
//   kiln::adamw{.lr = 3e-4, .weight_decay = 1e-2}
#pragma once

#include <kiln/core/role.hpp>
#include <kiln/detail/check.hpp>

#include <torch/optim/adagrad.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/rmsprop.h>
#include <torch/optim/sgd.h>

#include <concepts>
#include <tuple>

namespace kiln {

/// An optimizer policy names the torch::optim type it builds and gives its options.
///   using optimizer_type = torch::optim::X;  using options_type = torch::optim::XOptions;
///   double lr;  options_type options() const;  (optional) void validate() const;
template <class P>
concept OptimizerPolicy = requires(const P& p) {
  typename P::optimizer_type;
  typename P::options_type;
  { p.lr } -> std::convertible_to<double>;
  { p.options() } -> std::convertible_to<typename P::options_type>;
} && std::derived_from<typename P::optimizer_type, torch::optim::Optimizer>;

/// Stochastic gradient descent, as torch.optim.SGD.
///   kiln::sgd{.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4, .nesterov = true}
struct sgd {
  using kiln_role = role::optimizer;
  using optimizer_type = torch::optim::SGD;
  using options_type = torch::optim::SGDOptions;

  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;

  /// The runtime options by name, for kiln::config (kiln/config/config.hpp).
  template <class F>
  void each_option(F&& f) {
    f("lr", lr);
    f("momentum", momentum);
    f("dampening", dampening);
    f("weight_decay", weight_decay);
    f("nesterov", nesterov);
  }

  void validate() const {
    detail::check_non_negative("kiln::sgd", "lr", lr);
    detail::check_non_negative("kiln::sgd", "momentum", momentum);
    detail::check_non_negative("kiln::sgd", "weight_decay", weight_decay);
    detail::check_option(!nesterov || (momentum > 0.0 && dampening == 0.0), "kiln::sgd",
                         "nesterov", "used with momentum > 0 and dampening = 0", momentum);
  }
  [[nodiscard]] options_type options() const {
    return options_type(lr).momentum(momentum).dampening(dampening).weight_decay(weight_decay)
        .nesterov(nesterov);
  }
};

namespace detail {
inline void check_betas(std::string_view where, double beta1, double beta2) {
  check_option(beta1 >= 0.0 && beta1 < 1.0, where, "beta1", "in [0, 1)", beta1);
  check_option(beta2 >= 0.0 && beta2 < 1.0, where, "beta2", "in [0, 1)", beta2);
}
}  // namespace detail

/// Adam, as torch.optim.Adam (weight decay is an L2 term added to the gradient).
struct adam {
  using kiln_role = role::optimizer;
  using optimizer_type = torch::optim::Adam;
  using options_type = torch::optim::AdamOptions;

  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;

  /// The runtime options by name, for kiln::config (kiln/config/config.hpp).
  template <class F>
  void each_option(F&& f) {
    f("lr", lr);
    f("beta1", beta1);
    f("beta2", beta2);
    f("eps", eps);
    f("weight_decay", weight_decay);
    f("amsgrad", amsgrad);
  }

  void validate() const {
    detail::check_non_negative("kiln::adam", "lr", lr);
    detail::check_betas("kiln::adam", beta1, beta2);
    detail::check_non_negative("kiln::adam", "eps", eps);
    detail::check_non_negative("kiln::adam", "weight_decay", weight_decay);
  }
  [[nodiscard]] options_type options() const {
    return options_type(lr).betas(std::make_tuple(beta1, beta2)).eps(eps)
        .weight_decay(weight_decay).amsgrad(amsgrad);
  }
};

/// AdamW, as torch.optim.AdamW (decoupled weight decay).
struct adamw {
  using kiln_role = role::optimizer;
  using optimizer_type = torch::optim::AdamW;
  using options_type = torch::optim::AdamWOptions;

  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;

  /// The runtime options by name, for kiln::config (kiln/config/config.hpp).
  template <class F>
  void each_option(F&& f) {
    f("lr", lr);
    f("beta1", beta1);
    f("beta2", beta2);
    f("eps", eps);
    f("weight_decay", weight_decay);
    f("amsgrad", amsgrad);
  }

  void validate() const {
    detail::check_non_negative("kiln::adamw", "lr", lr);
    detail::check_betas("kiln::adamw", beta1, beta2);
    detail::check_non_negative("kiln::adamw", "eps", eps);
    detail::check_non_negative("kiln::adamw", "weight_decay", weight_decay);
  }
  [[nodiscard]] options_type options() const {
    return options_type(lr).betas(std::make_tuple(beta1, beta2)).eps(eps)
        .weight_decay(weight_decay).amsgrad(amsgrad);
  }
};

/// RMSprop, as torch.optim.RMSprop.
struct rmsprop {
  using kiln_role = role::optimizer;
  using optimizer_type = torch::optim::RMSprop;
  using options_type = torch::optim::RMSpropOptions;

  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;

  /// The runtime options by name, for kiln::config (kiln/config/config.hpp).
  template <class F>
  void each_option(F&& f) {
    f("lr", lr);
    f("alpha", alpha);
    f("eps", eps);
    f("weight_decay", weight_decay);
    f("momentum", momentum);
    f("centered", centered);
  }

  void validate() const {
    detail::check_non_negative("kiln::rmsprop", "lr", lr);
    detail::check_non_negative("kiln::rmsprop", "alpha", alpha);
    detail::check_non_negative("kiln::rmsprop", "eps", eps);
    detail::check_non_negative("kiln::rmsprop", "weight_decay", weight_decay);
    detail::check_non_negative("kiln::rmsprop", "momentum", momentum);
  }
  [[nodiscard]] options_type options() const {
    return options_type(lr).alpha(alpha).eps(eps).weight_decay(weight_decay).momentum(momentum)
        .centered(centered);
  }
};

/// Adagrad, as torch.optim.Adagrad.
struct adagrad {
  using kiln_role = role::optimizer;
  using optimizer_type = torch::optim::Adagrad;
  using options_type = torch::optim::AdagradOptions;

  double lr = 1e-2;
  double lr_decay = 0.0;
  double weight_decay = 0.0;
  double initial_accumulator_value = 0.0;
  double eps = 1e-10;

  /// The runtime options by name, for kiln::config (kiln/config/config.hpp).
  template <class F>
  void each_option(F&& f) {
    f("lr", lr);
    f("lr_decay", lr_decay);
    f("weight_decay", weight_decay);
    f("initial_accumulator_value", initial_accumulator_value);
    f("eps", eps);
  }

  void validate() const {
    detail::check_non_negative("kiln::adagrad", "lr", lr);
    detail::check_non_negative("kiln::adagrad", "lr_decay", lr_decay);
    detail::check_non_negative("kiln::adagrad", "weight_decay", weight_decay);
    detail::check_non_negative("kiln::adagrad", "initial_accumulator_value",
                               initial_accumulator_value);
    detail::check_non_negative("kiln::adagrad", "eps", eps);
  }
  [[nodiscard]] options_type options() const {
    return options_type(lr).lr_decay(lr_decay).weight_decay(weight_decay)
        .initial_accumulator_value(initial_accumulator_value).eps(eps);
  }
};

}  // namespace kiln
