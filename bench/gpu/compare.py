"""PyTorch's eager loop and a PyTorch Lightning Trainer on the models, data and optimizer of
bench/gpu/compare.cpp, timed the same way; then the table of all variants with the ratios.

usage: compare.py [--device cuda|cpu] [--models mlp,cnn,wide] [--epochs E] [--repeats R]
                  [--batches B] [--cpp-results kiln.json] [--out results.json]

Same as compare.cpp: batches made from a fixed seed and stored on the device before timing, SGD
(lr 0.01, momentum 0.9), cross-entropy, the running loss kept on the device and read once per
epoch, one untimed warm-up epoch, then `epochs` epochs timed `repeats` times, median reported.
Lightning runs warm-up + epochs epochs in one Trainer.fit per repeat, timed from the start of the
first timed epoch to the end of the last (CUDA synchronised at both ends), without logger,
checkpointing, progress bar, model summary or validation. Without Lightning installed its rows
are left out, with a message.
"""
import argparse
import json
import logging
import statistics
import sys
import time

import torch
import torch.nn.functional as F

LR, MOMENTUM = 0.01, 0.9


class Mlp(torch.nn.Module):
    def __init__(self, n_in, hidden, layers, n_out):
        super().__init__()
        widths = [n_in] + [hidden] * layers
        self.hidden = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
        self.out = torch.nn.Linear(widths[-1], n_out)

    def forward(self, x):
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.out(x)


class Cnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(16, 32, 3, padding=1)
        self.fc = torch.nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        h = F.max_pool2d(torch.relu(self.conv1(x)), 2)
        h = F.max_pool2d(torch.relu(self.conv2(h)), 2)
        return self.fc(h.flatten(1))


SPECS = {  # input shape of one sample, batch size, batches per epoch
    "mlp": ((784,), 64, 64),
    "cnn": ((1, 28, 28), 64, 64),
    "wide": ((4096,), 1024, 16),
}


def make_net(name, device):
    torch.manual_seed(1)
    net = {"mlp": lambda: Mlp(784, 256, 1, 10), "wide": lambda: Mlp(4096, 4096, 2, 10), "cnn": Cnn}[name]()
    return net.to(device)


def make_batches(name, batches, device):
    shape, batch, default = SPECS[name]
    torch.manual_seed(1234)
    return [(torch.randn((batch,) + shape).to(device), torch.randint(0, 10, (batch,)).to(device))
            for _ in range(batches or default)]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


class EagerLoop:
    def __init__(self, name, batches, device):
        self.net, self.batches, self.device = make_net(name, device), batches, device
        self.opt = torch.optim.SGD(self.net.parameters(), lr=LR, momentum=MOMENTUM)
        self.last = float("nan")

    def epoch(self):
        self.net.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        samples = 0
        for x, y in self.batches:
            self.opt.zero_grad()
            loss = F.cross_entropy(self.net(x), y)
            loss.backward()
            with torch.no_grad():
                loss_sum.add_(loss, alpha=x.size(0))
            samples += x.size(0)
            self.opt.step()
        self.last = loss_sum.item() / samples

    def time(self, epochs):
        sync(self.device)
        start = time.perf_counter()
        for _ in range(epochs):
            self.epoch()
        sync(self.device)
        return (time.perf_counter() - start) * 1e6 / (epochs * len(self.batches))


