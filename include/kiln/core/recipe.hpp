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

#include <boost/hana/equal.hpp>
#include <boost/hana/filter.hpp>
#include <boost/hana/front.hpp>
#include <boost/hana/length.hpp>
#include <boost/hana/tuple.hpp>
#include <boost/hana/type.hpp>

#include <cstddef>

namespace kiln {
namespace detail {

namespace hana = boost::hana;

template <class Role, class... Ps>
constexpr auto policies_playing() {
  return hana::filter(hana::tuple_t<Ps...>, [](auto t) {
    return hana::type_c<role_of_t<typename decltype(t)::type>> == hana::type_c<Role>;
  });
}

template <class Default>
constexpr auto first_or(hana::tuple<>) {
  return hana::type_c<Default>;
}
template <class Default, class T, class... Rest>
constexpr auto first_or(hana::tuple<T, Rest...> found) {
  return hana::front(found);
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
  static constexpr std::size_t count =
      decltype(boost::hana::length(detail::policies_playing<Role, Policies...>()))::value;

  /// The policy that plays `Role`, or `Default` when none does.
  template <class Role, class Default>
  using policy = typename decltype(detail::first_or<Default>(
      detail::policies_playing<Role, Policies...>()))::type;

  /// True when every policy plays a role; fails with a message naming the first that does not.
  static constexpr bool all_known = (detail::plays_a_role<Policies>() && ...);
};

}  // namespace kiln
