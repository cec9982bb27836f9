#include "common/error.hpp"

#include <cstdio>
#include <exception>

namespace lab {

int run_main(const std::string& program, const std::function<int()>& body) {
  try {
    return body();
  } catch (const NoDeviceError& e) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
    return kExitNoDevice;
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: error: %s\n", program.c_str(), e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: error: out of host memory\n", program.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: internal error: %s\n", program.c_str(), e.what());
    return 1;
  }
}

}  // namespace lab
