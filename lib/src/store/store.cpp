#include "muxkit/store.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include "muxkit/clock.hpp"
#include "muxkit/error.hpp"
#include "muxkit/fd.hpp"
#include "muxkit/io.hpp"
#include "muxkit/pipe.hpp"
#include "muxkit/report.hpp"

namespace muxkit {

StoreFormat parse_store_format(std::string_view text) {
    if (text == "raw") return StoreFormat::raw;
    if (text == "jsonl") return StoreFormat::jsonl;
    throw UsageError(fmt::format("invalid store format '{}': expected raw or jsonl", text));
}

std::string_view store_format_name(StoreFormat f) noexcept { return f == StoreFormat::raw ? "raw" : "jsonl"; }

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
// Room left in a record for the JSON around the data (time, ids, a peer of up to 108 bytes).
constexpr std::size_t kRecordOverhead = 320;

}  // namespace

std::string base64_encode(std::string_view in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                     static_cast<unsigned char>(in[i + 2]);
        out += kAlphabet[v >> 18];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += kAlphabet[v & 63];
    }
    if (i < in.size()) {
        unsigned v = static_cast<unsigned char>(in[i]) << 16;
        if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
        out += kAlphabet[v >> 18];
        out += kAlphabet[(v >> 12) & 63];
        out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::string base64_decode(std::string_view in) {
    if (in.size() % 4) throw std::invalid_argument("base64: length is not a multiple of 4");
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::string out;
    out.reserve(in.size() / 4 * 3);
    for (std::size_t i = 0; i < in.size(); i += 4) {
        int pad = (in[i + 3] == '=') + (in[i + 2] == '=');
        if (pad && i + 4 != in.size()) throw std::invalid_argument("base64: padding before the end");
        if (pad == 1 && in[i + 2] == '=') throw std::invalid_argument("base64: misplaced padding");
        int v[4];
        for (int k = 0; k < 4 - pad; ++k)
            if ((v[k] = value(in[i + k])) < 0) throw std::invalid_argument("base64: invalid character");
        for (int k = 4 - pad; k < 4; ++k) v[k] = 0;
        unsigned bits = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
        out += static_cast<char>(bits >> 16);
        if (pad < 2) out += static_cast<char>((bits >> 8) & 0xff);
        if (pad < 1) out += static_cast<char>(bits & 0xff);
    }
    return out;
}

std::size_t valid_utf8_prefix(const char* data, std::size_t len) noexcept {
    auto s = reinterpret_cast<const unsigned char*>(data);
    std::size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        std::size_t n;
        std::uint32_t cp;
        if (c < 0x80) { ++i; continue; }
        if ((c & 0xe0) == 0xc0) { n = 2; cp = c & 0x1f; }
        else if ((c & 0xf0) == 0xe0) { n = 3; cp = c & 0x0f; }
        else if ((c & 0xf8) == 0xf0) { n = 4; cp = c & 0x07; }
        else return i;
        if (i + n > len) return i;
        for (std::size_t k = 1; k < n; ++k) {
            if ((s[i + k] & 0xc0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        // Overlong forms, surrogates and values past U+10FFFF are not valid UTF-8.
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += n;
    }
    return i;
}

std::size_t StoreEncoder::jsonl_record(const RecordOrigin& origin, const char* data, std::size_t len) {
    const std::size_t budget = PIPE_BUF - kRecordOverhead;
    std::size_t take = std::min(len, budget);
    for (;;) {
        std::size_t valid = valid_utf8_prefix(data, take);
        // Text when the chunk is UTF-8 but for a character cut at its end (which the next record carries).
        bool text = valid == take || (take < len && valid > 0 && take - valid < 4 && valid_utf8_prefix(data + valid, len - valid) > 0);
        std::size_t used = text ? valid : std::min(take, budget / 4 * 3);
        Json record = {{"t", wall_seconds()},
                       {"conn", origin.conn},
                       {"peer", origin.peer},
                       {"encoding", text ? "utf8" : "base64"},
                       {"data", text ? std::string(data, used) : base64_encode(std::string_view(data, used))}};
        line_ = record.dump();
        line_ += '\n';
        if (line_.size() <= PIPE_BUF) return used;
        take = std::max<std::size_t>(1, take / 2);  // escapes made it too long: carry less
    }
}

StoreRecord parse_store_record(std::string_view line) {
    Json j = Json::parse(line);
    StoreRecord r;
    r.t = j.at("t").get<double>();
    r.conn = j.at("conn").get<std::uint64_t>();
    r.peer = j.at("peer").get<std::string>();
    r.encoding = j.at("encoding").get<std::string>();
    const std::string& data = j.at("data").get_ref<const std::string&>();
    if (r.encoding == "base64") r.data = base64_decode(data);
    else if (r.encoding == "utf8") r.data = data;
    else throw std::invalid_argument("unknown encoding " + r.encoding);
    return r;
}

namespace {

// Opens the store without following a symbolic link anywhere in the path (openat2's
// RESOLVE_NO_SYMLINKS; O_NOFOLLOW guards only the last component), and without blocking on a
// FIFO that has no reader (ENXIO).
Fd open_store(const std::string& path) {
    const int flags = O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
    open_how how{};
    how.flags = static_cast<std::uint64_t>(flags);
    how.mode = 0600;
    how.resolve = RESOLVE_NO_SYMLINKS;
    long fd = ::syscall(SYS_openat2, AT_FDCWD, path.c_str(), &how, sizeof how);
    if (fd < 0 && errno == ENOSYS) fd = ::open(path.c_str(), flags, 0600);  // kernels before 5.6
    if (fd < 0) {
        if (errno == ELOOP) throw SystemError(ELOOP, "cannot open store " + path + " (a symbolic link is never followed)");
        if (errno == ENXIO) throw SystemError(ENXIO, "cannot open store " + path + " (a FIFO with no reader)");
        throw_errno("cannot open store " + path);
    }
    Fd file(static_cast<int>(fd));
    set_nonblocking(file.get(), false);  // the writer process blocks on it
    return file;
}

}  // namespace

StoreWriter::StoreWriter(const StoreConfig& config) : path_(config.path) {
    Fd file = open_store(path_);
    Pipe p = make_pipe();
    // The writer: only the pipe's read end and the file; it ends when every writer has closed,
    // never on a signal meant for the server (a stop must not lose what is in the pipe). Its
    // exit code is the errno that stopped it.
    auto writer = [&]() -> int {
        ::signal(SIGINT, SIG_IGN);
        ::signal(SIGTERM, SIG_IGN);
        ::signal(SIGUSR1, SIG_IGN);
        ::signal(SIGCHLD, SIG_DFL);
        p.write.reset();
        static char buf[65536];
        for (;;) {
            IoResult r = read_some(p.read.get(), buf, sizeof buf);
            if (r.n == 0) break;
            if (r.n < 0) return r.err & 0x7f;
            if (int err = write_all(file.get(), buf, static_cast<std::size_t>(r.n))) return err & 0x7f;
        }
        if (::fsync(file.get()) != 0 && errno != EINVAL) return errno & 0x7f;
        return 0;
    };
    try {
        pid_ = fork_child(writer);
    } catch (const SystemError& e) {
        throw SystemError(e.code().value(), "cannot start the store writer");
    }
    p.read.reset();  // only the writer reads
    write_ = std::move(p.write);
}

StoreWriter::~StoreWriter() {
    if (!finished_ && !exited_ && pid_ > 0) {
        write_.reset();
        wait_child(pid_, now_ns() + 10'000'000'000);
    }
}

std::string StoreWriter::death_message(const ExitStatus& st) const {
    if (st.exited && st.code != 0)
        return fmt::format("the store writer (pid {}) failed: cannot write {}: {}", pid_, path_, std::strerror(st.code));
    return fmt::format("the store writer (pid {}) ended early ({}); data received after that could not be stored in {}",
                       pid_, st.to_string(), path_);
}

bool StoreWriter::alive() {
    if (exited_) return false;
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) exited_ = decode_status(status);
    return !exited_;
}

void StoreWriter::note_exit(int wait_status) { exited_ = decode_status(wait_status); }

void StoreWriter::finish() {
    if (finished_) return;
    finished_ = true;
    write_.reset();
    ExitStatus st = exited_ ? *exited_ : wait_child(pid_, now_ns() + 120'000'000'000);
    exited_ = st;
    if (!(st.exited && st.code == 0)) throw RuntimeError(death_message(st));
}

}  // namespace muxkit