class Batches:
    """The batches as one iterable: Lightning would take a plain list for a list of loaders."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


def import_lightning():
    try:
        import lightning as L
    except ImportError:
        try:
            import pytorch_lightning as L
        except ImportError:
            print("compare.py: PyTorch Lightning is not installed here (neither `lightning` nor "
                  "`pytorch_lightning`): its rows are left out", file=sys.stderr)
            return None
    for logger in ("lightning", "lightning.pytorch", "pytorch_lightning", "lightning.fabric"):
        logging.getLogger(logger).setLevel(logging.WARNING)  # no banner per fit
    return L


def lightning_runner(L, name, batches, device, epochs):
    """A function that runs one Trainer.fit of 1 + epochs epochs and returns microseconds per
    step over the last `epochs`, and the last epoch's mean loss."""

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = make_net(name, device)
            self.loss_sum = None
            self.samples = 0

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = F.cross_entropy(self.net(x), y)
            with torch.no_grad():
                self.loss_sum.add_(loss.detach(), alpha=x.size(0))
            self.samples += x.size(0)
            return loss

        def on_train_epoch_start(self):
            self.loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
            self.samples = 0

        def on_train_epoch_end(self):
            self.last = self.loss_sum.item() / self.samples

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=LR, momentum=MOMENTUM)

    class Clock(L.Callback):
        def __init__(self):
            self.start = self.end = None

        def on_train_epoch_start(self, trainer, module):
            if trainer.current_epoch == 1:
                sync(device)
                self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer, module):
            sync(device)
            self.end = time.perf_counter()

    accelerator = "gpu" if device.type == "cuda" else "cpu"

    def run():
        clock = Clock()
        trainer = L.Trainer(accelerator=accelerator, devices=1, max_epochs=1 + epochs, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            num_sanity_val_steps=0, limit_val_batches=0, callbacks=[clock])
        module = Module()
        trainer.fit(module, train_dataloaders=Batches(batches))
        return (clock.end - clock.start) * 1e6 / (epochs * len(batches)), module.last

    return run


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--models", default="mlp,cnn,wide")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batches", type=int, default=0)
    p.add_argument("--cpp-results")
    p.add_argument("--out")
    a = p.parse_args()
    device = torch.device("cuda", 0) if a.device == "cuda" else torch.device("cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("compare.py: --device cuda, but PyTorch sees no CUDA device")
    if device.type == "cpu":
        torch.set_num_threads(1)
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    print(f"compare.py: PyTorch {torch.__version__}, device {device} ({gpu}), "
          f"{a.epochs} timed epochs x {a.repeats} repeats")

    results = {"pytorch": torch.__version__, "device": str(device), "gpu": gpu, "models": {}}
    L = import_lightning()
    for name in a.models.split(","):
        batches = make_batches(name, a.batches, device)
        eager = EagerLoop(name, batches, device)
        eager.epoch()  # warm-up
        lightning = None if L is None else lightning_runner(L, name, batches, device, a.epochs)
        times = {"torch_eager": [], "lightning": []}
        losses = {}
        for _ in range(a.repeats):
            times["torch_eager"].append(eager.time(a.epochs))
            losses["torch_eager"] = eager.last
            if lightning is not None:
                us, losses["lightning"] = lightning()
                times["lightning"].append(us)
        row = {k: statistics.median(v) for k, v in times.items() if v}
        results["models"][name] = row
        for k, v in row.items():
            print(f"{name:5} {k:14} {v:10.1f} us/step   (last epoch loss {losses[k]:.6f})")
        sys.stdout.flush()

    if a.cpp_results:
        with open(a.cpp_results) as f:
            cpp = json.load(f)
        results["libtorch"] = cpp.get("libtorch")
        for name, row in cpp["models"].items():
            results["models"].setdefault(name, {}).update(row)
    print_table(results)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=1)


def print_table(results):
    cols = ["hand_eager", "kiln_eager", "hand_captured", "kiln_captured", "torch_eager", "lightning"]
    print(f"\nmicroseconds per step on {results['gpu']} (PyTorch {results['pytorch']}, "
          f"LibTorch {results.get('libtorch', '?')}):")
    print("| model | " + " | ".join(cols) + " | kiln/hand eager | hand eager / kiln captured | "
          "lightning / kiln eager | lightning / kiln captured |")
    print("|---" * (len(cols) + 5) + "|")
    for name, row in results["models"].items():
        def cell(k):
            return f"{row[k]:.1f}" if k in row else "-"

        def ratio(a, b, fmt):
            return fmt.format(row[a] / row[b]) if a in row and b in row else "-"

        print(f"| {name} | " + " | ".join(cell(k) for k in cols) + " | "
              + ratio("kiln_eager", "hand_eager", "{:.3f}") + " | "
              + ratio("hand_eager", "kiln_captured", "{:.2f}x") + " | "
              + ratio("lightning", "kiln_eager", "{:.2f}x") + " | "
              + ratio("lightning", "kiln_captured", "{:.2f}x") + " |")


if __name__ == "__main__":
    main()
