// kiln/core/recipe.hpp — finding each role's policy in an unordered list of policies.
//
// A pipeline is written as a list of policies in any order. `recipe<Ps...>` answers, at
// compile time, which policy plays a role (or the role's default when none does), and
// rejects lists that name a role twice or contain a type that plays no role.
//
//   using r = kiln::recipe<kiln::adam, kiln::backbone<Net>>;
//   static_assert(std::is_same_v<r::policy<kiln::role::optimizer, kiln::sgd>, kiln::adam>);
#pragma once

#include <kiln/core/role.hpp>

#include <boost/hana/basic_tuple.hpp>
#include <boost/hana/equal.hpp>
#include <boost/hana/type.hpp>

#include <cstddef>
#include <type_traits>

namespace kiln {
namespace detail {

namespace hana = boost::hana;

// Hana's small headers only: its algorithms over general tuples (filter, front) instantiate
// about 10 MB more in every translation unit that includes kiln (bench/README.md).
template <class Role, class P>
inline constexpr bool plays = decltype(hana::type_c<role_of_t<P>> == hana::type_c<Role>)::value;

// The position of the first of Ps that plays Role; sizeof...(Ps) when none does.
template <class Role, class... Ps>
constexpr std::size_t first_playing() {
  constexpr bool found[] = {plays<Role, Ps>..., true};
  std::size_t i = 0;
  while (!found[i]) ++i;
  return i;
}

// A separate template per unknown type, so that the compiler's note names the type.
template <class P>
constexpr bool plays_a_role() {
  static_assert(Policy<P>,
                "kiln: a type in this pipeline plays no role (its name is in the "
                "'with P = ...' note below). A policy names its role with "
                "`using kiln_role = kiln::role::<role>;`. To use a plain callable as the loss "
                "write kiln::loss{f}; to add a callback put it inside kiln::callbacks{...}.");
  return true;  // the assertion above is the one error shown
}

}  // namespace detail

/// The policies of a pipeline, looked up by role.
template <class... Policies>
struct recipe {
  /// How many of the policies play `Role`.
  template <class Role>
  static constexpr std::size_t count = (std::size_t{detail::plays<Role, Policies>} + ... + 0);

  /// The policy that plays `Role`, or `Default` when none does.
  template <class Role, class Default>
  using policy = typename std::remove_cvref_t<decltype(boost::hana::at_c<detail::first_playing<Role, Policies...>()>(
      boost::hana::basic_tuple<boost::hana::type<Policies>..., boost::hana::type<Default>>{}))>::type;

  /// True when every policy plays a role; fails with a message naming the first that does not.
  static constexpr bool all_known = (detail::plays_a_role<Policies>() && ...);
};

}  // namespace kiln
