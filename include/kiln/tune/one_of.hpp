// kiln/tune/one_of.hpp — a choice between policy types, made at run time from the configuration.
//
// A role's policy is a type, chosen when the program is compiled. kiln::one_of<A, B, ...> plays
// the role with every alternative compiled in, and a runtime configuration (kiln::config) picks
// one: "<role>.type" names it, and each alternative's own options sit under its name.
//
//   kiln::trainer t{config, kiln::backbone<Net>{},
//                   kiln::one_of{kiln::adamw{.lr = 3e-4}, kiln::sgd{.lr = 0.05, .momentum = 0.9}},
//                   kiln::one_of<kiln::freeze<0>, kiln::freeze<1>, kiln::freeze<2>>{}};
//
//   $ prog --set optimizer.type=sgd --set optimizer.sgd.momentum=0.8 --set freeze.type=freeze_1
//
// Keys. "<role>.type" is one of the alternatives' names (the first when the configuration gives
// none), and "<role>.<name>.<option>" are each alternative's options: optimizer.adamw.lr,
// optimizer.sgd.lr, optimizer.sgd.momentum. Every alternative's options are known keys whichever
// is chosen, so one configuration file serves every choice, and the effective configuration
// records them all. A policy's name is its type's, without namespaces, with template arguments
// joined by '_' (kiln::adamw: "adamw", kiln::freeze<2>: "freeze_2", kiln::warmup<kiln::cosine_annealing>:
// "warmup_cosine_annealing"), or its `static constexpr std::string_view config_name` when it has
// one.
//
// Cost. The choice is made once, when the trainer is built: a trainer with one_of holds the one
// trainer of the chosen types (a std::variant over every combination), and its fit, validate and
// predict go to that trainer with one branch per call. The loop is the loop of the trainer
// written with the chosen types, step for step (bench/README.md, "one_of"). What grows is the
// compile time: every combination is a whole pipeline compiled, so two one_of of 2 and 3
// alternatives compile 6 (bench/README.md measures the time each alternative adds).
//
// Built without a configuration, a trainer takes each one_of's first alternative.
#pragma once

#include <kiln/core/role.hpp>
#include <kiln/detail/check.hpp>
#include <kiln/trainer/trainer.hpp>

#include <array>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace kiln {

namespace detail {

/// "kiln::freeze<2>" -> "freeze_2", "kiln::warmup<kiln::cosine_annealing>" -> "warmup_cosine_annealing":
/// the type's name without namespaces, every other character that is not a key's turned into '_'
/// (runs of them into one), none at either end.
inline std::string alternative_name(std::string_view type) {
  std::string without;  // g++ writes an anonymous namespace "{anonymous}::", clang "(anonymous namespace)::"
  for (std::size_t at = 0; at < type.size();) {
    if (type.substr(at).starts_with("{anonymous}::")) {
      at += std::string_view{"{anonymous}::"}.size();
    } else if (type.substr(at).starts_with("(anonymous namespace)::")) {
      at += std::string_view{"(anonymous namespace)::"}.size();
    } else {
      without += type[at++];
    }
  }
  type = without;
  std::string out;
  std::string word;
  const auto flush = [&](bool separator) {
    if (!word.empty()) out += word;
    word.clear();
    if (separator && !out.empty() && out.back() != '_') out += '_';
  };
  for (std::size_t i = 0; i < type.size(); ++i) {
    const char c = type[i];
    if (c == ':') {  // "kiln::adamw": what came before was a namespace
      word.clear();
      if (i + 1 < type.size() && type[i + 1] == ':') ++i;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') {
      word += c;
    } else {
      flush(true);
    }
  }
  flush(false);
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

template <class P>
std::string policy_name() {
  if constexpr (requires { { P::config_name } -> std::convertible_to<std::string_view>; }) {
    return std::string{P::config_name};
  } else {
    return alternative_name(type_name<P>());
  }
}

}  // namespace detail

/// A role played by one of `Alternatives`, chosen at run time by "<role>.type"; see the file
/// comment. The alternatives play the same role and have different names.
template <class... Alternatives>
class one_of {
  static_assert(sizeof...(Alternatives) >= 2, "kiln::one_of: give at least two alternatives.");
  using first = std::tuple_element_t<0, std::tuple<Alternatives...>>;

