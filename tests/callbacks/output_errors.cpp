// Loggers whose output cannot be written say so when the fit begins, before any training, with
// the directory and the system's reason; a full disk later names the file and says it is full.
#include "loggers.hpp"

#include <kiln/callbacks/jsonl_logger.hpp>

#include <string>

using kiln::test::contains;
using kiln::test::message_of;

TEST_CASE("every logger refuses an unwritable output directory when the fit begins") {
  const auto dir = kiln::test::unwritable_directory();
  if (dir.empty()) {
    WARN_MESSAGE(false, "this machine offers no unwritable directory; the test checks nothing");
    return;
  }
  const auto expected = "cannot write in the directory '" + dir.string() + "': ";
  kiln::test::manual_context m;
  // Each throws from on_fit_begin, that is before the first batch trains.
  CHECK(contains(message_of([&] { kiln::csv_logger{.path = dir / "metrics.csv"}.on_fit_begin(m.ctx); }),
                 "kiln::csv_logger: " + expected));
  CHECK(contains(message_of([&] { kiln::jsonl_logger{.path = dir / "metrics.jsonl"}.on_fit_begin(m.ctx); }),
                 "kiln::jsonl_logger: " + expected));
  CHECK(contains(message_of([&] { kiln::html_report{.path = dir / "report.html"}.on_fit_begin(m.ctx); }),
                 "kiln::html_report: " + expected));
  CHECK(contains(message_of([&] { kiln::tensorboard_logger{.log_dir = dir}.on_fit_begin(m.ctx); }),
                 "kiln::tensorboard_logger: cannot create an event file in '" + dir.string() + "': "));
  // A directory below it cannot be created either.
  CHECK(contains(message_of([&] { kiln::csv_logger{.path = dir / "run" / "metrics.csv"}.on_fit_begin(m.ctx); }),
                 "kiln::csv_logger: cannot create the directory '" + (dir / "run").string() + "': "));
  // Through a whole fit: nothing trains.
  int batches = 0;
  struct count_batches {
    int* n;
    void on_batch_end(kiln::context&) { ++*n; }
  };
  CHECK(contains(
      message_of([&] { kiln::test::short_fit(count_batches{&batches}, kiln::csv_logger{.path = dir / "m.csv"}); }),
      "kiln::csv_logger: " + expected));
  CHECK(batches == 0);
}

TEST_CASE("a logger path that is a directory, and a disk that is full") {
  kiln::test::scratch_directory scratch{"output_errors"};
  kiln::test::manual_context m;
  CHECK(contains(message_of([&] { kiln::csv_logger{.path = scratch.path}.on_fit_begin(m.ctx); }),
                 "kiln::csv_logger: '" + scratch.path.string() + "' is a directory; name a file in it"));
  // /dev/full accepts the file being opened and fails every write with ENOSPC.
  if (std::filesystem::exists("/dev/full")) {
    CHECK(contains(message_of([] { kiln::detail::append_to_file("/dev/full", "epoch,step\n", "kiln::csv_logger"); }),
                   "kiln::csv_logger: cannot append to '/dev/full': No space left on device (the disk is full)"));
  }
}

TEST_CASE("write_submission into an unwritable directory names it") {
  const auto dir = kiln::test::unwritable_directory();
  if (dir.empty()) {
    WARN_MESSAGE(false, "this machine offers no unwritable directory; the test checks nothing");
    return;
  }
  CHECK(contains(
      message_of([&] { kiln::write_submission(dir / "submission.csv", torch::tensor({1}), torch::tensor({0})); }),
      "kiln::write_submission: cannot write in the directory '" + dir.string() + "': "));
  CHECK(contains(message_of([] {
                   kiln::write_submission("/nonexistent/kiln/submission.csv", torch::tensor({1}), torch::tensor({0}));
                 }),
                 "the directory '/nonexistent/kiln' does not exist; create it first"));
}
