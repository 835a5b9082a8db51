#include "core/thread_pool.hpp"

#include <string>
#include <system_error>

#include "core/error.hpp"

namespace vn {
namespace {
thread_local bool t_inside_pool = false;
}

void rethrow_thread_start_error() {
    try {
        throw;
    } catch (const std::system_error& e) {
        fail(ErrorKind::Resource, "cannot start a thread (" + e.code().message() +
                                      "): a process or thread limit is reached; use fewer --threads");
    }
}

ThreadPool::ThreadPool(int threads) {
    try {
        workers_.reserve(static_cast<std::size_t>(threads > 1 ? threads - 1 : 0));
        for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
    } catch (const std::system_error& e) {
        // A process or cgroup limit (ulimit -u, pids.max) refused a thread: stop and join the
        // ones already running (the destructor does not run for a constructor that throws).
        const std::size_t started = workers_.size() + 1;
        stop_workers();
        fail(ErrorKind::Resource, "cannot start thread " + std::to_string(started + 1) + " of " + std::to_string(threads) +
                                      " (" + e.code().message() +
                                      "): a process or thread limit is reached; use fewer --threads");
    }
}

ThreadPool::~ThreadPool() { stop_workers(); }

void ThreadPool::stop_workers() noexcept {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_)
        if (w.joinable()) w.join();
    workers_.clear();
}

void ThreadPool::run_items() {
    for (;;) {
        std::size_t i;
        const std::function<void(std::size_t)>* job;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (next_ >= job_size_) return;
            i = next_++;
            ++started_;
            job = job_;
        }
        try {
            (*job)(i);
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!error_) error_ = std::current_exception();
            next_ = job_size_;  // stop handing out work
        }
        std::lock_guard<std::mutex> lock(mutex_);
        ++finished_;
        if (next_ >= job_size_ && finished_ == started_) done_.notify_all();
    }
}

void ThreadPool::worker_loop() {
    t_inside_pool = true;
    std::size_t seen = 0;
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
        }
        run_items();
    }
}

void ThreadPool::parallel_for(std::size_t n, const std::function<void(std::size_t)>& fn) {
    if (n == 0) return;
    if (workers_.empty() || n == 1 || t_inside_pool) {
        for (std::size_t i = 0; i < n; ++i) fn(i);
        return;
    }
    std::lock_guard<std::mutex> call(call_mutex_);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        started_ = 0;
        job_ = &fn;
        job_size_ = n;
        next_ = 0;
        finished_ = 0;
        error_ = nullptr;
        ++generation_;
    }
    wake_.notify_all();
    t_inside_pool = true;
    run_items();
    t_inside_pool = false;
    std::exception_ptr error;
    {
        std::unique_lock<std::mutex> lock(mutex_);
        // After an error the remaining items are never started: wait for the started ones.
        done_.wait(lock, [&] { return next_ >= job_size_ && finished_ == started_; });
        error = error_;
        job_ = nullptr;
        job_size_ = 0;
        next_ = 0;
    }
    if (error) std::rethrow_exception(error);
}

}  // namespace vn