 public:
  using kiln_role = role_of_t<first>;
  static_assert(!std::is_same_v<kiln_role, role::none>,
                "kiln::one_of: the first alternative is not a policy (it names no kiln_role).");
  static_assert((std::is_same_v<role_of_t<Alternatives>, kiln_role> && ...),
                "kiln::one_of: the alternatives play different roles (kiln_role); a one_of chooses "
                "between policies of one role, so write one one_of per role.");
  static_assert(!std::is_same_v<kiln_role, role::callbacks> && !std::is_same_v<kiln_role, role::backbone>,
                "kiln::one_of: choose between the options of a callback or a backbone with runtime "
                "options (kiln::config), not between types: a one_of of them would change what the "
                "trainer's callback_list() and backbone() return.");

  static constexpr std::size_t size = sizeof...(Alternatives);

  /// Which alternative plays the role: a kiln::config option whose names are the alternatives'.
  enum class choice : std::size_t {};

  /// The alternatives' names, in order (see the file comment).
  static const std::vector<std::pair<std::string, choice>>& names() {
    static const std::vector<std::pair<std::string, choice>> list = [] {
      std::vector<std::pair<std::string, choice>> out;
      std::size_t i = 0;
      (out.emplace_back(detail::policy_name<Alternatives>(), choice{i++}), ...);
      for (std::size_t a = 0; a < out.size(); ++a) {
        for (std::size_t b = 0; b < a; ++b) {
          if (out[a].first == out[b].first) {
            throw std::invalid_argument(detail::concat(
                "kiln::one_of: two alternatives are both named '", out[a].first,
                "'; give one a `static constexpr std::string_view config_name`"));
          }
        }
      }
      return out;
    }();
    return list;
  }
  // For kiln::config: an enum whose names it lists (found by argument-dependent lookup).
  friend const std::vector<std::pair<std::string, choice>>& enum_names(choice) { return names(); }

  choice type{};                            ///< the alternative chosen; the first by default
  std::tuple<Alternatives...> alternatives;  ///< each with its options

  one_of() = default;
  /// The alternatives with the options written here; the configuration overrides them.
  explicit one_of(Alternatives... given) : alternatives(std::move(given)...) {}

  [[nodiscard]] std::size_t index() const noexcept { return static_cast<std::size_t>(type); }
  [[nodiscard]] const std::string& name() const { return names().at(index()).first; }

  /// "type", then each alternative's options under its name (for kiln::config).
  template <class F>
  void each_option(F&& f) {
    f("type", type);
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (f(std::string_view{names()[I].first}, std::get<I>(alternatives)), ...);
    }(std::make_index_sequence<size>{});
  }

  /// Checks the choice and every alternative's options, chosen or not: a configuration file that
  /// serves every choice must be valid for each.
  void validate() const {
    detail::check_option(index() < size, "kiln::one_of", "type", "the name of an alternative", index());
    std::apply([](const auto&... alternative) { (detail::validate_policy(alternative), ...); }, alternatives);
  }
};

template <class... Alternatives>
one_of(Alternatives...) -> one_of<Alternatives...>;

namespace detail {

template <class T>
inline constexpr bool is_one_of = false;
template <class... A>
inline constexpr bool is_one_of<one_of<A...>> = true;

template <class... Ts>
struct type_list {};

template <class... Lists>
struct joined_lists;
template <class... A>
struct joined_lists<type_list<A...>> {
  using type = type_list<A...>;
};
template <class... A, class... B, class... Rest>
struct joined_lists<type_list<A...>, type_list<B...>, Rest...> {
  using type = typename joined_lists<type_list<A..., B...>, Rest...>::type;
};

// Every trainer a list of policies with one_of stands for, the first one_of's choice the most
// significant: <p, one_of<a, b>, one_of<x, y>> -> trainer<p, a, x>, <p, a, y>, <p, b, x>, <p, b, y>.
template <class Done, class... Rest>
struct combinations;
template <class... Done>
struct combinations<type_list<Done...>> {
  using type = type_list<trainer<Done...>>;
};
template <class... Done, class P, class... Rest>
struct combinations<type_list<Done...>, P, Rest...> {
  using type = typename combinations<type_list<Done..., P>, Rest...>::type;
};
template <class... Done, class... A, class... Rest>
struct combinations<type_list<Done...>, one_of<A...>, Rest...> {
  using type = typename joined_lists<typename combinations<type_list<Done..., A>, Rest...>::type...>::type;
};

template <class List>
struct variant_of;
template <class... Trainers>
struct variant_of<type_list<Trainers...>> {
  using type = std::variant<std::monostate, Trainers...>;  // monostate: nothing built yet
};

// A policy type every trainer of a one_of has alike (the roles no one_of plays), else void.
template <class Variant, template <class> class Member>
struct common_member;
template <class First, class... Rest, template <class> class Member>
struct common_member<std::variant<std::monostate, First, Rest...>, Member> {
  using type = std::conditional_t<(std::is_same_v<Member<First>, Member<Rest>> && ...), Member<First>, void>;
};
template <class T>
using metrics_policy_of = typename T::metrics_policy;
template <class T>
using loss_policy_of = typename T::loss_policy;
template <class T>
using callbacks_policy_of = typename T::callbacks_policy;

template <class P>
constexpr std::size_t alternatives_of() {
  if constexpr (is_one_of<P>) {
    return P::size;
  } else {
    return 1;  // a plain policy: one way to play its role
  }
}

// The configuration a chosen trainer is built with: the user's, except the sections of the
// roles a one_of plays, which the one_of has taken already ("optimizer.sgd.lr", not "optimizer.lr").
// While the trainer is built it is the user's configuration itself, which so learns every key
// (a search space is checked against it afterwards); the copy a trainer keeps for its fits owns
// a copy of it, as it would of a configuration given directly.
template <class C>
struct configuration_without {
  C* config;
  std::vector<std::string_view> taken;
  std::shared_ptr<C> own;  // a copy's

