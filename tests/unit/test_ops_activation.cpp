// The activations of the MLP (ops::activate, ops::activate_mul) against their definitions
// evaluated in double with glibc's tanh, exp and erf: transformers' GELU (tanh form), exact
// GELU and SiLU. Tolerance: 4e-6 relative plus 1e-12 absolute, over the float range that
// reaches an activation, tails and signed zeros included. The relative part is a few float
// roundings, and in GELU's negative tail the rounding of the float argument z (as in
// transformers' float32 GELU) times |2z|, which e^-2z turns into relative error. The absolute
// part is the far tail, where 1 + tanh cancels in the reference itself (torch returns 0 too).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "runtime/ops.h"

namespace qllm {
namespace {

double reference(Activation act, double x) {
  switch (act) {
    case Activation::GeluTanh:
      return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case Activation::GeluErf: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case Activation::Silu: return x / (1.0 + std::exp(-x));
  }
  return 0.0;
}

std::vector<float> inputs() {
  std::vector<float> xs = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-7f, -1e-7f, 80.0f, -80.0f, 100.0f, -100.0f, 1e4f, -1e4f};
  for (int i = -40000; i <= 40000; ++i) xs.push_back(static_cast<float>(i) * 5e-4f);  // [-20, 20]
  return xs;
}

void expect_close(Activation act, const std::vector<float>& x, const std::vector<float>& y, const float* up) {
  int bad = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double ref = reference(act, x[i]) * (up ? up[i] : 1.0f);
    if (!(std::fabs(y[i] - ref) <= 4e-6 * std::fabs(ref) + 1e-12) && bad++ < 5)
      ADD_FAILURE() << "act " << static_cast<int>(act) << " x=" << x[i] << ": " << y[i] << " vs " << ref;
  }
}

TEST(Activation, MatchesDefinitions) {
  for (Activation act : {Activation::GeluTanh, Activation::GeluErf, Activation::Silu}) {
    const auto x = inputs();
    auto y = x;
    ops::activate(act, y.data(), static_cast<int64_t>(y.size()));
    expect_close(act, x, y, nullptr);

    std::vector<float> up(x.size());
    for (std::size_t i = 0; i < up.size(); ++i) up[i] = 0.5f + static_cast<float>(i % 7);
    auto g = x;
    ops::activate_mul(act, g.data(), up.data(), static_cast<int64_t>(g.size()));
    expect_close(act, x, g, up.data());
  }
}

}  // namespace
}  // namespace qllm
