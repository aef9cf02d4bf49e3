// Store: received data kept on disk by a writer process fed through a pipe. Every write into the
// pipe is one whole record of at most PIPE_BUF bytes, so concurrent writers never interleave.
#pragma once

#include <climits>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <sys/types.h>

#include "muxkit/fd.hpp"
#include "muxkit/process.hpp"

namespace muxkit {

enum class StoreFormat { raw, jsonl };
StoreFormat parse_store_format(std::string_view text);  // throws UsageError
std::string_view store_format_name(StoreFormat f) noexcept;

struct StoreConfig {
    std::string path;
    StoreFormat format = StoreFormat::raw;
};

// Whose data a record carries (jsonl only).
struct RecordOrigin {
    std::uint64_t conn = 0;
    std::string_view peer;
};

// Cuts received data into records that each fit in one atomic pipe write.
class StoreEncoder {
public:
    explicit StoreEncoder(StoreFormat format) : format_(format) {}
    // Calls sink(const char* record, std::size_t size) once per record, in order; returns the
    // number of records. raw records point into data (no copy).
    template <class Sink>
    std::size_t encode(const RecordOrigin& origin, const char* data, std::size_t len, Sink&& sink) {
        std::size_t records = 0;
        while (len > 0) {
            std::size_t used = format_ == StoreFormat::raw ? raw_record(data, len) : jsonl_record(origin, data, len);
            if (format_ == StoreFormat::raw) sink(data, used);
            else sink(line_.data(), line_.size());
            data += used;
            len -= used;
            ++records;
        }
        return records;
    }

private:
    static std::size_t raw_record(const char*, std::size_t len) { return len < PIPE_BUF ? len : PIPE_BUF; }
    // Builds one JSON line in line_ from a prefix of data; returns how many data bytes it holds.
    std::size_t jsonl_record(const RecordOrigin& origin, const char* data, std::size_t len);

    StoreFormat format_;
    std::string line_;
};

// A decoded jsonl record (for readers of the store and for tests).
struct StoreRecord {
    double t = 0;
    std::uint64_t conn = 0;
    std::string peer, encoding, data;
};
StoreRecord parse_store_record(std::string_view line);  // throws std::exception on a malformed line

std::string base64_encode(std::string_view bytes);
std::string base64_decode(std::string_view text);  // throws std::invalid_argument
// Length of the longest prefix of data that is whole, valid UTF-8.
std::size_t valid_utf8_prefix(const char* data, std::size_t len) noexcept;

// The writer process: appends what arrives on the pipe to FILE, fsyncs at EOF, exits 0; on a
// failed write it exits with the errno. It ignores SIGINT and SIGTERM: it ends when the pipe does.
class StoreWriter {
public:
    // Opens FILE (created 0600, appended to, never through a symlink) and forks the writer.
    // Throws SystemError naming FILE.
    explicit StoreWriter(const StoreConfig& config);
    ~StoreWriter();
    StoreWriter(const StoreWriter&) = delete;
    StoreWriter& operator=(const StoreWriter&) = delete;

    int write_fd() const noexcept { return write_.get(); }
    pid_t pid() const noexcept { return pid_; }
    const std::string& path() const noexcept { return path_; }
    // Closes the write end (the writer then drains, fsyncs and exits) and waits for it.
    // Throws RuntimeError when the writer did not store everything.
    void finish();
    // The writer ended before finish(): describes how, for the error line.
    std::string death_message(const ExitStatus& status) const;
    // Non-blocking check; false (and the reason in death) once the writer has ended.
    bool alive();
    // For a caller that reaped the writer itself (waitpid(-1)).
    void note_exit(int wait_status);
    std::string death() const { return exited_ ? death_message(*exited_) : std::string(); }

private:
    std::string path_;
    Fd write_;
    pid_t pid_ = -1;
    bool finished_ = false;
    std::optional<ExitStatus> exited_;
};

}  // namespace muxkit
