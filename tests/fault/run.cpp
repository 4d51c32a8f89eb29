// A training run for the fault tests (tests/fault/faults.py): it checkpoints every epoch into
// <dir>/last.pt, resumes from there when the file exists, and writes <dir>/final.pt at the end.
// SIGINT or SIGTERM end it after writing <dir>/interrupted.pt, from which it also resumes.
//
//   kiln_fault_run train <dir> <epochs>    train, resuming when a checkpoint exists
//   kiln_fault_run check <file>            exit 0 when <file> is a loadable checkpoint
//   kiln_fault_run same <file> <file>      exit 0 when two checkpoints hold identical weights
#include <kiln/kiln.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

namespace fs = std::filesystem;

namespace {

// Big enough (~2.4 M parameters, ~28 MB per checkpoint with Adam's moments) that a kill often
// lands inside a checkpoint write; dropout makes the random-number state matter.
struct WideNetImpl : torch::nn::Module {
  WideNetImpl() {
    fc1 = register_module("fc1", torch::nn::Linear(64, 1536));
    drop = register_module("drop", torch::nn::Dropout(0.2));
    fc2 = register_module("fc2", torch::nn::Linear(1536, 1536));
    act = register_module("act", torch::nn::ReLU());
  }
  torch::Tensor forward(const torch::Tensor& x) { return act->forward(fc2->forward(drop->forward(fc1->forward(x).relu()))); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::Dropout drop{nullptr};
  torch::nn::ReLU act{nullptr};
};
TORCH_MODULE(WideNet);

auto make_trainer(const fs::path& dir) {
  torch::manual_seed(1);
  return kiln::trainer{kiln::backbone<WideNet>{}, kiln::head{torch::nn::Linear(1536, 4)}, kiln::adam{.lr = 1e-3},
                       kiln::cosine_annealing{.t_max = 100, .interval = kiln::interval::step},
                       kiln::callbacks{kiln::model_checkpoint{.directory = dir, .monitor = "train/loss", .keep_best = 1},
                                       kiln::checkpoint_on_signal{.path = dir / "interrupted.pt"}}};
}

int train(const fs::path& dir, std::int64_t epochs) {
  auto gen = at::detail::createCPUGenerator(5);
  const auto x = torch::randn({480, 64}, gen);
  const auto y = x.narrow(1, 0, 4).argmax(1);
  kiln::data::tensor_batches batches{x, y, {.batch_size = 32, .shuffle = true, .seed = 3}};
  auto t = make_trainer(dir);
  // Resume from the newer of the two checkpoints a stopped run may have left.
  fs::path resume;
  std::int64_t newest = -1;
  for (const char* name : {"last.pt", "interrupted.pt"}) {
    if (!fs::exists(dir / name)) continue;
    const auto step = kiln::read_checkpoint_info(dir / name).step;
    if (step > newest) {
      newest = step;
      resume = dir / name;
    }
  }
  t.fit(batches, {.epochs = epochs, .resume_from = resume});
  t.save_checkpoint(dir / "final.pt");
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  // Runs are compared bit for bit across processes: one thread keeps the order of every sum the
  // same (the BLAS in PyTorch's wheels picks its number of threads by the machine's load).
  torch::set_num_threads(1);
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "train" && argc == 4) return train(argv[2], std::stoll(argv[3]));
  if (mode == "check" && argc == 3) {
    const auto info = kiln::read_checkpoint_info(argv[2]);
    auto t = make_trainer(fs::temp_directory_path());
    t.load_checkpoint(argv[2]);
    std::printf("%s: epoch %lld, step %lld\n", argv[2], static_cast<long long>(info.epoch),
                static_cast<long long>(info.step));
    return 0;
  }
  if (mode == "same" && argc == 4) {
    auto a = make_trainer(fs::temp_directory_path()), b = make_trainer(fs::temp_directory_path());
    a.load_checkpoint(argv[2]);
    b.load_checkpoint(argv[3]);
    auto pa = a.model()->parameters(), pb = b.model()->parameters();
    for (std::size_t i = 0; i < pa.size(); ++i) {
      if (!torch::equal(pa[i], pb[i])) {
        std::printf("parameter %zu differs\n", i);
        return 1;
      }
    }
    return 0;
  }
  std::cerr << "usage: kiln_fault_run train <dir> <epochs> | check <file> | same <file> <file>\n";
  return 2;
} catch (const std::exception& e) {
  std::cerr << "kiln_fault_run: " << e.what() << '\n';
  return 3;
}
