// BPE merging: rank-ordered merges over the bytes (byte-level BPE) or the characters
// (SentencePiece-style BPE, with byte fallback) of one pre-token, with a thread-safe word
// cache. Internal to steer::Tokenizer.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <queue>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace steer {
namespace detail {

/// The merge table and alphabet of a BPE model, and the merge loop of Hugging Face
/// `tokenizers` (models/bpe/word.rs): repeatedly merge the adjacent pair with the lowest rank
/// (leftmost on ties) until no pair has a merge. O(n log n) per word.
///
/// Two alphabets: byte-level (each byte of the pre-token is one symbol, the token of its
/// GPT-2 character) and characters (each UTF-8 character is one symbol, the token spelled by
/// it; a character without one becomes its `<0xNN>` byte tokens when the model has
/// byte_fallback, else the unk token).
class BytePairEncoder {
 public:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };

  /// Byte-level alphabet: `byte_ids[b]` is the vocabulary id of the one-character token of
  /// byte b, or -1. `unk_id` is the id for bytes without a token, or -1 to drop them (as
  /// Hugging Face does when the model has no unk_token).
  BytePairEncoder(std::array<int32_t, 256> byte_ids,
                  std::unordered_map<uint64_t, Merge> merges, int32_t unk_id, bool fuse_unk)
      : byte_ids_(byte_ids),
        merges_(std::move(merges)),
        unk_id_(unk_id),
        fuse_unk_(fuse_unk),
        cache_(std::make_shared<Cache>()) {}

