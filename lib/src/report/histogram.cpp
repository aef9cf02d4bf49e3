#include "muxkit/histogram.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fmt/format.h>
#include <zlib.h>

namespace muxkit {

namespace {

// HdrHistogram's V2 cookies: the low nibble 0x10 says "ZigZag LEB128 counts".
constexpr std::uint32_t kV2Cookie = 0x1c849303 | 0x10;
constexpr std::uint32_t kV2CompressedCookie = 0x1c849304 | 0x10;
constexpr std::size_t kHeaderSize = 40;

void put_u32(std::string& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}
void put_u64(std::string& out, std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}
std::uint64_t get_be(const unsigned char* p, int bytes) {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
    return v;
}

// LEB128 of the ZigZag value: 7 bits a byte for eight bytes, then all 8 bits of a ninth.
void put_zigzag(std::string& out, std::int64_t value) {
    auto v = (static_cast<std::uint64_t>(value) << 1) ^ static_cast<std::uint64_t>(value >> 63);
    for (int i = 0; i < 8; ++i) {
        if ((v >> 7) == 0) {
            out += static_cast<char>(v);
            return;
        }
        out += static_cast<char>((v & 0x7f) | 0x80);
        v >>= 7;
    }
    out += static_cast<char>(v);
}

std::int64_t get_zigzag(const unsigned char*& p, const unsigned char* end) {
    std::uint64_t v = 0;
    for (int i = 0; i < 9; ++i) {
        if (p == end) throw Histogram::DecodeError("the counts end in the middle of a number");
        const unsigned char b = *p++;
        if (i == 8) {
            v |= static_cast<std::uint64_t>(b) << 56;
            break;
        }
        v |= static_cast<std::uint64_t>(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) break;
    }
    return static_cast<std::int64_t>((v >> 1) ^ (~(v & 1) + 1));
}

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string to_base64(std::string_view in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < in.size(); i += 3) {
        std::uint32_t n = static_cast<unsigned char>(in[i]) << 16;
        if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
        if (i + 2 < in.size()) n |= static_cast<unsigned char>(in[i + 2]);
        out += kBase64[(n >> 18) & 63];
        out += kBase64[(n >> 12) & 63];
        out += i + 1 < in.size() ? kBase64[(n >> 6) & 63] : '=';
        out += i + 2 < in.size() ? kBase64[n & 63] : '=';
    }
    return out;
}

std::string from_base64(std::string_view in) {
    if (in.empty() || in.size() % 4 != 0) throw Histogram::DecodeError("not base64 (its length is not a multiple of 4)");
    std::string out;
    out.reserve(in.size() / 4 * 3);
    for (std::size_t i = 0; i < in.size(); i += 4) {
        std::uint32_t n = 0;
        int pad = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            const char ch = in[i + k];
            const char* at = ch ? std::strchr(kBase64, ch) : nullptr;
            if (ch == '=' && i + 4 == in.size() && k >= 2) {
                ++pad;
                n <<= 6;
                continue;
            }
            if (!at || pad) throw Histogram::DecodeError("not base64");
            n = (n << 6) | static_cast<std::uint32_t>(at - kBase64);
        }
        out += static_cast<char>((n >> 16) & 0xff);
        if (pad < 2) out += static_cast<char>((n >> 8) & 0xff);
        if (pad < 1) out += static_cast<char>(n & 0xff);
    }
    return out;
}

std::string inflate_all(const unsigned char* data, std::size_t n) {
    constexpr std::size_t kMax = kHeaderSize + Histogram::kCounts * 9;  // the largest a valid histogram inflates to
    z_stream z{};
    if (inflateInit(&z) != Z_OK) throw Histogram::DecodeError("zlib cannot start");
    std::string out(64 * 1024, '\0');
    z.next_in = const_cast<unsigned char*>(data);
    z.avail_in = static_cast<uInt>(n);
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        if (z.total_out == out.size()) {
            if (out.size() >= kMax) break;
            out.resize(std::min(out.size() * 2, kMax));
        }
        z.next_out = reinterpret_cast<unsigned char*>(out.data()) + z.total_out;
        z.avail_out = static_cast<uInt>(out.size() - z.total_out);
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) break;
    }
    const std::size_t got = z.total_out;
    inflateEnd(&z);
    if (rc != Z_STREAM_END) throw Histogram::DecodeError("the compressed counts are damaged or cut short");
    out.resize(got);
    return out;
}

std::size_t bucket_of_index(std::size_t index) { return index >> Histogram::kSubBucketHalfMagnitude; }

}  // namespace

