// kiln/model/head.hpp — a module put on top of the backbone.
//
// With a head, the network is head(backbone(x)) and the optimizer gets two parameter groups:
// the backbone's (learning rate × backbone lr_ratio) and the head's.
//
//   kiln::head{torch::nn::Linear(128, 5)}
//   kiln::no_head{}            // the default: the backbone's output is the prediction
#pragma once

#include <kiln/core/role.hpp>
#include <kiln/model/backbone.hpp>

namespace kiln {

template <class M>
struct head {
  static_assert(ForwardModule<M>,
                "kiln::head<M>: M must be a torch::nn module holder whose forward takes one "
                "torch::Tensor and returns one (e.g. torch::nn::Linear); M is named in the "
                "'with M = ...' note below.");
  using kiln_role = role::head;
  using module_type = M;
  M module;
};
template <class M>
head(M) -> head<M>;

struct no_head {
  using kiln_role = role::head;
  using module_type = void;
};

}  // namespace kiln
