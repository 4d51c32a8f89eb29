// What kiln::one_of costs at compile time: one pipeline (configuration, MLP backbone and head,
// metrics, a logger, fit and predict) with KILN_ALTERNATIVES trainers compiled in:
//   1  kiln::sgd and kiln::freeze<0>, written as types (no one_of)
//   2  one_of<sgd, adamw>
//   3  one_of<sgd, adamw, adam>
//   4  one_of<sgd, adamw> and one_of<freeze<0>, freeze<1>>: 2 × 2 trainers
// bench/compile_time.py --one-of compiles each beside the first (bench/README.md).
#include <kiln/config/config.hpp>
#include <kiln/kiln.hpp>
#include <torch/torch.h>

#ifndef KILN_ALTERNATIVES
#define KILN_ALTERNATIVES 1
#endif

namespace {

struct NetImpl : torch::nn::Module {
  static constexpr std::size_t depth = 2;
  NetImpl() {
    fc1 = register_module("fc1", torch::nn::Linear(8, 16));
    fc2 = register_module("fc2", torch::nn::Linear(16, 16));
  }
  torch::Tensor forward(const torch::Tensor& x) { return torch::relu(fc2->forward(torch::relu(fc1->forward(x)))); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Net);

}  // namespace

int main(int argc, char** argv) {
  auto config = kiln::config::from_command_line(argc, argv);
#if KILN_ALTERNATIVES == 1
  auto optimizer = kiln::sgd{.lr = 0.1};
  auto freeze = kiln::freeze<0>{};
#elif KILN_ALTERNATIVES == 2
  auto optimizer = kiln::one_of{kiln::sgd{.lr = 0.1}, kiln::adamw{}};
  auto freeze = kiln::freeze<0>{};
#elif KILN_ALTERNATIVES == 3
  auto optimizer = kiln::one_of{kiln::sgd{.lr = 0.1}, kiln::adamw{}, kiln::adam{}};
  auto freeze = kiln::freeze<0>{};
#else
  auto optimizer = kiln::one_of{kiln::sgd{.lr = 0.1}, kiln::adamw{}};
  auto freeze = kiln::one_of<kiln::freeze<0>, kiln::freeze<1>>{};
#endif
  kiln::trainer t{config,
                  kiln::backbone<Net>{},
                  freeze,
                  kiln::head{torch::nn::Linear(16, 3)},
                  optimizer,
                  kiln::metrics<kiln::accuracy>{},
                  kiln::callbacks{kiln::csv_logger{.path = "one_of_compile.csv"}}};
  const auto x = torch::randn({64, 8});
  const auto y = x.narrow(1, 0, 3).argmax(1);
  kiln::data::tensor_batches train{x, y, {.batch_size = 16, .shuffle = true}}, val{x, y, {.batch_size = 32}};
  t.fit(train, val, {.epochs = 2});
  return t.predict(val).size(0) == 64 ? 0 : 1;
}