void Histogram::allocate() { counts_.assign(kCounts, 0); }

std::uint64_t Histogram::lowest_of(std::size_t index) noexcept {
    const std::size_t bucket = bucket_of_index(index);
    const std::uint64_t sub = index & (kSubBucketHalf - 1);
    if (bucket == 0) return sub;
    return (sub + kSubBucketHalf) << (bucket - 1);
}

std::uint64_t Histogram::highest_of(std::size_t index) noexcept {
    const std::size_t bucket = bucket_of_index(index);
    return lowest_of(index) + (std::uint64_t{1} << (bucket == 0 ? 0 : bucket - 1)) - 1;
}

void Histogram::merge(const Histogram& other) {
    if (other.count_ == 0) return;
    if (counts_.empty()) allocate();
    for (std::size_t i = 0; i < kCounts; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
}

std::uint64_t Histogram::percentile(double p) const noexcept {
    if (count_ == 0) return 0;
    // As HdrHistogram: one ulp less, so a percentile that is exactly a rank does not round past it.
    const double requested = std::clamp(std::nextafter(p, -INFINITY), 0.0, 100.0);
    const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(requested * static_cast<double>(count_) / 100.0)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kCounts; ++i) {
        seen += counts_[i];
        if (seen >= rank) return std::clamp(p == 0.0 ? lowest_of(i) : highest_of(i), min(), max_);
    }
    return max_;
}

double Histogram::stddev() const noexcept {
    if (count_ == 0) return 0;
    const double m = mean();
    double variance = 0;
    for (std::size_t i = 0; i < kCounts; ++i)
        if (counts_[i]) {
            const double middle = static_cast<double>(lowest_of(i) + (highest_of(i) - lowest_of(i) + 1) / 2);
            variance += (middle - m) * (middle - m) * static_cast<double>(counts_[i]);
        }
    return std::sqrt(variance / static_cast<double>(count_));
}

std::string Histogram::encode() const {
    std::string payload;
    const std::size_t limit = count_ ? static_cast<std::size_t>(index_of(std::min(max_, kHighest))) + 1 : 1;
    auto at = [&](std::size_t i) { return counts_.empty() ? 0 : counts_[i]; };
    for (std::size_t i = 0; i < limit;) {
        const std::uint64_t c = at(i++);
        if (c != 0) {
            put_zigzag(payload, static_cast<std::int64_t>(c));
            continue;
        }
        std::int64_t zeros = 1;
        while (i < limit && at(i) == 0) {
            ++zeros;
            ++i;
        }
        put_zigzag(payload, zeros > 1 ? -zeros : 0);
    }
    std::string plain;
    put_u32(plain, kV2Cookie);
    put_u32(plain, static_cast<std::uint32_t>(payload.size()));
    put_u32(plain, 0);  // normalizing index offset
    put_u32(plain, kSignificantDigits);
    put_u64(plain, 1);  // lowest discernible value
    put_u64(plain, kHighest);
    std::uint64_t ratio_bits = 0;
    const double ratio = 1.0;  // integer to double conversion ratio
    std::memcpy(&ratio_bits, &ratio, sizeof ratio);
    put_u64(plain, ratio_bits);
    plain += payload;

    uLongf compressed_size = compressBound(static_cast<uLong>(plain.size()));
    std::string compressed(compressed_size, '\0');
    if (compress2(reinterpret_cast<Bytef*>(compressed.data()), &compressed_size, reinterpret_cast<const Bytef*>(plain.data()),
                  static_cast<uLong>(plain.size()), Z_DEFAULT_COMPRESSION) != Z_OK)
        throw std::runtime_error("zlib could not compress a histogram");
    compressed.resize(compressed_size);
    std::string out;
    put_u32(out, kV2CompressedCookie);
    put_u32(out, static_cast<std::uint32_t>(compressed.size()));
    out += compressed;
    return to_base64(out);
}

