// Composition rules, checked by the compiler: this file compiling is the test passing.
#include "../support.hpp"

namespace {
using Mlp = kiln::test::Mlp;
template <class... Ps>
using trainer_of = kiln::trainer<Ps...>;
}  // namespace

// Order does not matter.
static_assert(std::is_same_v<kiln::recipe<kiln::sgd, kiln::backbone<Mlp>>::policy<kiln::role::optimizer, kiln::adam>,
                             kiln::sgd>);
static_assert(std::is_same_v<kiln::recipe<kiln::backbone<Mlp>, kiln::sgd>::policy<kiln::role::optimizer, kiln::adam>,
                             kiln::sgd>);
// A missing role gets its default.
static_assert(std::is_same_v<trainer_of<kiln::backbone<Mlp>>::optimizer_policy, kiln::adam>);
static_assert(std::is_same_v<trainer_of<kiln::backbone<Mlp>>::loss_policy, kiln::cross_entropy>);
static_assert(std::is_same_v<trainer_of<kiln::backbone<Mlp>>::scheduler_policy, kiln::constant_lr>);
static_assert(std::is_same_v<trainer_of<kiln::backbone<Mlp>>::head_policy, kiln::no_head>);
static_assert(trainer_of<kiln::backbone<Mlp>>::accumulation == 1);
static_assert(trainer_of<kiln::backbone<Mlp>>::frozen_children == 0);
static_assert(!trainer_of<kiln::backbone<Mlp>>::has_head);
static_assert(std::is_same_v<trainer_of<kiln::backbone<Mlp>>::distributed_policy, kiln::single_process>);
// The default distributed role takes no room in the trainer.
static_assert(std::is_empty_v<kiln::single_process::state_type>);
// Named roles are found wherever they stand.
using full = trainer_of<kiln::accumulate<4>, kiln::mse, kiln::freeze<1>, kiln::head<torch::nn::Linear>,
                        kiln::step_lr, kiln::backbone<Mlp>, kiln::rmsprop, kiln::metrics<kiln::accuracy>>;
static_assert(full::accumulation == 4);
static_assert(full::frozen_children == 1);
static_assert(full::has_head);
static_assert(std::is_same_v<full::loss_policy, kiln::mse>);
static_assert(std::is_same_v<full::optimizer_type, torch::optim::RMSprop>);
static_assert(std::is_same_v<full::scheduler_policy, kiln::step_lr>);
// Counting roles is what rejects duplicates.
static_assert(kiln::recipe<kiln::mse, kiln::l1, kiln::sgd>::count<kiln::role::loss> == 2);
static_assert(kiln::recipe<kiln::mse, kiln::l1, kiln::sgd>::count<kiln::role::scheduler> == 0);
// Concepts of the roles.
static_assert(kiln::LossPolicy<kiln::cross_entropy> && kiln::LossPolicy<kiln::huber>);
static_assert(kiln::OptimizerPolicy<kiln::adamw> && !kiln::OptimizerPolicy<kiln::mse>);
static_assert(kiln::SchedulerPolicy<kiln::step_lr> && !kiln::SchedulerPolicy<kiln::sgd>);
static_assert(kiln::Metric<kiln::accuracy>);
static_assert(kiln::ForwardModule<Mlp> && kiln::DeclaresDepth<Mlp> && !kiln::DeclaresDepth<torch::nn::Linear>);
static_assert(!kiln::Policy<int> && kiln::Policy<kiln::freeze<3>>);
