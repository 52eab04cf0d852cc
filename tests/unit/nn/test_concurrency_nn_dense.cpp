// SPDX-License-Identifier: Apache-2.0
// uvp::nn::Sequential::forward is const: threads sharing one model, each with its own context,
// get the serial results (run under ThreadSanitizer by the tsan preset).
#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include "uvp/nn/sequential.hpp"

TEST_CASE("threads share one MLP (Dense, LayerNorm, Gelu, Dropout, Softmax) with a context each") {
  uvp::Rng rng(4);
  uvp::nn::MlpOptions o;
  o.layer_norm = true;
  o.dropout = 0.25;
  auto mlp = uvp::nn::make_mlp<float>({12, 32, 16, 4}, uvp::nn::Activation::gelu, rng, o);
  mlp.add(uvp::nn::Softmax<float>());
  const int threads = 4;
  std::vector<uvp::Matrix<float>> X, expected(threads), got(threads);
  for (int t = 0; t < threads; ++t) {
    X.push_back(uvp::Matrix<float>::Random(64 + 8 * t, 12));
    uvp::nn::Sequential<float>::Context ctx(100 + t);  // training mode: the masks come from the seed
    expected[std::size_t(t)] = mlp.forward(X[std::size_t(t)], ctx);
  }
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      uvp::nn::Sequential<float>::Context ctx(100 + t);
      for (int rep = 0; rep < 20; ++rep) got[std::size_t(t)] = mlp.forward(X[std::size_t(t)], ctx);
    });
  for (auto& th : pool) th.join();
  for (int t = 0; t < threads; ++t) CHECK(got[std::size_t(t)] != expected[std::size_t(t)]);  // later masks differ
  // Same seed, one forward each: equal to the serial result.
  pool.clear();
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      uvp::nn::Sequential<float>::Context ctx(100 + t);
      got[std::size_t(t)] = mlp.forward(X[std::size_t(t)], ctx);
    });
  for (auto& th : pool) th.join();
  for (int t = 0; t < threads; ++t) CHECK(got[std::size_t(t)] == expected[std::size_t(t)]);
}
