/// @file io/parameter_io.hpp
/// @brief Moving Parameters between backend memory and files: host copies, HF shapes, adapter tensor names.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "polyalpaca/core/parameter.hpp"
#include "polyalpaca/io/safetensors.hpp"

namespace polyalpaca::io {

/// HF shape of a parameter: vectors (1, n) are stored as [n], matrices as [rows, cols].
template <class T>
std::vector<std::int64_t> hf_shape(Parameter<T> const& p) {
    if (p.rows == 1 && !p.saved_as_matrix) return {p.cols};
    return {p.rows, p.cols};
}

/// True when a file's tensor has the parameter's shape ([n] or [1, n] for a vector).
template <class T>
bool shape_matches(Parameter<T> const& p, TensorInfo const& t) {
    if (t.shape == std::vector<std::int64_t>{p.rows, p.cols}) return true;
    return p.rows == 1 && t.shape == std::vector<std::int64_t>{p.cols};
}

inline std::string shape_string(std::vector<std::int64_t> const& shape) {
    std::string out = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + "]";
}

/// A host copy of a parameter's values.
template <class Backend, class T>
std::vector<T> download(typename Backend::Context& ctx, Parameter<T> const& p) {
    std::vector<T> host(std::size_t(p.size()));
    Backend::download(ctx, p.value, host.data(), host.size());
    return host;
}

/// Host copy as float (what write_safetensors takes).
template <class Backend, class T>
std::vector<float> download_as_float(typename Backend::Context& ctx, Parameter<T> const& p) {
    auto host = download<Backend>(ctx, p);
    if constexpr (std::is_same_v<T, float>)
        return host;
    else
        return std::vector<float>(host.begin(), host.end());
}

/// Reads tensor `t` of `file` into parameter `p` after checking its shape and dtype; `where` names the place.
template <class Backend, class T, class File>
void load_parameter(typename Backend::Context& ctx, Parameter<T>& p, File const& file, TensorInfo const& t,
                    std::string const& where) {
    require(shape_matches(p, t), where, "tensor ", detail::quoted(t.name), " has shape ", shape_string(t.shape),
            ", but ", p.name, " needs ", shape_string(hf_shape(p)));
    require(is_float_dtype(t.dtype), where, "tensor ", detail::quoted(t.name), " has dtype ", dtype_name(t.dtype),
            ", not a float type");
    std::vector<T> host(std::size_t(p.size()));
    file.read(t.name, std::span<T>(host));
    Backend::upload(ctx, host.data(), p.value, host.size());
}

/// "<module>" of an adapter tensor "<module><suffix>", for the first of `suffixes` the name ends with ("" if none).
template <class Suffixes>
std::string adapter_module(std::string_view name, Suffixes const& suffixes) {
    for (std::string_view suffix : suffixes)
        if (name.ends_with(suffix)) return std::string(name.substr(0, name.size() - suffix.size()));
    return "";
}

/// "query_key_value" of "transformer.h.0.self_attention.query_key_value": the name PEFT's target_modules match.
inline std::string module_leaf(std::string_view module) {
    auto const dot = module.rfind('.');
    return std::string(dot == std::string_view::npos ? module : module.substr(dot + 1));
}

/// "a, b, c" of at most `limit` names, then "and N more".
inline std::string name_list(std::vector<std::string> const& names, std::size_t limit = 20) {
    std::string out;
    for (std::size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + names[i];
    if (names.size() > limit) out += ", and " + std::to_string(names.size() - limit) + " more";
    return out;
}

}  // namespace polyalpaca::io
