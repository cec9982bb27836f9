#pragma once
/// \file
/// \brief Ctrl-C during a generation. The first Ctrl-C (SIGINT) only raises a flag; the generation
/// loops poll it after each token, stop, and the chapter prints the text so far and its metrics,
/// then exits with status 130. A second Ctrl-C ends the program at once, for a step that is slow.

#include <span>
#include <string>

namespace lab {

/// Exit status of a program stopped by Ctrl-C: 128 + SIGINT, what a shell reports when the signal
/// itself ends a process, so scripts see the same status either way.
inline constexpr int kExitInterrupted = 130;

/// Installs the SIGINT handler (calling it again does nothing). From then on the first Ctrl-C sets
/// the flag interrupted() reads and says so on stderr ("Ctrl-C: stopping after this token ...");
/// the second writes "interrupted twice: stopping now" and exits with kExitInterrupted without
/// unwinding (the program may be inside a long kernel or matrix product).
void catch_interrupts();

/// True once Ctrl-C was pressed after catch_interrupts(). Cheap: generation loops call it after
/// every token.
bool interrupted();

/// What a chapter prints after an interrupted generation, one line:
/// "interrupted (Ctrl-C) after 12 tokens: TTFT 3.1 ms, TPOT 1.2 ms, ... (12 tokens)", with the
/// metrics of the tokens that arrived at `token_times` (seconds from the request's start), or
/// "interrupted (Ctrl-C) before the first token" when there are none.
std::string describe_interruption(std::span<const double> token_times);

}  // namespace lab
