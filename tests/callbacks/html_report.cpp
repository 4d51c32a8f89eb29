// The report is checked three ways: its text (what it holds, that it needs nothing outside
// itself), an XML parser (it is well-formed), and Debian's chromium, which renders it headless
// to a PNG that Python's PIL (python3-pil, which python3-torchvision depends on) then inspects.
#include "../reference/reference.hpp"
#include "loggers.hpp"

#include <kiln/callbacks/html_report.hpp>

#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace kiln::test;

static_assert(kiln::Callback<kiln::html_report>);

namespace {

std::size_t count(const std::string& text, std::string_view what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

// Reads the report at the end of every epoch: it must already be there, whole.
struct read_report_each_epoch {
  fs::path path;
  std::vector<std::string>* seen;
  void on_epoch_end(kiln::context& ctx) {
    const auto html = read_file(path);
    seen->push_back(html);
    CHECK(html.find("Epoch " + std::to_string(ctx.epoch + 1) + " of 3 done") != std::string::npos);
    CHECK(html.ends_with("</html>\n"));
  }
};

const std::vector<std::vector<double>> matrix{{20, 1, 0}, {2, 18, 3}, {0, 4, 16}};

fs::path report_of_a_fit(const fs::path& dir) {
  const auto path = dir / "run" / "report.html";
  std::vector<std::string> seen;
  short_fit(inject_confusion_matrix{matrix},
            kiln::html_report{.path = path, .title = "toy <run> & co",
                              .hyperparameters = {{"optimizer", "sgd"}, {"lr", "0.1"}, {"epochs", "3"}}},
            read_report_each_epoch{path, &seen});
  CHECK(seen.size() == epochs);
  return path;
}

}  // namespace

TEST_CASE("kiln::html_report writes a self-contained, well-formed page of curves and the confusion matrix") {
  const scratch_directory dir{"html_report"};
  const auto path = report_of_a_fit(dir.path);
  const auto html = read_file(path);

  CHECK(html.starts_with("<!DOCTYPE html>"));
  CHECK(html.find("Finished: 3 epochs, 12 optimizer steps.") != std::string::npos);
  CHECK(html.find("<title>toy &lt;run&gt; &amp; co</title>") != std::string::npos);
  CHECK(html.find("<tr><th>optimizer</th><td>sgd</td></tr>") != std::string::npos);
  // Nothing from outside: no script, no link, no image or font to fetch.
  for (const auto* outside : {"<script", "<link", "<img", "src=", "href=", "url(", "@import"}) {
    CAPTURE(outside);
    CHECK(html.find(outside) == std::string::npos);
  }
  // Three charts (loss, accuracy, learning rate) and one heatmap.
  CHECK(count(html, "<svg") == 4);
  CHECK(html.find("<figcaption>loss</figcaption>") != std::string::npos);
  CHECK(html.find("<figcaption>accuracy</figcaption>") != std::string::npos);
  CHECK(html.find("<figcaption>learning rate <span>") != std::string::npos);
  CHECK(html.find("learning rate (log scale)") != std::string::npos);  // 0.0025 to 0.1: a factor of 40
  CHECK(count(html, "<polyline") == 2 + 1 + 2);
  CHECK(html.find("Validation confusion matrix") != std::string::npos);
  CHECK(html.find(">predicted class</text>") != std::string::npos);
  CHECK(html.find(">true class</text>") != std::string::npos);
  for (const auto& row : matrix) {
    for (const double cell : row) CHECK(html.find(">" + kiln::detail::format_number(cell) + "</text>") != std::string::npos);
  }
  CHECK(html.find("<title>true 1, predicted 2: 3</title>") != std::string::npos);

  const auto [status, output] = run_command(
      kiln::test::python() + " -c 'import sys, xml.etree.ElementTree as ET; root = ET.parse(sys.argv[1]).getroot(); "
      "print(sum(1 for e in root.iter() if e.tag.endswith(\"svg\")))' '" + path.string() + "' 2>&1");
  INFO(output);
  CHECK(status == 0);
  CHECK(output == "4\n");
}

TEST_CASE("the HTML report renders in headless chromium: a full, coloured page") {
  const auto [found, chromium] = run_command("command -v chromium || command -v chromium-browser");
  REQUIRE_MESSAGE(found == 0, "chromium is not installed; scripts/setup.sh installs Debian's chromium, which this "
                              "test needs to render the report (apt-get install chromium)");
  const scratch_directory dir{"html_screenshot"};
  const auto path = report_of_a_fit(dir.path);
  const auto png = dir.path / "report.png";
  const std::string command =
      chromium.substr(0, chromium.find('\n')) +
      " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking"
      " --disable-component-update --disable-sync --hide-scrollbars --user-data-dir='" + (dir.path / "profile").string() +
      "' --screenshot='" + png.string() + "' --window-size=1200,1600 'file://" + fs::absolute(path).string() +
      "' > '" + (dir.path / "chromium.log").string() + "' 2>&1";
  {
    const auto [rendered, ignored] = run_command(command);
    INFO("chromium's output:\n", read_file(dir.path / "chromium.log"));
    REQUIRE(rendered == 0);
    REQUIRE(fs::exists(png));
  }
  CHECK(fs::file_size(png) > 20'000);

  // Size, how much is not white, and how much is in the curves' and the heatmap's colours.
  const auto [inspected, numbers] = run_command(
      kiln::test::python() + " -c 'import sys\n"
      "from PIL import Image\n"
      "im = Image.open(sys.argv[1]).convert(\"RGB\")\n"
      "px = list(im.getdata())\n"
      "near = lambda c, t: sum(abs(a - b) for a, b in zip(c, t)) < 60\n"
      "print(im.width, im.height, sum(1 for p in px if sum(p) < 720), sum(1 for p in px if near(p, (0, 114, 178))),"
      " sum(1 for p in px if near(p, (213, 94, 0))), sum(1 for p in px if near(p, (8, 48, 107))))' '" +
      png.string() + "' 2>&1");
  REQUIRE_MESSAGE(inspected == 0, "PIL (python3-pil) could not read the screenshot: ", numbers);
  std::istringstream in(numbers);
  long width = 0, height = 0, not_white = 0, blue = 0, vermilion = 0, heatmap = 0;
  in >> width >> height >> not_white >> blue >> vermilion >> heatmap;
  INFO("pixels: ", width, "x", height, ", not white ", not_white, ", blue ", blue, ", vermilion ", vermilion,
       ", dark heatmap blue ", heatmap);
  CHECK(width == 1200);
  CHECK(height == 1600);
  CHECK(not_white > width * height / 50);  // text, axes, curves: well over 2 % of the page
  CHECK(blue > 300);                       // the first curve of each chart
  CHECK(vermilion > 300);                  // the second
  CHECK(heatmap > 1000);                   // the confusion matrix's darkest cells

  // Kept for a person to look at, outside any source tree whatever directory the test runs in.
  const auto kept = fs::temp_directory_path() / "kiln_html_report_screenshot.png";
  fs::copy_file(png, kept, fs::copy_options::overwrite_existing);
  MESSAGE("the rendered report: ", kept.string());
}
