#include "store/store_queue.hpp"

#include "muxkit/io.hpp"

namespace muxkit::detail {

void StoreQueue::push(const char* p, std::size_t n) {
    bytes_.insert(bytes_.end(), p, p + n);
    lens_.push_back(static_cast<std::uint32_t>(n));
    pending_ += n;
}

int StoreQueue::flush(int fd) {
    int err = 0;
    while (!empty()) {
        IoResult w = write_some(fd, bytes_.data() + off_, lens_[head_]);
        if (w.failed()) {
            if (!w.would_block()) err = w.err;
            break;
        }
        off_ += lens_[head_];
        pending_ -= lens_[head_];
        ++head_;
    }
    if (empty()) {
        bytes_.clear();
        lens_.clear();
        head_ = off_ = 0;
    } else if (off_ > bytes_.size() / 2) {  // drop what was written, so memory stays bounded
        bytes_.erase(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(off_));
        lens_.erase(lens_.begin(), lens_.begin() + static_cast<std::ptrdiff_t>(head_));
        head_ = off_ = 0;
    }
    return err;
}

}  // namespace muxkit::detail
