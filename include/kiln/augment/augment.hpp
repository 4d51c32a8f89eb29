// kiln/augment/augment.hpp — the augment role: transforms applied to every training batch, on
// the device, before the forward pass; never to validation or prediction.
//
//   kiln::no_augment          (the default) the batches go to the model as they come
//   kiln::augment{t...}       each transform in the order written, on the whole batch at once;
//                             the transforms are kiln/augment/transforms.hpp's and the mixes of
//                             kiln/augment/mix.hpp, or any type of the same shape (below)
//
// Each image draws its own parameters from the augmentation's generator, seeded with `seed` (or,
// with seed < 0, the default, from LibTorch's generator when the trainer is built, so that
// torch::manual_seed fixes it too) plus the process's rank. The generator lives on the device
// the trainer trains on (trainer::to reseeds it there), so no parameter crosses between host and
// device; its state is in every checkpoint, so a resumed run draws what the uninterrupted one
// would have drawn.
//
// A transform is a type with a `name` (its configuration key) and either
//   torch::Tensor operator()(const torch::Tensor& images, at::Generator& g) const   or, for a
//   void operator()(torch::Tensor& images, torch::Tensor& targets, at::Generator& g) const
// with `static constexpr bool mixes_targets = true`; options listed in each_option are set by
// kiln::config as "augment.<name>.<option>", and "augment.seed" sets the seed.
//
//   kiln::trainer t{kiln::backbone<Net>{},
//                   kiln::augment{kiln::random_crop{.size = {28, 28}, .padding = 2},
//                                 kiln::random_affine{.degrees = {-10, 10}}}.seeded(7)};
#pragma once

#include <kiln/core/role.hpp>
#include <kiln/detail/check.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <concepts>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <tuple>
#include <type_traits>

namespace kiln {

/// A transform of a kiln::augment: a `name`, and a call on the images (or, for a mix that
/// changes the targets too, on images and targets).
template <class T>
concept Transform =
    requires { { T::name } -> std::convertible_to<std::string_view>; } &&
    (requires(const T& t, const torch::Tensor& x, at::Generator& g) { { t(x, g) } -> std::convertible_to<torch::Tensor>; } ||
     (requires { T::mixes_targets; } &&
      requires(const T& t, torch::Tensor& x, torch::Tensor& y, at::Generator& g) { t(x, y, g); }));

/// An augment policy names its role and a state_type, built from the policy, with
/// `static constexpr bool active`, `void to(const torch::Device&, std::int64_t rank)`,
/// `void apply(torch::Tensor& input, torch::Tensor& target)` and the generator's state
/// (`torch::Tensor state() const`, `void load_state(const torch::Tensor&)`).
template <class P>
concept AugmentPolicy = requires { typename P::state_type; } &&
                        std::constructible_from<typename P::state_type, const P&> &&
                        requires(typename P::state_type& s, torch::Tensor& t) {
                          { P::state_type::active } -> std::convertible_to<bool>;
                          s.apply(t, t);
                        };

/// No augmentation: the default.
struct no_augment {
  using kiln_role = role::augment;
  static constexpr bool mixes_targets = false;
  struct state_type {
    static constexpr bool active = false;
    explicit state_type(const no_augment&) noexcept {}
    void to(const torch::Device&, std::int64_t) noexcept {}
    void apply(torch::Tensor&, torch::Tensor&) noexcept {}
  };
};

/// A test-time augmentation (kiln::tta or kiln::dense_tta, kiln/augment/tta.hpp), as
/// trainer::predict(data, tta) takes it: whether its outputs are dense, its blend and variants,
/// and `run<kind>(forward, images)`.
template <class T>
concept TestTimeAugmentation = requires { { T::dense } -> std::convertible_to<bool>; } && requires(const T& t) {
  t.beta;
  t.variants;
};

namespace detail {
/// A generator of `device`'s type, seeded.
KILN_DECL at::Generator seeded_generator(const torch::Device& device, std::int64_t seed);
/// A seed from LibTorch's default CPU generator.
KILN_DECL std::int64_t seed_from_default_generator();
}  // namespace detail

/// Transforms applied in order to every training batch.
template <Transform... Ts>
struct augment {
  using kiln_role = role::augment;
  static_assert(sizeof...(Ts) >= 1, "kiln::augment: name at least one transform, or leave the role out.");
  /// Whether a transform turns the targets into class probabilities (kiln/augment/mix.hpp).
  static constexpr bool mixes_targets = (requires { Ts::mixes_targets; } || ...);

