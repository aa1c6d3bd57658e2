# Included from tests/gateway/CMakeLists.txt (after the fixture libraries are defined).
# The gateway binary end to end (child processes on loopback, no simulator needed), and the
# shared fake OpenAI endpoint (cwc_fake_openai / fake-openai, defined in gateway/CMakeLists.txt).
# Registered with the prefix "gateway." and the label "gateway", so both
# `ctest -R gateway` and `ctest -L gateway` select them.
function(cwc_add_gateway_process_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE GTest::gtest GTest::gtest_main ${ARG_LIBS})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  cwc_set_warnings(${name})
  gtest_discover_tests(${name} TEST_PREFIX "gateway." DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 120 LABELS gateway)
endfunction()

cwc_add_gateway_process_test(gateway_e2e_test SOURCES gateway_e2e_test.cpp
  LIBS PkgConfig::HTTPLIB nlohmann_json::nlohmann_json Threads::Threads)
target_compile_definitions(gateway_e2e_test PRIVATE
  CWC_GATEWAY_BIN="$<TARGET_FILE:clawdbot-wecom-gateway>"
  CWC_PLUGIN_PATH="$<TARGET_FILE:clawdbot_wecom>"
  CWC_FAKE_OPENAI_BIN="$<TARGET_FILE:fake-openai>"
  CWC_FIXTURE_NO_ENTRY="$<TARGET_FILE:cwc_fixture_no_entry>"
  CWC_FIXTURE_ABI2="$<TARGET_FILE:cwc_fixture_abi_v2>")
add_dependencies(gateway_e2e_test clawdbot-wecom-gateway clawdbot_wecom fake-openai cwc_fixture_no_entry
  cwc_fixture_abi_v2)

cwc_add_gateway_process_test(fake_openai_server_test SOURCES fake_openai_server_test.cpp LIBS cwc_fake_openai)
