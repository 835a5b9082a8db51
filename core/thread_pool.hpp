// A small fixed pool of worker threads with a blocking parallel-for.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace vn {

// Inside a catch handler around thread creation: rethrows a std::system_error (the system
// refused a thread) as Error(Resource) with a readable message, anything else as it is.
[[noreturn]] void rethrow_thread_start_error();

class ThreadPool {
public:
    // Starts threads - 1 workers; when the system refuses one (a process or thread limit),
    // the started ones are stopped and Error(Resource) is thrown.
    explicit ThreadPool(int threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    // Calls fn(i) for every i in [0, n), spread over the pool and the calling thread; returns
    // when all calls have finished. The first exception thrown by fn is rethrown here.
    // Calls from inside fn run serially on the calling thread (no nested parallelism).
    void parallel_for(std::size_t n, const std::function<void(std::size_t)>& fn);

private:
    void worker_loop();
    void stop_workers() noexcept;
    void run_items();

    std::vector<std::thread> workers_;
    std::mutex call_mutex_;  // one parallel_for at a time
    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable done_;
    const std::function<void(std::size_t)>* job_ = nullptr;
    std::size_t job_size_ = 0;
    std::size_t next_ = 0;
    std::size_t started_ = 0;
    std::size_t finished_ = 0;
    std::size_t generation_ = 0;
    bool stop_ = false;
    std::exception_ptr error_;
};

}  // namespace vn
