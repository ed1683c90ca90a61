/// @file tokenizer/sentencepiece_model.hpp
/// @brief Reads a sentencepiece ModelProto (tokenizer.model) from the protobuf wire format, checking every length.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "polyalpaca/core/error.hpp"
#include "polyalpaca/tokenizer/file_bytes.hpp"
#include "polyalpaca/tokenizer/sentencepiece_bpe.hpp"
#include "polyalpaca/tokenizer/utf8.hpp"

namespace polyalpaca::tokenizer {

namespace detail {

/// Protobuf wire-format fields of one message; offsets are kept relative to the whole file for messages.
class ProtoReader {
public:
    ProtoReader(std::string_view data, std::size_t base, std::string const& origin, std::string_view message)
        : data_(data), base_(base), origin_(&origin), message_(message) {}

    bool done() const { return pos_ >= data_.size(); }
    std::size_t offset() const { return base_ + pos_; }

    /// The next field's number and wire type.
    std::pair<std::uint32_t, std::uint32_t> tag() {
        field_offset_ = offset();
        auto const t = varint();
        auto const field = t >> 3;
        if (field == 0 || field > 0x1FFFFFFF) fail_at(field_offset_, "invalid field number ", field);
        return {static_cast<std::uint32_t>(field), static_cast<std::uint32_t>(t & 7)};
    }

    std::uint64_t varint() {
        std::uint64_t value = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos_ >= data_.size()) fail_at(offset(), "truncated varint");
            auto const byte = static_cast<unsigned char>(data_[pos_++]);
            value |= std::uint64_t(byte & 0x7F) << shift;
            if (!(byte & 0x80)) return value;
        }
        fail_at(offset(), "varint longer than 10 bytes");
    }

    std::string_view bytes() {
        auto const start = offset();
        auto const length = varint();
        if (length > data_.size() - pos_)
            fail_at(start, "length ", length, " runs past the end of the ", message_, " (", data_.size() - pos_,
                    " bytes left)");
        auto const out = data_.substr(pos_, length);
        pos_ += length;
        return out;
    }

    float fixed32_float() {
        if (data_.size() - pos_ < 4) fail_at(offset(), "truncated 32-bit value");
        std::uint32_t bits = 0;
        for (int i = 3; i >= 0; --i) bits = (bits << 8) | static_cast<unsigned char>(data_[pos_ + std::size_t(i)]);
        pos_ += 4;
        float value;
        std::memcpy(&value, &bits, 4);
        return value;
    }

    /// A field of the expected wire type, else an Error naming the field.
    void expect(std::uint32_t wire, std::uint32_t want, std::string_view name) const {
        if (wire != want) fail_at(field_offset_, "field '", name, "' has wire type ", wire, ", expected ", want);
    }

    std::uint64_t varint_field(std::uint32_t wire, std::string_view name) {
        expect(wire, 0, name);
        return varint();
    }
    std::string string_field(std::uint32_t wire, std::string_view name) {
        expect(wire, 2, name);
        return utf8_string(name);
    }

    void skip(std::uint32_t wire) {
        switch (wire) {
            case 0:
                varint();
                return;
            case 1:
                if (data_.size() - pos_ < 8) fail_at(offset(), "truncated 64-bit value");
                pos_ += 8;
                return;
            case 2:
                bytes();
                return;
            case 5:
                if (data_.size() - pos_ < 4) fail_at(offset(), "truncated 32-bit value");
                pos_ += 4;
                return;
            default:
                fail_at(field_offset_, "unsupported wire type ", wire);
        }
    }

    std::string utf8_string(std::string_view name) {
        auto const at = offset();
        auto s = bytes();
        auto const bad = utf8::first_invalid(s);
        if (bad != std::string_view::npos) fail_at(at, "field '", name, "' is not valid UTF-8");
        return std::string(s);
    }

    template <class... Parts>
    [[noreturn]] void fail_at(std::size_t at, Parts const&... parts) const {
        fail(*origin_, ": byte offset ", at, " (", message_, "): ", parts...);
    }

private:
    std::string_view data_;
    std::size_t base_;
    std::string const* origin_;
    std::string_view message_;
    std::size_t pos_ = 0;
    std::size_t field_offset_ = 0;
};

inline ProtoReader sub_reader(ProtoReader& parent, std::string const& origin, std::string_view message) {
    auto const payload = parent.bytes();
    return ProtoReader(payload, parent.offset() - payload.size(), origin, message);
}

}  // namespace detail

