// kiln/callbacks/callbacks.hpp — user code that runs at fixed points of the loop.
//
// A callback is any class with one or more of these members, each optional:
//
//   void on_fit_begin(kiln::context&);              before the first epoch
//   void on_epoch_begin(kiln::context&);            before each training epoch
//   void on_batch_begin(kiln::context&);            before each training batch's forward
//   void on_before_optimizer_step(kiln::context&);  gradients ready, step not yet taken
//   void on_batch_end(kiln::context&);              after each training batch
//   void on_validation_end(kiln::context&);         validation results are in ctx.metrics
//   void on_epoch_end(kiln::context&);              after validation and the scheduler
//   void on_checkpoint(kiln::context&);             after every on_epoch_end: the epoch's state
//                                                   is final; write checkpoints here
//   void on_interrupt(kiln::context&);              ctx.interrupt() ended the fit in the middle
//                                                   of an epoch: checkpoint that moment here
//   void on_fit_end(kiln::context&);                after the last epoch
//
// A trainer compiles its checkpoint writer and reader in only when some callback has
// on_checkpoint or on_interrupt; in other pipelines ctx.save_checkpoint throws.
//
// A callback that writes files or prints (kiln's loggers, model_checkpoint, progress_bar)
// declares `static constexpr bool rank_zero_only = true;`: when several processes train together
// (kiln/distributed/distributed.hpp), its hooks run only in the process of rank 0.
//
// Hooks are found at compile time and called directly, so a pipeline without callbacks pays
// nothing. A member with a hook's name that cannot be called as above (a wrong parameter, a
// return value) is a compile error, never a silently skipped hook. Any hook can end the fit
// with ctx.request_stop().
//
//   struct print_loss {
//     void on_epoch_end(kiln::context& ctx) { std::cout << ctx.metrics.at("train/loss"); }
//   };
//   kiln::trainer t{kiln::backbone<Net>{}, kiln::callbacks{print_loss{}}};
#pragma once

#include <kiln/core/context.hpp>
#include <kiln/core/role.hpp>

#include <concepts>
#include <tuple>
#include <type_traits>
#include <utility>

namespace kiln {
namespace detail {

// `declares_<hook><C>` is true when C has a member of that name of any kind (overloaded,
// template or of the wrong type included): mixing in a base with the same name makes the
// lookup ambiguous exactly when C has one too.
#define KILN_DETAIL_HOOK(hook)                                                               \
  struct hook##_probe {                                                                      \
    void hook();                                                                             \
  };                                                                                         \
  template <class C>                                                                         \
  struct hook##_mixin : C, hook##_probe {};                                                  \
  template <class C>                                                                         \
  concept declares_##hook =                                                                  \
      std::is_class_v<C> && !std::is_final_v<C> && !requires { &hook##_mixin<C>::hook; };    \
  struct hook##_t {                                                                          \
    template <class C>                                                                       \
    static constexpr bool declared = declares_##hook<C>;                                     \
    template <class C>                                                                       \
    static constexpr bool callable = requires(C& c, context& ctx) {                          \
      { c.hook(ctx) } -> std::same_as<void>;                                                 \
    };                                                                                       \
    template <class C>                                                                       \
    static void invoke(C& c, context& ctx) {                                                 \
      if constexpr (callable<C>) c.hook(ctx);                                                \
    }                                                                                        \
    template <class C>                                                                       \
    static constexpr bool check() {                                                          \
      static_assert(!declared<C> || callable<C>,                                             \
                    "kiln::callbacks: a callback declares '" #hook                           \
                    "' but kiln cannot call it as a hook; write it as `void " #hook          \
                    "(kiln::context& ctx)` (the callback is named in the "                   \
                    "'with C = ...' note below).");                                          \
      return true;                                                                           \
    }                                                                                        \
  };

KILN_DETAIL_HOOK(on_fit_begin)
KILN_DETAIL_HOOK(on_epoch_begin)
KILN_DETAIL_HOOK(on_batch_begin)
KILN_DETAIL_HOOK(on_before_optimizer_step)
KILN_DETAIL_HOOK(on_batch_end)
KILN_DETAIL_HOOK(on_validation_end)
KILN_DETAIL_HOOK(on_epoch_end)
KILN_DETAIL_HOOK(on_checkpoint)
KILN_DETAIL_HOOK(on_interrupt)
KILN_DETAIL_HOOK(on_fit_end)
#undef KILN_DETAIL_HOOK

template <class C>
inline constexpr bool declares_any_hook =
    on_fit_begin_t::declared<C> || on_epoch_begin_t::declared<C> ||
    on_batch_begin_t::declared<C> || on_before_optimizer_step_t::declared<C> ||
    on_batch_end_t::declared<C> || on_validation_end_t::declared<C> ||
    on_epoch_end_t::declared<C> || on_checkpoint_t::declared<C> || on_interrupt_t::declared<C> ||
    on_fit_end_t::declared<C>;

}  // namespace detail

