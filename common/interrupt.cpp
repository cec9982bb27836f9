#include "common/interrupt.hpp"

#include <unistd.h>

#include <atomic>
#include <csignal>

#include "common/metrics.hpp"

namespace lab {

namespace {

// A signal handler may only touch lock-free atomics (and call async-signal-safe functions such as
// write and _exit): anything that locks, allocates or buffers could deadlock against the code the
// signal interrupted.
std::atomic<int> interrupt_count{0};
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void on_interrupt(int) {
  if (interrupt_count.fetch_add(1) == 0) {  // the first: the generation loop will stop
    // Said at once: the current step may take a while, and the user should know it was heard.
    constexpr char first[] = "\nCtrl-C: stopping after this token (press it again to stop now)\n";
    (void)!::write(STDERR_FILENO, first, sizeof first - 1);
    return;
  }
  constexpr char second[] = "interrupted twice: stopping now\n";
  (void)!::write(STDERR_FILENO, second, sizeof second - 1);
  ::_exit(kExitInterrupted);
}

}  // namespace

void catch_interrupts() {
  static const bool installed = [] {
    struct sigaction action {};
    action.sa_handler = on_interrupt;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;  // a read or write the signal lands in goes on
    return ::sigaction(SIGINT, &action, nullptr) == 0;
  }();
  (void)installed;
}

bool interrupted() {
  return interrupt_count.load(std::memory_order_relaxed) > 0;
}

std::string describe_interruption(std::span<const double> token_times) {
  if (token_times.empty()) return "interrupted (Ctrl-C) before the first token";
  return "interrupted (Ctrl-C) after " + std::to_string(token_times.size()) +
         (token_times.size() == 1 ? " token: " : " tokens: ") +
         describe(latency_metrics(token_times));
}

}  // namespace lab