  configuration_without(C& c, std::vector<std::string_view> roles) : config(&c), taken(std::move(roles)) {}
  configuration_without(const configuration_without& other)
      : config(nullptr), taken(other.taken), own(std::make_shared<C>(*other.config)) {
    config = own.get();
  }
  configuration_without& operator=(const configuration_without&) = delete;

  template <class P>
    requires requires(C& c, P& p) { c.apply(std::string_view{}, p); }
  void apply(std::string_view section, P& policy) {
    for (const auto role : taken) {
      if (section == role) return;
    }
    config->apply(section, policy);
  }
  void check_all_used() const { config->check_all_used(); }
  [[nodiscard]] std::string effective_json() const { return config->effective_json(); }
  void check_before_training() const {
    if constexpr (requires { config->check_before_training(); }) config->check_before_training();
  }
};

}  // namespace detail

/// A trainer with a one_of among its policies: it builds, once, the trainer of the chosen types,
/// and each call goes to it. See the file comment, and trainer<Policies...> for the members.
template <class... Policies>
  requires(detail::is_one_of<Policies> || ...)
class trainer<Policies...> {
  using variant_type = typename detail::variant_of<
      typename detail::combinations<detail::type_list<>, std::remove_cvref_t<Policies>...>::type>::type;
  static constexpr std::array<std::size_t, sizeof...(Policies)> radix{detail::alternatives_of<Policies>()...};

  // The alternative the combination `k` takes for the policy at `position`.
  static constexpr std::size_t digit(std::size_t k, std::size_t position) {
    for (std::size_t later = sizeof...(Policies); later-- > position + 1;) k /= radix[later];
    return k % radix[position];
  }

 public:
  /// The pipeline with each one_of's first alternative.
  explicit trainer(Policies... policies)
      : trainer(detail::from_tuple{}, std::tie(policies...), static_cast<std::nullptr_t*>(nullptr)) {}

  /// The pipeline with the alternatives the configuration names ("<role>.type"), each policy's
  /// options taken from it as trainer<...> does; every alternative's options are checked.
  template <class Config>
    requires detail::ConfigSource<std::remove_reference_t<Config>>
  explicit trainer(Config&& config, Policies... policies)
      : trainer(detail::from_tuple{}, std::tie(policies...), &config) {}

  trainer(const trainer&) = delete;
  trainer& operator=(const trainer&) = delete;

  /// The policies of the roles no one_of plays, which every choice shares (void where a one_of
  /// plays the role): what kiln::cv::cross_validate and kiln::ensemble read of a trainer.
  using metrics_policy = typename detail::common_member<variant_type, detail::metrics_policy_of>::type;
  using loss_policy = typename detail::common_member<variant_type, detail::loss_policy_of>::type;
  using callbacks_policy = typename detail::common_member<variant_type, detail::callbacks_policy_of>::type;

  /// Calls `f` with the trainer of the chosen types, whose members are all there (optimizer(),
  /// scheduler(), ...): f(kiln::trainer<...>&). What f returns must not depend on the choice.
  template <class F>
  decltype(auto) visit(F&& f) {
    return visit_of(chosen_, f);
  }
  template <class F>
  decltype(auto) visit(F&& f) const {
    return visit_of(chosen_, f);
  }

  /// Which alternative each one_of chose: "optimizer.type=sgd, freeze.type=freeze_1".
  [[nodiscard]] const std::string& choices() const noexcept { return choices_; }

