#include "muxkit/model.hpp"

#include <array>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "muxkit/error.hpp"
#include "uring/ring.hpp"

namespace muxkit {

namespace {

constexpr std::uint8_t bits(std::initializer_list<Feature> fs) {
    std::uint8_t b = 0;
    for (Feature f : fs) b |= static_cast<std::uint8_t>(f);
    return b;
}

using enum Feature;
constexpr std::array kModels{
    ModelInfo{Model::select, "select", ModelKind::readiness, bits({echo_server, multi_connect, fd_watch}), "select"},
    ModelInfo{Model::poll, "poll", ModelKind::readiness, bits({echo_server, multi_connect, fd_watch}), "poll"},
    ModelInfo{Model::epoll, "epoll", ModelKind::readiness, bits({echo_server, multi_connect, fd_watch}), "epoll (level-triggered)"},
    ModelInfo{Model::epoll_et, "epoll-et", ModelKind::readiness, bits({echo_server}), "epoll-et (edge-triggered)"},
    ModelInfo{Model::io_uring, "io_uring", ModelKind::completion, bits({echo_server, multi_connect}), "io_uring (completions)"},
    ModelInfo{Model::fork, "fork", ModelKind::process, bits({echo_server}), "fork (a process per connection)"},
};

std::string_view feature_name(Feature f) {
    switch (f) {
    case echo_server: return "echo-server";
    case multi_connect: return "multi-connect";
    case fd_watch: return "fd-watch";
    }
    return "?";
}

}  // namespace

std::span<const ModelInfo> models() noexcept { return kModels; }

const ModelInfo& model_info(Model m) noexcept {
    for (const ModelInfo& i : kModels)
        if (i.model == m) return i;
    return kModels[0];  // unreachable: every enumerator has a row
}

std::string_view model_name(Model m) noexcept { return model_info(m).name; }

bool feature_takes(Feature f, Model m) noexcept { return (model_info(m).features & static_cast<std::uint8_t>(f)) != 0; }

std::vector<std::string> model_names(Feature f) {
    std::vector<std::string> out;
    for (const ModelInfo& i : kModels)
        if (feature_takes(f, i.model)) out.emplace_back(i.name);
    return out;
}

Model parse_model(std::string_view text, Feature f) {
    for (const ModelInfo& i : kModels)
        if (i.name == text && feature_takes(f, i.model)) return i.model;
    throw UsageError(fmt::format("invalid model '{}': {} takes {}", text, feature_name(f), fmt::join(model_names(f), ", ")));
}

std::string model_unavailable_reason(Model m) {
    if (m != Model::io_uring) return "";
    try {
        detail::check_uring_available();
        return "";
    } catch (const RuntimeError& e) {
        return e.what();
    }
}

}  // namespace muxkit
