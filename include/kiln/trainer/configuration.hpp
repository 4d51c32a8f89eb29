// kiln/trainer/configuration.hpp — what a trainer takes from a runtime configuration.
//
// A trainer built with a kiln::config first (kiln/config/config.hpp) gives each policy, as it
// takes it, the configuration's section of the policy's role ("optimizer.*", "callbacks.*"...),
// and applies "fit.*" to the options of each fit. Only the configuration's shape is asked for
// here, so that the trainer includes no JSON library.
#pragma once

#include <kiln/core/role.hpp>
#include <kiln/detail/check.hpp>

#include <concepts>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

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

namespace detail {

/// What a trainer needs of a runtime configuration; kiln::config (kiln/config/config.hpp) is one.
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
// fit and record them (and to let it refuse a fit, as kiln::config does under
// --print-search-space); held behind void so that this header needs nothing of the config's type.
struct fit_configuration {
  std::shared_ptr<void> config;
  std::string (*apply)(void* config, fit_options& options) = nullptr;

  template <class C>
  static fit_configuration of(const C& c) {
    return {std::make_shared<C>(c), [](void* copy, fit_options& options) -> std::string {
              auto& config = *static_cast<C*>(copy);
              if constexpr (requires { config.check_before_training(); }) config.check_before_training();
              config.apply("fit", options);
              return config.effective_json();
            }};
  }
};

}  // namespace detail
}  // namespace kiln