  template <BatchRange Train, BatchRange Val>
  history fit(Train&& train, Val&& val, const fit_options& options = {}) {
    return visit([&](auto& t) { return t.fit(train, val, options); });
  }
  template <BatchRange Train>
  history fit(Train&& train, const fit_options& options = {}) {
    return visit([&](auto& t) { return t.fit(train, options); });
  }
  template <BatchRange Data>
  metric_values validate(Data&& data) {
    return visit([&](auto& t) { return t.validate(data); });
  }
  template <InputRange Data>
  torch::Tensor predict(Data&& data) {
    return visit([&](auto& t) { return t.predict(data); });
  }
  template <InputRange Data, TestTimeAugmentation TTA>
  torch::Tensor predict(Data&& data, const TTA& tta) {
    return visit([&](auto& t) { return t.predict(data, tta); });
  }
  void to(const torch::Device& device) {
    visit([&](auto& t) { t.to(device); });
  }
  [[nodiscard]] const torch::Device& device() const {
    return visit([](auto& t) -> const torch::Device& { return t.device(); });
  }
  [[nodiscard]] const context& state() const {
    return visit([](auto& t) -> const context& { return t.state(); });
  }
  [[nodiscard]] decltype(auto) backbone() {
    return visit([](auto& t) -> decltype(auto) { return t.backbone(); });
  }
  [[nodiscard]] decltype(auto) callback_list() {
    return visit([](auto& t) -> decltype(auto) { return t.callback_list(); });
  }
  [[nodiscard]] decltype(auto) metric_list() const {
    return visit([](auto& t) -> decltype(auto) { return t.metric_list(); });
  }
  void save_checkpoint(const std::filesystem::path& path) {
    visit([&](auto& t) { t.save_checkpoint(path); });
  }
  void load_checkpoint(const std::filesystem::path& path) {
    visit([&](auto& t) { t.load_checkpoint(path); });
  }

 private:
  // std::visit over the chosen trainer; the variant's first state (nothing built) never stays
  // past the constructor, which builds one trainer or throws.
  template <class Variant, class F>
  static decltype(auto) visit_of(Variant& chosen, F& f) {
    using R = decltype(f(std::get<1>(chosen)));
    return std::visit(
        [&]<class T>(T& t) -> R {
          if constexpr (std::is_same_v<std::remove_const_t<T>, std::monostate>) {
            throw std::logic_error("kiln::trainer: no pipeline was chosen");
          } else {
            return f(t);
          }
        },
        chosen);
  }

  template <class Config>
  trainer(detail::from_tuple, std::tuple<Policies&...> policies, Config* config) {
    std::size_t chosen = 0;
    std::vector<std::string_view> roles;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (take_choice(std::get<I>(policies), config, chosen, roles), ...);
    }(std::index_sequence_for<Policies...>{});
    [&]<std::size_t... K>(std::index_sequence<K...>) {
      ((K == chosen ? (build<K>(policies, config, roles), true) : false) || ...);
    }(std::make_index_sequence<std::variant_size_v<variant_type> - 1>{});
  }

  template <class P, class Config>
  void take_choice(P& policy, Config* config, std::size_t& chosen, std::vector<std::string_view>& roles) {
    chosen *= detail::alternatives_of<P>();
    if constexpr (detail::is_one_of<P>) {
      if constexpr (!std::is_same_v<Config, std::nullptr_t>) config->apply(role_of_t<P>::name, policy);
      policy.validate();
      chosen += policy.index();
      roles.push_back(role_of_t<P>::name);
      choices_ += detail::concat(choices_.empty() ? "" : ", ", role_of_t<P>::name, ".type=", policy.name());
    }
  }

  template <std::size_t K, class Config>
  void build(std::tuple<Policies&...>& policies, Config* config, std::vector<std::string_view>& roles) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      if constexpr (std::is_same_v<Config, std::nullptr_t>) {
        chosen_.template emplace<K + 1>(pick<K, I>(std::get<I>(policies))...);
      } else {
        detail::configuration_without<Config> rest{*config, std::move(roles)};
        chosen_.template emplace<K + 1>(rest, pick<K, I>(std::get<I>(policies))...);
      }
    }(std::index_sequence_for<Policies...>{});
  }

  // The policy combination K passes at `position`: the one_of's alternative, or the policy;
  // moved, since they are the constructor's own copies and only one combination is built.
  template <std::size_t K, std::size_t Position, class P>
  static auto pick(P& policy) {
    if constexpr (detail::is_one_of<P>) {
      return std::move(std::get<digit(K, Position)>(policy.alternatives));
    } else {
      return std::move(policy);
    }
  }

  variant_type chosen_;
  std::string choices_;
};

}  // namespace kiln
