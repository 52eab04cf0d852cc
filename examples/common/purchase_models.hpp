// SPDX-License-Identifier: Apache-2.0
// The CDNOW seed models, each defined once as an nn::Chain: what purchase_lstm,
// purchase_attention and intent_conv1d train, and what serve and the benchmarks rebuild.
//
//   purchase_lstm_model        Embedding(85, 32, padding 0) -> Lstm(32 -> 64)
//                              -> GlobalLastPool1d (h at the last valid step) -> Dense(64 -> 1)
//   purchase_attention_model   Embedding(85, 32, padding 0) + PositionEmbedding(max_len, 32)
//                              -> x + MultiHeadSelfAttention(32, 4 heads)(x), keys masked past
//                                 each sequence's length (a Transformer block's residual)
//                              -> GlobalMeanPool1d over the valid steps -> Dense(32 -> 1)
//   intent_conv1d_model        Embedding(85, 32, padding 0) -> Conv1d(32 -> 64, kernel 3,
//                              padding 1) -> ReLU -> GlobalMaxPool1d over the valid steps
//                              -> Dense(64 -> 1)
//
// Each reads an nn::TokenBatch of CDNOW purchase tokens (cdnow_sequences.hpp) and gives one
// logit per customer: P(repeat purchase in the holdout) = sigmoid(logit). The blocks are named
// ("embedding", "lstm", "pool", "head"), so the model files' tensors are "lstm.weight_ih_l0" etc.
//
// The blocks are built one after the other (not as arguments of one call, whose evaluation
// order C++ leaves open), so a seed gives the same weights with every compiler.
#pragma once

#include <string>
#include <utility>

#include "cdnow_sequences.hpp"
#include "uvp/core/random.hpp"
#include "uvp/nn/activations.hpp"
#include "uvp/nn/attention.hpp"
#include "uvp/nn/chain.hpp"
#include "uvp/nn/conv1d.hpp"
#include "uvp/nn/dense.hpp"
#include "uvp/nn/embedding.hpp"
#include "uvp/nn/lstm.hpp"
#include "uvp/nn/pooling.hpp"
#include "uvp/nn/position_embedding.hpp"
#include "uvp/nn/residual.hpp"
#include "uvp/nn/sum.hpp"

namespace uvp_examples {

/// Sizes of the seed models (the same as before the models were composed).
struct PurchaseModelSizes {
  static constexpr index embed = 32;          ///< token (and position) embedding width
  static constexpr index lstm_hidden = 64;    ///< purchase_lstm
  static constexpr index heads = 4;           ///< purchase_attention
  static constexpr index conv_channels = 64;  ///< intent_conv1d
  static constexpr index conv_kernel = 3;
};

using PurchaseLstm = uvp::nn::Chain<uvp::nn::Embedding<float>, uvp::nn::Lstm<float>, uvp::nn::GlobalLastPool1d<float>,
                                    uvp::nn::Dense<float>>;

using PurchaseAttention =
    uvp::nn::Chain<uvp::nn::Sum<uvp::nn::Embedding<float>, uvp::nn::PositionEmbedding<float>>,
                   uvp::nn::Residual<uvp::nn::MultiHeadSelfAttention<float>>, uvp::nn::GlobalMeanPool1d<float>,
                   uvp::nn::Dense<float>>;

using IntentConv1d = uvp::nn::Chain<uvp::nn::Embedding<float>, uvp::nn::Conv1d<float>, uvp::nn::Relu<float>,
                                    uvp::nn::GlobalMaxPool1d<float>, uvp::nn::Dense<float>>;

/// Embedding -> LSTM -> last hidden state -> Dense. Blocks "embedding", "lstm", "pool", "head".
inline PurchaseLstm purchase_lstm_model(uvp::Rng& rng) {
  using S = PurchaseModelSizes;
  uvp::nn::Embedding<float> embedding(Vocabulary::size, S::embed, rng, Vocabulary::padding);
  uvp::nn::Lstm<float> lstm(S::embed, S::lstm_hidden, rng);
  uvp::nn::Dense<float> head(S::lstm_hidden, 1, rng);
  PurchaseLstm model(std::move(embedding), std::move(lstm), uvp::nn::GlobalLastPool1d<float>(), std::move(head));
  model.set_names({"embedding", "lstm", "pool", "head"});
  return model;
}

/// Token + learned position embeddings -> residual self-attention -> mean over the valid steps
/// -> Dense. max_len: the longest sequence (CdnowDataset::max_len); the position table has that
/// many rows. Blocks "embeddings" (its children "embeddings.0", "embeddings.1"), "attention",
/// "pool", "head".
inline PurchaseAttention purchase_attention_model(index max_len, uvp::Rng& rng) {
  using S = PurchaseModelSizes;
  uvp::nn::Embedding<float> tokens(Vocabulary::size, S::embed, rng, Vocabulary::padding);
  uvp::nn::PositionEmbedding<float> positions(max_len, S::embed, rng);
  uvp::nn::MultiHeadSelfAttention<float> attention(S::embed, S::heads, rng);
  uvp::nn::Dense<float> head(S::embed, 1, rng);
  PurchaseAttention model(uvp::nn::Sum(std::move(tokens), std::move(positions)),
                          uvp::nn::Residual(std::move(attention)), uvp::nn::GlobalMeanPool1d<float>(),
                          std::move(head));
  model.set_names({"embeddings", "attention", "pool", "head"});
  return model;
}

/// Embedding -> Conv1d (same-length output) -> ReLU -> max over the valid steps -> Dense.
/// Blocks "embedding", "conv", "relu", "pool", "head".
inline IntentConv1d intent_conv1d_model(uvp::Rng& rng) {
  using S = PurchaseModelSizes;
  uvp::nn::Embedding<float> embedding(Vocabulary::size, S::embed, rng, Vocabulary::padding);
  uvp::nn::Conv1d<float> conv(S::embed, S::conv_channels, S::conv_kernel, rng,
                              {/*stride=*/1, /*padding=*/1, /*bias=*/true});
  uvp::nn::Dense<float> head(S::conv_channels, 1, rng);
  IntentConv1d model(std::move(embedding), std::move(conv), uvp::nn::Relu<float>(), uvp::nn::GlobalMaxPool1d<float>(),
                     std::move(head));
  model.set_names({"embedding", "conv", "relu", "pool", "head"});
  return model;
}

}  // namespace uvp_examples