Histogram Histogram::decode(std::string_view base64) {
    const std::string raw = from_base64(base64);
    const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
    if (raw.size() < 8 || get_be(p, 4) != kV2CompressedCookie)
        throw DecodeError("not an HdrHistogram V2 compressed histogram");
    const std::uint64_t length = get_be(p + 4, 4);
    if (length > raw.size() - 8) throw DecodeError("the compressed histogram is cut short");
    const std::string plain = inflate_all(p + 8, length);
    const auto* h = reinterpret_cast<const unsigned char*>(plain.data());
    if (plain.size() < kHeaderSize || get_be(h, 4) != kV2Cookie) throw DecodeError("not an HdrHistogram V2 histogram");
    const std::uint64_t payload = get_be(h + 4, 4);
    if (payload > plain.size() - kHeaderSize) throw DecodeError("the histogram's counts are cut short");
    if (get_be(h + 8, 4) != 0) throw DecodeError("a shifted (normalized) histogram cannot be merged");
    if (const auto digits = get_be(h + 12, 4); digits != kSignificantDigits)
        throw DecodeError(fmt::format("recorded with {} significant digits; muxkit records {}", digits, kSignificantDigits));
    if (const auto lowest = get_be(h + 16, 8); lowest != 1)
        throw DecodeError(fmt::format("recorded with lowest discernible value {}; muxkit records 1", lowest));

    Histogram out;
    out.allocate();
    const unsigned char* at = h + kHeaderSize;
    const unsigned char* end = at + payload;
    std::size_t index = 0;
    while (at < end) {
        const std::int64_t v = get_zigzag(at, end);
        if (v < 0) {
            index += static_cast<std::size_t>(-v);
            continue;
        }
        if (index >= kCounts) {
            if (v == 0) {
                ++index;
                continue;
            }
            throw DecodeError("it holds values past 1 hour, the largest muxkit records");
        }
        out.counts_[index++] = static_cast<std::uint64_t>(v);
    }
    std::size_t first = kCounts, last = 0;
    for (std::size_t i = 0; i < kCounts; ++i) {
        const std::uint64_t c = out.counts_[i];
        if (!c) continue;
        first = std::min(first, i);
        last = i;
        out.count_ += c;
        out.sum_ += static_cast<double>(c) * static_cast<double>(lowest_of(i) + (highest_of(i) - lowest_of(i) + 1) / 2);
    }
    if (out.count_) {
        out.min_ = lowest_of(first);
        out.max_ = highest_of(last);
    }
    return out;
}

void Histogram::set_exact(std::uint64_t min, std::uint64_t max, double mean) noexcept {
    if (count_ == 0) return;
    min_ = min;
    max_ = max;
    sum_ = mean * static_cast<double>(count_);
}

// As HdrHistogram's PercentileIterator: a row each time the count so far reaches the next level.
std::vector<Histogram::PercentileRow> Histogram::percentile_rows(int ticks_per_half_distance) const {
    std::vector<PercentileRow> rows;
    if (count_ == 0) return rows;
    std::size_t index = 0;
    std::uint64_t cumulative = 0;
    bool fresh = true;
    double level = 0;
    auto next_row = [&] {
        for (; index < kCounts; ++index, fresh = true) {
            const std::uint64_t c = counts_[index];
            if (fresh) {
                cumulative += c;
                fresh = false;
            }
            if (c == 0 || 100.0 * static_cast<double>(cumulative) / static_cast<double>(count_) < level) continue;
            rows.push_back({std::min(highest_of(index), max_), level, cumulative});
            if (level < 100.0) {
                const auto halvings = static_cast<long>(std::log(100.0 / (100.0 - level)) / std::log(2.0));
                level += 100.0 / (ticks_per_half_distance * std::pow(2.0, static_cast<double>(halvings + 1)));
            }
            return;
        }
    };
    while (cumulative < count_) next_row();
    level = 100.0;  // one last row at 100%
    next_row();
    return rows;
}

std::string Histogram::percentile_distribution(double unit_ratio, int ticks_per_half_distance) const {
    std::string out = fmt::format("{:>12} {:>14} {:>10} {:>14}\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    for (const PercentileRow& r : percentile_rows(ticks_per_half_distance)) {
        const double value = static_cast<double>(r.value) / unit_ratio, fraction = r.percentile / 100.0;
        if (r.percentile < 100.0)
            out += fmt::format("{:12.3f} {:2.12f} {:10d} {:14.2f}\n", value, fraction, r.total_count, 1.0 / (1.0 - fraction));
        else
            out += fmt::format("{:12.3f} {:2.12f} {:10d}\n", value, fraction, r.total_count);
    }
    out += fmt::format("#[Mean    = {:12.3f}, StdDeviation   = {:12.3f}]\n", mean() / unit_ratio, stddev() / unit_ratio);
    out += fmt::format("#[Max     = {:12.3f}, Total count    = {:12d}]\n", static_cast<double>(max_) / unit_ratio, count_);
    out += fmt::format("#[Buckets = {:12d}, SubBuckets     = {:12d}]\n", kBucketCount, kSubBucketCount);
    return out;
}

}  // namespace muxkit