  std::tuple<Ts...> transforms;
  std::int64_t seed = -1;  ///< < 0: drawn from LibTorch's generator when the trainer is built

  explicit augment(Ts... ts) : transforms(std::move(ts)...) {}

  /// This augmentation with its seed set.
  augment seeded(std::int64_t s) const {
    augment copy = *this;
    copy.seed = s;
    return copy;
  }

  template <class T>
  [[nodiscard]] T& get() noexcept { return std::get<T>(transforms); }

  /// The runtime options by name, for kiln::config: "seed", and "<transform>.<option>".
  template <class F>
  void each_option(F&& f) {
    f("seed", seed);
    std::apply([&](auto&... t) { (each_transform(f, t), ...); }, transforms);
  }

  void validate() const {
    std::apply([](const auto&... t) { (detail::validate_policy(t), ...); }, transforms);
  }

  /// What the trainer keeps: the transforms and their generator.
  struct state_type {
    static constexpr bool active = true;
    explicit state_type(const augment& a)
        : transforms_(a.transforms),
          seed_(a.seed >= 0 ? a.seed : detail::seed_from_default_generator()),
          generator_(detail::seeded_generator(torch::kCPU, seed_)) {}

    /// On the device the trainer trains on, for the process of this rank: a generator there,
    /// seeded with seed + rank.
    void to(const torch::Device& device, std::int64_t rank) {
      generator_ = detail::seeded_generator(device, seed_ + rank);
    }

    void apply(torch::Tensor& input, torch::Tensor& target) {
      std::apply([&](const auto&... t) { (apply_one(t, input, target), ...); }, transforms_);
    }

    [[nodiscard]] torch::Tensor state() const {
      std::lock_guard<std::mutex> lock(generator_.mutex());
      return generator_.get_state();
    }
    void load_state(const torch::Tensor& state) {
      std::lock_guard<std::mutex> lock(generator_.mutex());
      generator_.set_state(state);
    }
    [[nodiscard]] at::Generator& generator() noexcept { return generator_; }
    /// The transforms, with their options as configured.
    [[nodiscard]] const std::tuple<Ts...>& transforms() const noexcept { return transforms_; }
    /// The seed before the rank is added: `seed`, or the one drawn for seed < 0.
    [[nodiscard]] std::int64_t seed() const noexcept { return seed_; }

   private:
    template <class T>
    void apply_one(const T& t, torch::Tensor& input, torch::Tensor& target) {
      if constexpr (requires { T::mixes_targets; }) {
        t(input, target, generator_);
      } else {
        input = t(input, generator_);
      }
    }

    std::tuple<Ts...> transforms_;
    std::int64_t seed_;
    mutable at::Generator generator_;
  };

 private:
  template <class F, class T>
  static void each_transform(F& f, T& t) {
    if constexpr (requires { t.each_option(f); }) f(T::name, t);
  }
};

}  // namespace kiln

#if KILN_FUNCTION_DEFINITIONS

namespace kiln::detail {

KILN_DECL at::Generator seeded_generator(const torch::Device& device, std::int64_t seed) {
  if (device.is_cpu()) return at::make_generator<at::CPUGeneratorImpl>(static_cast<std::uint64_t>(seed));
  // Another device's: a copy of its default generator, reseeded (LibTorch declares no constructor
  // of a CUDA generator in its CPU headers). Generator::clone leaks its copy in LibTorch 1.13
  // (LeakSanitizer finds it), one per call: the CPU's is made directly above.
  at::Generator generator = at::globalContext().defaultGenerator(device).clone();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_current_seed(static_cast<std::uint64_t>(seed));
  return generator;
}

KILN_DECL std::int64_t seed_from_default_generator() {
  return torch::randint(0, std::int64_t{1} << 62, {1}, torch::kLong).item<std::int64_t>();
}

}  // namespace kiln::detail

#endif  // KILN_FUNCTION_DEFINITIONS
