// kiln/callbacks/backbone_finetuning.hpp — unfreeze the backbone part way through a fit.
//
// The usual transfer-learning schedule: train the new head on a frozen backbone
// (kiln::freeze<N>), then, from epoch `unfreeze_at_epoch` on, train the backbone too at a
// smaller learning rate: the backbone's group gets the head's current rate × `lr_ratio`. The
// optimizer's parameter groups do not change — the frozen parameters were in the backbone's
// group from the start, without gradients — so optimizer state, schedulers and checkpoints
// keep working (changing the groups mid-run is what breaks them in other frameworks). The
// unfrozen children go back to train mode, BatchNorm statistics included. A scheduler goes on
// from the new rate.
//
//   kiln::trainer t{kiln::backbone<Net>{}, kiln::freeze<3>{}, kiln::head{torch::nn::Linear(64, 5)},
//                   kiln::callbacks{kiln::backbone_finetuning{.unfreeze_at_epoch = 2, .lr_ratio = 0.1}}};
#pragma once

#include <kiln/core/context.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/detail/linkage.hpp>

#include <cstdint>
#include <stdexcept>
#include <string_view>

namespace kiln {

struct backbone_finetuning {
  std::int64_t unfreeze_at_epoch = 10;  ///< the first epoch (from 0) that trains the backbone
  double lr_ratio = 0.1;                ///< backbone rate = head rate × lr_ratio, when unfrozen

  /// The options by name, for kiln::config: "callbacks.backbone_finetuning.<option>".
  static constexpr std::string_view config_name = "backbone_finetuning";
  template <class F>
  void each_option(F&& f) { f("unfreeze_at_epoch", unfreeze_at_epoch); f("lr_ratio", lr_ratio); }

  struct state_type {
    bool unfrozen = false;

    template <class F>
    void each(F&& f) {  // what a checkpoint keeps
      f("unfrozen", unfrozen);
    }
  };
  state_type state{};  ///< running state (not an option)

  KILN_DECL void on_fit_begin(kiln::context& ctx);

  KILN_DECL void on_epoch_begin(kiln::context& ctx);
};

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln {

KILN_DECL void backbone_finetuning::on_fit_begin(kiln::context& ctx) {
  constexpr std::string_view who = "kiln::backbone_finetuning";
  detail::check_option(unfreeze_at_epoch >= 0, who, "unfreeze_at_epoch", "at least 0", unfreeze_at_epoch);
  detail::check_positive(who, "lr_ratio", lr_ratio);
  if (ctx.optimizer.param_groups().size() != 2) {
    throw std::invalid_argument(
        "kiln::backbone_finetuning: the pipeline has no head, so the backbone's rate has nothing to be a "
        "ratio of; add kiln::head{...}");
  }
  state.unfrozen = false;
}

KILN_DECL void backbone_finetuning::on_epoch_begin(kiln::context& ctx) {
  if (state.unfrozen || ctx.epoch < unfreeze_at_epoch) return;
  ctx.unfreeze();
  auto& groups = ctx.optimizer.param_groups();
  const double rate = groups[1].options().get_lr() * lr_ratio;
  groups[0].options().set_lr(rate);
  if (!ctx.learning_rates.empty()) ctx.learning_rates[0] = rate;
  state.unfrozen = true;
}

}  // namespace kiln

#endif  // KILN_FUNCTION_DEFINITIONS