namespace hook {
using fit_begin = detail::on_fit_begin_t;
using epoch_begin = detail::on_epoch_begin_t;
using batch_begin = detail::on_batch_begin_t;
using before_optimizer_step = detail::on_before_optimizer_step_t;
using batch_end = detail::on_batch_end_t;
using validation_end = detail::on_validation_end_t;
using epoch_end = detail::on_epoch_end_t;
using checkpoint = detail::on_checkpoint_t;
using interrupt = detail::on_interrupt_t;
using fit_end = detail::on_fit_end_t;
}  // namespace hook

/// A type with at least one hook, each callable as `void hook(kiln::context&)`.
template <class C>
concept Callback =
    detail::declares_any_hook<C> &&
    (!detail::on_fit_begin_t::declared<C> || detail::on_fit_begin_t::callable<C>) &&
    (!detail::on_epoch_begin_t::declared<C> || detail::on_epoch_begin_t::callable<C>) &&
    (!detail::on_batch_begin_t::declared<C> || detail::on_batch_begin_t::callable<C>) &&
    (!detail::on_before_optimizer_step_t::declared<C> ||
     detail::on_before_optimizer_step_t::callable<C>) &&
    (!detail::on_batch_end_t::declared<C> || detail::on_batch_end_t::callable<C>) &&
    (!detail::on_validation_end_t::declared<C> || detail::on_validation_end_t::callable<C>) &&
    (!detail::on_epoch_end_t::declared<C> || detail::on_epoch_end_t::callable<C>) &&
    (!detail::on_checkpoint_t::declared<C> || detail::on_checkpoint_t::callable<C>) &&
    (!detail::on_interrupt_t::declared<C> || detail::on_interrupt_t::callable<C>) &&
    (!detail::on_fit_end_t::declared<C> || detail::on_fit_end_t::callable<C>);

namespace detail {
template <class C>
constexpr bool is_a_callback() {
  static_assert(declares_any_hook<C>,
                "kiln::callbacks: a type inside kiln::callbacks{...} has no hook (it is named "
                "in the 'with C = ...' note below); give it one of on_fit_begin, "
                "on_epoch_begin, on_batch_begin, on_before_optimizer_step, on_batch_end, "
                "on_validation_end, on_epoch_end, on_checkpoint, on_interrupt, on_fit_end, "
                "each `void (kiln::context&)`.");
  return on_fit_begin_t::check<C>() && on_epoch_begin_t::check<C>() &&
         on_batch_begin_t::check<C>() && on_before_optimizer_step_t::check<C>() &&
         on_batch_end_t::check<C>() && on_validation_end_t::check<C>() &&
         on_epoch_end_t::check<C>() && on_checkpoint_t::check<C>() && on_interrupt_t::check<C>() &&
         on_fit_end_t::check<C>();
}
}  // namespace detail

/// The callbacks of a pipeline, called in the order written.
///
///   kiln::callbacks{early_stop{}, csv_log{"log.csv"}}
template <class... Cs>
class callbacks {
  static_assert((detail::is_a_callback<Cs>() && ...));

 public:
  using kiln_role = role::callbacks;

  explicit callbacks(Cs... cs) : items_(std::move(cs)...) {}

  /// True when some callback has `Hook`; lets the trainer skip preparing what nobody reads.
  template <class Hook>
  static constexpr bool any = (Hook::template declared<Cs> || ...);

  /// Calls `Hook` on every callback that has it, in order.
  template <class Hook>
  void run(context& ctx) {
    if constexpr (any<Hook>) {
      std::apply([&ctx](auto&... c) { (run_one<Hook>(c, ctx), ...); }, items_);
    }
  }

  /// Calls f(callback) for each callback, in order.
  template <class F>
  void each(F&& f) {
    std::apply([&f](auto&... c) { (f(c), ...); }, items_);
  }

  template <class C>
  [[nodiscard]] C& get() noexcept { return std::get<C>(items_); }
  template <std::size_t I>
  [[nodiscard]] auto& get() noexcept { return std::get<I>(items_); }

 private:
  template <class Hook, class C>
  static void run_one(C& c, context& ctx) {
    if constexpr (Hook::template declared<C>) {
      if constexpr (requires { requires C::rank_zero_only; }) {
        if (!ctx.writes_files()) return;
      }
      Hook::invoke(c, ctx);
    }
  }

  std::tuple<Cs...> items_;
};

template <class... Cs>
callbacks(Cs...) -> callbacks<Cs...>;

}  // namespace kiln
