// Life cycle of the OpenSSL copy linked statically into libclawdbot_wecom.so (CWC_STATIC_OPENSSL).
//
// OpenSSL normally registers OPENSSL_cleanup with atexit() on first use. For a copy that lives
// inside a dlopen()ed library that is wrong: after dlclose() the handler points into unmapped
// code and the process crashes at exit (seen under ThreadSanitizer, whose atexit interceptor does
// not tie handlers to the library). So this copy never registers an exit handler, and is
// cleaned up when the library itself is unloaded (or the process exits) instead. The copy is
// private to the library, so cleaning it up can never disturb the host's own OpenSSL.
#include <openssl/crypto.h>

#include "crypto/crypto.h"

namespace {

__attribute__((constructor)) void init_private_openssl() {
  OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, nullptr);
}

__attribute__((destructor)) void cleanup_private_openssl() {
  cwc::crypto::release_algorithm_cache();
  OPENSSL_cleanup();
}

}  // namespace
