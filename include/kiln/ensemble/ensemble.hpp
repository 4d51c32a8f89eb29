// kiln/ensemble/ensemble.hpp — predictions of several models combined into one.
//
// The members are either trainers of any pipeline types, held by reference in a std::tuple, or
// checkpoints of one pipeline (the folds of a cross-validation, the best k epochs of a run) loaded
// in turn into one trainer. The rule that combines them is the combiner's type
// (kiln/ensemble/combiners.hpp): soft_vote, logit_mean, hard_vote or rank_mean.
//
//   kiln::trainer cnn{...}, mlp{...};                        // two pipelines, trained
//   auto p = kiln::ensemble::predict(kiln::ensemble::soft_vote{.weights = {2, 1}}, std::tie(cnn, mlp), test);
//
//   auto cv = kiln::cv::cross_validate(make, x, y, kiln::cv::stratified_k_fold{}, {...});
//   auto t = make(kiln::cv::fold_info{});                     // the pipeline, to load each fold into
//   auto q = kiln::ensemble::predict(kiln::ensemble::logit_mean{}, t, kiln::ensemble::best_checkpoints(cv), test);
//
// Members of a tuple must produce outputs of one kind, which their losses say
// (kiln::output_kind: class scores, binary logits or values): mixing kinds, or a member whose
// loss does not say (a kiln::loss{f}), is a compile error. Their width is checked when they
// predict: members with other numbers of outputs are an error naming both shapes.
//
// With a test-time augmentation (kiln/augment/tta.hpp) as the last argument, each member
// predicts through it, and its merged outputs (in the model's terms) are combined:
//
//   auto r = kiln::ensemble::predict(kiln::ensemble::soft_vote{}, std::tie(cnn, mlp), test,
//                                    kiln::tta<kiln::mean_logits, kiln::hflip>{});
#pragma once

#include <kiln/augment/augment.hpp>
#include <kiln/ensemble/combiners.hpp>
#include <kiln/loss/loss.hpp>

#include <torch/types.h>

#include <cstddef>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

namespace kiln::detail {
template <class Trainer>
constexpr bool says_output_kind() {
  static_assert(requires { Trainer::loss_policy::output; },
                "kiln::ensemble: a member's loss does not say what its outputs are (the trainer is named in the "
                "'with Trainer = ...' note below); kiln's losses declare `static constexpr kiln::output_kind output`, "
                "a kiln::loss{f} cannot: combine such members' outputs with kiln::ensemble::combine(combiner, outputs, "
                "kind), naming the kind yourself.");
  return true;
}
}  // namespace kiln::detail

namespace kiln::ensemble {

/// The kind of output of a trainer type, from its loss.
template <class Trainer>
  requires(detail::says_output_kind<Trainer>())
inline constexpr output_kind output_kind_of = Trainer::loss_policy::output;

/// Each member's outputs on `data`, in the members' order (through `tta`, when given).
template <class... Trainers, class Data, TestTimeAugmentation... TTA>
  requires(sizeof...(TTA) <= 1)
std::vector<torch::Tensor> predict_each(const std::tuple<Trainers&...>& members, Data& data, const TTA&... tta) {
  std::vector<torch::Tensor> outputs;
  outputs.reserve(sizeof...(Trainers));
  std::apply([&](auto&... member) { (outputs.push_back(member.predict(data, tta...)), ...); }, members);
  return outputs;
}

/// The combined prediction of trainers of any pipeline types whose outputs are of one kind.
template <Combiner C, class... Trainers, class Data, TestTimeAugmentation... TTA>
  requires(sizeof...(TTA) <= 1)
torch::Tensor predict(const C& combiner, const std::tuple<Trainers&...>& members, Data&& data, const TTA&... tta) {
  static_assert(sizeof...(Trainers) >= 1, "kiln::ensemble::predict: the ensemble has no members.");
  using first = std::remove_cvref_t<std::tuple_element_t<0, std::tuple<Trainers...>>>;
  static_assert(((output_kind_of<std::remove_cvref_t<Trainers>> == output_kind_of<first>) && ...),
                "kiln::ensemble::predict: the members' outputs are of different kinds (class scores, binary logits, "
                "values: what their losses read); an ensemble combines outputs of one kind.");
  const auto outputs = predict_each(members, data, tta...);
  return combine(combiner, outputs, output_kind_of<first>);
}

/// Each checkpoint's outputs on `data`: the checkpoints are loaded into `trainer` one after the
/// other (its own weights are replaced; it holds the last one's state afterwards).
template <class Trainer, class Data, TestTimeAugmentation... TTA>
  requires(sizeof...(TTA) <= 1)
std::vector<torch::Tensor> predict_each(Trainer& trainer, const std::vector<std::filesystem::path>& checkpoints,
                                        Data& data, const TTA&... tta) {
  std::vector<torch::Tensor> outputs;
  outputs.reserve(checkpoints.size());
  for (const auto& checkpoint : checkpoints) {
    trainer.load_checkpoint(checkpoint);
    outputs.push_back(trainer.predict(data, tta...));
  }
  return outputs;
}

/// The combined prediction of several checkpoints of the pipeline `trainer` belongs to.
template <Combiner C, class Trainer, class Data, TestTimeAugmentation... TTA>
  requires(sizeof...(TTA) <= 1)
torch::Tensor predict(const C& combiner, Trainer& trainer, const std::vector<std::filesystem::path>& checkpoints,
                      Data&& data, const TTA&... tta) {
  const auto outputs = predict_each(trainer, checkpoints, data, tta...);
  return combine(combiner, outputs, output_kind_of<std::remove_cvref_t<Trainer>>);
}

/// The best checkpoint of every fold of a cross-validation (kiln/cv/cross_validate.hpp), for an
/// ensemble of the fold models; throws when a fold has none (its pipeline needs a
/// kiln::model_checkpoint with a monitor).
template <class CrossValidation>
std::vector<std::filesystem::path> best_checkpoints(const CrossValidation& cv) {
  std::vector<std::filesystem::path> out;
  for (std::size_t k = 0; k < cv.folds.size(); ++k) {
    if (cv.folds[k].best_checkpoint.empty()) {
      throw std::invalid_argument("kiln::ensemble::best_checkpoints: fold " + std::to_string(k) +
                                  " kept no best checkpoint; give the pipeline a kiln::model_checkpoint with a "
                                  "monitor, and cross_validate a directory");
    }
    out.push_back(cv.folds[k].best_checkpoint);
  }
  return out;
}

}  // namespace kiln::ensemble
