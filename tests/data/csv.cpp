#include "../support.hpp"

#include <kiln/data/csv.hpp>

#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;

using kiln::test::contains;

namespace {
fs::path write_text(const std::string& name, const std::string& text) {
  auto path = fs::temp_directory_path() / ("kiln_csv_" + std::to_string(::getpid()) + "_" + name + ".csv");
  std::ofstream(path, std::ios::binary) << text;
  return path;
}
// The message read_csv throws for `text`, or "no error".
std::string error_of(const std::string& text, const kiln::data::csv_options& options = {}) {
  const auto path = write_text("bad", text);
  const auto message = kiln::test::message_of([&] { kiln::data::read_csv(path, options); });
  fs::remove(path);
  return message;
}
}  // namespace

TEST_CASE("read_csv reads a header and rows of numbers into a float tensor") {
  const auto path = write_text("ok", "a,\"b, quoted\",c\r\n1,-2.5,+3e2\r\n\r\n 4 ,5,6\n");
  const auto table = kiln::data::read_csv(path);
  CHECK(table.columns == std::vector<std::string>{"a", "b, quoted", "c"});
  CHECK(table.values.dtype() == torch::kFloat32);
  CHECK(torch::equal(table.values, torch::tensor({{1.0f, -2.5f, 300.0f}, {4.0f, 5.0f, 6.0f}})));
  CHECK(torch::equal(table.column("c"), torch::tensor({300.0f, 6.0f})));
  CHECK(table.index_of("b, quoted") == 1);
  const auto exact = kiln::data::read_csv(path, {.dtype = torch::kFloat64});
  CHECK(exact.values.dtype() == torch::kFloat64);
  CHECK(exact.values[0][1].item<double>() == -2.5);
  CHECK(contains(kiln::test::message_of([&] { (void)table.column("d"); }),
                 "no column is called 'd'; the columns are 'a', 'b, quoted', 'c'"));
  fs::remove(path);
}

TEST_CASE("read_csv names the file, line and column of what is wrong") {
  CHECK(contains(error_of(""), "the file is empty; expected a header line"));
  CHECK(contains(error_of("\n\n"), "the file is empty"));
  CHECK(contains(error_of("a,b\n"), "the file has a header but no rows of numbers"));
  CHECK(contains(error_of("a,b\n1,2\n3\n"), "line 3 has 1 field but the header names 2 columns"));
  CHECK(contains(error_of("a,b\n1,2,3\n"), "line 2 has 3 fields but the header names 2 columns"));
  CHECK(contains(error_of("a,b\n1,2\n3,x7\n"), "line 3, column 2 ('b'): 'x7' is not a number"));
  CHECK(contains(error_of("a,b\n1,2\n3,7x\n"), "line 3, column 2 ('b'): '7x' is not a number"));
  CHECK(contains(error_of("a,b\n1,+-2\n"), "'+-2' is not a number"));
  CHECK(contains(error_of("a,b\n1,\n"), "line 2, column 2 ('b') is empty; every cell must hold a number"));
  CHECK(contains(error_of("a,b\n1,1e400\n"), "'1e400' is out of the range of a double"));
  CHECK(contains(error_of("a,b\n1,1e39\n"), "'1e39' is too large for float32 (read with .dtype = torch::kFloat64)"));
  CHECK(error_of("a,b\n1,1e39\n", {.dtype = torch::kFloat64}) == "no error");
  CHECK(contains(error_of("a,b\n1,nan\n"), "line 2, column 2 ('b'): 'nan' is not a finite number"));
  CHECK(error_of("a,b\n1,nan\n2,-inf\n", {.finite_only = false}) == "no error");
  CHECK(contains(error_of("a,a\n1,2\n"), "line 1: columns 1 and 2 are both called 'a'"));
  CHECK(contains(error_of("a,b\n1,\"2\n"), "line 2: a quoted field is never closed"));
  CHECK(contains(error_of("a,b\n1,\"2\"3\n"), "line 2: a closing '\"' is followed by more text"));
  CHECK(contains(error_of("a\n1\n", {.dtype = torch::kInt64}), "dtype must be torch::kFloat32 or torch::kFloat64"));
  const std::string missing = "/nonexistent/kiln/table.csv";
  CHECK(kiln::test::message_of([&] { kiln::data::read_csv(missing); }) ==
        "kiln::data::read_csv('/nonexistent/kiln/table.csv'): cannot open the file");
  // Every message starts with the call and the file.
  CHECK(error_of("a\nq\n").starts_with("kiln::data::read_csv('"));
}

TEST_CASE("a quoted field may hold a line break; the line numbers still count lines of the file") {
  CHECK(contains(error_of("\"a\nb\",c\n1,2\n3,?\n"), "line 4, column 2 ('c'): '?' is not a number"));
  std::vector<std::string> fields;
  kiln::detail::csv_reader reader{"x,\"say \"\"hi\"\"\"\r\n"};
  REQUIRE(reader.next(fields) == kiln::detail::csv_status::record);
  CHECK(fields == std::vector<std::string>{"x", "say \"hi\""});
  CHECK(reader.next(fields) == kiln::detail::csv_status::end);
}

TEST_CASE("the breast-cancer table reads as 569 rows of 30 features and a target") {
  const fs::path path = KILN_TEST_DATA_DIR "/breast_cancer.csv";
  REQUIRE_MESSAGE(fs::exists(path), "run scripts/setup.sh to prepare the data");
  const auto table = kiln::data::read_csv(path);
  CHECK(table.values.sizes() == torch::IntArrayRef{569, 31});
  CHECK(table.columns.front() == "mean radius");
  CHECK(table.index_of("target") == 30);
  // scikit-learn's counts: 212 malignant (0), 357 benign (1).
  CHECK(table.column("target").sum().item<double>() == 357.0);
  CHECK(table.values[0][0].item<float>() == 17.99f);
}