  /// Character alphabet: `char_ids` maps each one-character token to its id; `fallback_ids[b]`
  /// is the id of the token `<0xNN>` of byte b (all -1 without byte_fallback).
  BytePairEncoder(std::unordered_map<std::string, int32_t> char_ids,
                  std::array<int32_t, 256> fallback_ids,
                  std::unordered_map<uint64_t, Merge> merges, int32_t unk_id, bool fuse_unk)
      : byte_ids_(fallback_ids),
        char_ids_(std::move(char_ids)),
        characters_(true),
        merges_(std::move(merges)),
        unk_id_(unk_id),
        fuse_unk_(fuse_unk),
        cache_(std::make_shared<Cache>()) {}

  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  /// Appends the ids of the pre-token `bytes[0, size)` to `out`, through the cache.
  void encode(const char* bytes, std::size_t size, std::vector<int64_t>& out) const {
    const bool cacheable = size <= kMaxCachedWordBytes;
    std::string key;
    if (cacheable) {
      key.assign(bytes, size);
      std::shared_lock<std::shared_mutex> lock(cache_->mutex);
      const auto it = cache_->words.find(key);
      if (it != cache_->words.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int32_t> ids = merge_word(bytes, size);
    out.insert(out.end(), ids.begin(), ids.end());
    if (cacheable) {
      std::unique_lock<std::shared_mutex> lock(cache_->mutex);
      if (cache_->words.size() < kMaxCachedWords) cache_->words.emplace(std::move(key), std::move(ids));
    }
  }

  /// The merge loop without the cache.
  std::vector<int32_t> merge_word(const char* bytes, std::size_t size) const {
    struct Symbol {
      int32_t id;
      int32_t prev;
      int32_t next;
      bool alive;
    };
    std::vector<Symbol> symbols;
    symbols.reserve(size);
    const auto add = [&](int32_t id) {
      const auto index = static_cast<int32_t>(symbols.size());
      symbols.push_back({id, index - 1, index + 1, true});
    };
    if (characters_) {
      for (int32_t id : initial_characters(bytes, size)) add(id);
    } else {
      for (std::size_t i = 0; i < size; ++i) {
        int32_t id = byte_ids_[static_cast<unsigned char>(bytes[i])];
        if (id < 0) {
          if (unk_id_ < 0) continue;
          if (fuse_unk_ && !symbols.empty() && symbols.back().id == unk_id_) continue;
          id = unk_id_;
        }
        add(id);
      }
    }
    if (symbols.empty()) return {};
    symbols.back().next = -1;

    struct Candidate {
      int32_t rank;
      int32_t pos;
      int32_t new_id;
      bool operator>(const Candidate& o) const {
        return rank != o.rank ? rank > o.rank : pos > o.pos;
      }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
    const auto push_pair = [&](int32_t left) {
      const int32_t right = symbols[static_cast<std::size_t>(left)].next;
      if (right < 0) return;
      const auto it = merges_.find(pair_key(symbols[static_cast<std::size_t>(left)].id,
                                            symbols[static_cast<std::size_t>(right)].id));
      if (it != merges_.end()) queue.push({it->second.rank, left, it->second.new_id});
    };
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) push_pair(i);

    while (!queue.empty()) {
      const Candidate top = queue.top();
      queue.pop();
      Symbol& left = symbols[static_cast<std::size_t>(top.pos)];
      if (!left.alive || left.next < 0) continue;
      Symbol& right = symbols[static_cast<std::size_t>(left.next)];
      // Stale entry: one of the two symbols changed since the pair was queued.
      const auto it = merges_.find(pair_key(left.id, right.id));
      if (it == merges_.end() || it->second.new_id != top.new_id) continue;
      left.id = top.new_id;
      right.alive = false;
      left.next = right.next;
      if (right.next >= 0) symbols[static_cast<std::size_t>(right.next)].prev = top.pos;
      if (left.prev >= 0) push_pair(left.prev);
      push_pair(top.pos);
    }
    std::vector<int32_t> ids;
    for (int32_t i = 0; i >= 0; i = symbols[static_cast<std::size_t>(i)].next) {
      ids.push_back(symbols[static_cast<std::size_t>(i)].id);
    }
    return ids;
  }

 private:
  /// The symbols of a word in the character alphabet, before merging, as BPE::merge_word in
  /// `tokenizers` makes them: a pending unk is written when the next known character comes
  /// (byte-fallback tokens do not write it) and, with fuse_unk, absorbs the following unknown
  /// characters.
  std::vector<int32_t> initial_characters(const char* bytes, std::size_t size) const {
    std::vector<int32_t> ids;
    bool unk_pending = false;
    std::size_t i = 0;
    std::string ch;
    while (i < size) {
      std::size_t len = 1;
      const auto lead = static_cast<unsigned char>(bytes[i]);
      if (lead >= 0xF0) {
        len = 4;
      } else if (lead >= 0xE0) {
        len = 3;
      } else if (lead >= 0xC0) {
        len = 2;
      }
      ch.assign(bytes + i, len);
      i += len;
      const auto it = char_ids_.find(ch);
      if (it != char_ids_.end()) {
        if (unk_pending) ids.push_back(unk_id_);
        unk_pending = false;
        ids.push_back(it->second);
        continue;
      }
      bool all_bytes = true;
      for (char b : ch) all_bytes = all_bytes && byte_ids_[static_cast<unsigned char>(b)] >= 0;
      if (all_bytes) {
        for (char b : ch) ids.push_back(byte_ids_[static_cast<unsigned char>(b)]);
        continue;
      }
      if (unk_id_ < 0) continue;
      if (unk_pending && !fuse_unk_) ids.push_back(unk_id_);
      unk_pending = true;
    }
    if (unk_pending) ids.push_back(unk_id_);
    return ids;
  }

  /// Words up to this many bytes are cached; at most kMaxCachedWords of them (then the cache
  /// stops growing; it is never evicted).
  static constexpr std::size_t kMaxCachedWordBytes = 256;
  static constexpr std::size_t kMaxCachedWords = 1 << 17;

  struct Cache {
    std::shared_mutex mutex;
    std::unordered_map<std::string, std::vector<int32_t>> words;
  };

  std::array<int32_t, 256> byte_ids_;  // byte-level tokens, or byte-fallback tokens
  std::unordered_map<std::string, int32_t> char_ids_;
  bool characters_ = false;
  std::unordered_map<uint64_t, Merge> merges_;
  int32_t unk_id_;
  bool fuse_unk_;
  // Shared by copies of the encoder: the cache depends only on the immutable merge table.
  std::shared_ptr<Cache> cache_;
};

}  // namespace detail
}  // namespace steer
