// kiln/core/role.hpp — the roles a policy can play in a pipeline.
//
// Every policy names its role with a nested `using kiln_role = kiln::role::X;`.
// The roles, and the policy a pipeline gets when it names none:
//
//   backbone    the network being trained or fine-tuned     (required)
//   head        a module put on top of the backbone          kiln::no_head
//   freeze      how many backbone children are frozen        kiln::freeze<0>
//   loss        what is minimised                            kiln::cross_entropy
//   optimizer   how weights move                             kiln::adam
//   scheduler   how the learning rate changes                kiln::constant_lr
//   accumulate  gradient accumulation                        kiln::accumulate<1>
//   metrics     what validation measures                     kiln::metrics<>
//   callbacks   user hooks into the loop                     kiln::callbacks<>
//   precision   in which dtype the forward pass runs         kiln::full_precision
//   execution   how each training step is launched           kiln::eager
//   distributed how many processes train the model together   kiln::single_process
//   augment     transforms of the training batches           kiln::no_augment
#pragma once

#include <string_view>
#include <type_traits>

namespace kiln::role {

struct backbone   { static constexpr std::string_view name = "backbone"; };
struct head       { static constexpr std::string_view name = "head"; };
struct freeze     { static constexpr std::string_view name = "freeze"; };
struct loss       { static constexpr std::string_view name = "loss"; };
struct optimizer  { static constexpr std::string_view name = "optimizer"; };
struct scheduler  { static constexpr std::string_view name = "scheduler"; };
struct accumulate { static constexpr std::string_view name = "accumulate"; };
struct metrics    { static constexpr std::string_view name = "metrics"; };
struct callbacks  { static constexpr std::string_view name = "callbacks"; };
struct precision  { static constexpr std::string_view name = "precision"; };
struct execution  { static constexpr std::string_view name = "execution"; };
struct distributed { static constexpr std::string_view name = "distributed"; };
struct augment    { static constexpr std::string_view name = "augment"; };

/// The role of a type that declares none: such a type cannot be a policy.
struct none { static constexpr std::string_view name = "none"; };

}  // namespace kiln::role

namespace kiln {

/// A policy is a type that names its role:
///   struct my_loss { using kiln_role = kiln::role::loss; ... };
template <class P>
concept Policy = requires { typename P::kiln_role; };

/// The role of `P`, or `role::none` when `P` names no role.
template <class P>
struct role_of {
  using type = role::none;
};
template <Policy P>
struct role_of<P> {
  using type = typename P::kiln_role;
};
template <class P>
using role_of_t = typename role_of<std::remove_cvref_t<P>>::type;

}  // namespace kiln
