# Warnings and sanitizers as INTERFACE targets, linked PRIVATE by every
# numagrid target (no global flag edits).
add_library(numagrid_warnings INTERFACE)
target_compile_options(numagrid_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow
  $<$<BOOL:${NUMAGRID_WERROR}>:-Werror>)

add_library(numagrid_sanitize INTERFACE)
if(NUMAGRID_SANITIZE)
  list(JOIN NUMAGRID_SANITIZE "," numagrid_san_list)
  target_compile_options(numagrid_sanitize INTERFACE
    -fsanitize=${numagrid_san_list} -fno-sanitize-recover=all
    -fno-omit-frame-pointer)
  target_link_options(numagrid_sanitize INTERFACE
    -fsanitize=${numagrid_san_list} -fno-sanitize-recover=all)
endif()

# numagrid_add_module(<target> <alias-suffix> SOURCES ... DEPS ...): a static
# module library with the repository root on its include path, C++20, and
# the warning and sanitizer flags.
function(numagrid_add_module target)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${target} STATIC ${M_SOURCES})
  string(REPLACE "numagrid_" "" short ${target})
  add_library(numagrid::${short} ALIAS ${target})
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}>
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/core/include>)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_link_libraries(${target} PUBLIC ${M_DEPS}
    PRIVATE numagrid_warnings numagrid_sanitize)
endfunction()
