/* Compiled as strict C99 with -Werror: the public header must be plain C. */
#include "clawdbot_wecom/clawdbot_wecom.h"

_Static_assert(sizeof(cwc_str) == 2 * sizeof(void*), "cwc_str is {ptr, len}");

uint32_t cwc_header_c_check(void) {
  cwc_plugin_api api = {0};
  cwc_host_api host = {0};
  api.struct_size = sizeof api;
  host.struct_size = sizeof host;
  return (uint32_t)(api.struct_size + host.struct_size) + CWC_ABI_VERSION;
}
