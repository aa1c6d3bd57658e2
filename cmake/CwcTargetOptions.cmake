# Per-target build settings: warnings, and sanitizers chosen with -DCWC_SANITIZE=...

function(cwc_set_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Wunused
    -Woverloaded-virtual -Wconversion -Wno-sign-conversion -Wnull-dereference
    -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough)
endfunction()

# Applied globally so that every object (including static libraries linked into the .so) is
# instrumented the same way.
if(CWC_SANITIZE)
  add_compile_options(-fsanitize=${CWC_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${CWC_SANITIZE})
endif()