namespace detail {

inline void read_piece(ProtoReader r, SentencePieceSpec& spec) {
    std::string text;
    float score = 0.0f;
    std::uint64_t type = 1;  // proto default: NORMAL
    bool has_text = false;
    while (!r.done()) {
        auto const [field, wire] = r.tag();
        if (field == 1) {
            text = r.string_field(wire, "piece");
            has_text = true;
        } else if (field == 2) {
            r.expect(wire, 5, "score");
            score = r.fixed32_float();
        } else if (field == 3) {
            type = r.varint_field(wire, "type");
            if (type < 1 || type > 6) r.fail_at(r.offset(), "unknown piece type ", type);
        } else {
            r.skip(wire);
        }
    }
    if (!has_text) r.fail_at(r.offset(), "piece ", spec.pieces.size(), " has no text");
    spec.pieces.push_back(std::move(text));
    spec.scores.push_back(score);
    spec.types.push_back(static_cast<PieceType>(type));
}

struct TrainerFlags {
    std::uint64_t model_type = 1;  // proto default: UNIGRAM
    bool whitespace_as_suffix = false;
};

inline void read_trainer_spec(ProtoReader r, SentencePieceSpec& spec, TrainerFlags& flags) {
    while (!r.done()) {
        auto const [field, wire] = r.tag();
        switch (field) {
            case 3:
                flags.model_type = r.varint_field(wire, "model_type");
                break;
            case 24:
                flags.whitespace_as_suffix = r.varint_field(wire, "treat_whitespace_as_suffix") != 0;
                break;
            case 35:
                spec.byte_fallback = r.varint_field(wire, "byte_fallback") != 0;
                break;
            case 44:
                spec.unk_surface = r.string_field(wire, "unk_surface");
                break;
            case 45:
                spec.unk_piece = r.string_field(wire, "unk_piece");
                break;
            case 46:
                spec.bos_piece = r.string_field(wire, "bos_piece");
                break;
            case 47:
                spec.eos_piece = r.string_field(wire, "eos_piece");
                break;
            case 48:
                spec.pad_piece = r.string_field(wire, "pad_piece");
                break;
            default:
                r.skip(wire);
        }
    }
}

/// Reads the NormalizerSpec; returns whether it carries a character map (precompiled or rules) and its name.
inline bool read_normalizer_spec(ProtoReader r, SentencePieceSpec& spec, std::string& name) {
    bool mapped = false;
    while (!r.done()) {
        auto const [field, wire] = r.tag();
        switch (field) {
            case 1:
                name = r.string_field(wire, "name");
                break;
            case 2:
                r.expect(wire, 2, "precompiled_charsmap");
                mapped |= !r.bytes().empty();
                break;
            case 3:
                spec.add_dummy_prefix = r.varint_field(wire, "add_dummy_prefix") != 0;
                break;
            case 4:
                spec.remove_extra_whitespaces = r.varint_field(wire, "remove_extra_whitespaces") != 0;
                break;
            case 5:
                spec.escape_whitespaces = r.varint_field(wire, "escape_whitespaces") != 0;
                break;
            case 6:
                r.expect(wire, 2, "normalization_rule_tsv");
                mapped |= !r.bytes().empty();
                break;
            default:
                r.skip(wire);
        }
    }
    return mapped;
}

}  // namespace detail

/// The ModelProto of a BPE sentencepiece model; anything this reader cannot reproduce exactly (other model types,
/// precompiled or rule-based normalization maps, whitespace as suffix) is an Error.
inline SentencePieceSpec parse_sentencepiece_model(std::string_view data, std::string const& origin) {
    SentencePieceSpec spec;
    spec.origin = origin;
    detail::TrainerFlags trainer;
    bool mapped = false;
    std::string normalizer_name;
    detail::ProtoReader model(data, 0, origin, "ModelProto");
    while (!model.done()) {
        auto const [field, wire] = model.tag();
        if (field == 1) {
            model.expect(wire, 2, "pieces");
            detail::read_piece(detail::sub_reader(model, origin, "ModelProto.pieces"), spec);
        } else if (field == 2) {
            model.expect(wire, 2, "trainer_spec");
            detail::read_trainer_spec(detail::sub_reader(model, origin, "TrainerSpec"), spec, trainer);
        } else if (field == 3) {
            model.expect(wire, 2, "normalizer_spec");
            mapped |= detail::read_normalizer_spec(detail::sub_reader(model, origin, "NormalizerSpec"), spec,
                                                   normalizer_name);
        } else {
            model.skip(wire);
        }
    }
    static constexpr char const* type_names[] = {"?", "UNIGRAM", "BPE", "WORD", "CHAR"};
    if (trainer.model_type != 2)
        fail(origin, ": sentencepiece model type ", trainer.model_type < 5 ? type_names[trainer.model_type] : "unknown",
             " (", trainer.model_type, ") is not supported; only BPE models are");
    if (spec.pieces.empty()) fail(origin, ": the model has no pieces");
    if (mapped)
        fail(origin, ": normalizer '", normalizer_name,
             "' needs a precompiled or rule-based character map, which is not supported (only identity)");
    if (trainer.whitespace_as_suffix) fail(origin, ": treat_whitespace_as_suffix is not supported");
    return spec;
}

inline SentencePieceSpec read_sentencepiece_model(std::filesystem::path const& path) {
    return parse_sentencepiece_model(read_file_bytes(path), path.string());
}

}  // namespace polyalpaca::tokenizer
