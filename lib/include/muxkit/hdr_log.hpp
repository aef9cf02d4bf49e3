// HdrLogWriter: HdrHistogram's interval log (the format of its HistogramLogWriter, version 1.3),
// which HdrHistogram's HistogramLogProcessor and plotters read: a header with the start and base
// times, a legend, then one line per interval and tag with the interval's compressed histogram.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

#include "muxkit/histogram.hpp"

namespace muxkit {

class HdrLogWriter {
public:
    // Creates (or empties) path and writes the header; start is the wall-clock time of the run's
    // start in seconds since the epoch. Throws RuntimeError naming the file when it cannot.
    HdrLogWriter(const std::string& path, double start_epoch_s);
    ~HdrLogWriter();
    HdrLogWriter(const HdrLogWriter&) = delete;
    HdrLogWriter& operator=(const HdrLogWriter&) = delete;

    // Tag=TAG,start,length,max,histogram: start in seconds since the start, max in milliseconds
    // (values are nanoseconds, as the format's default ratio expects).
    void interval(std::string_view tag, double start_s, double length_s, const Histogram& h);
    // Flushes and closes; throws RuntimeError when a write failed (a full disk).
    void close();

private:
    void write(const std::string& line);

    std::string path_;
    std::FILE* file_ = nullptr;
    int err_ = 0;  // the first write error, kept when it happens (errno is another call's by close)
};

}  // namespace muxkit
