# The user-facing library: one shared object holding every module, whose
# interface is only core/include/numagrid/. Installed with the CLI and a
# package config, so that another project can
#   find_package(numagrid CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE numagrid::numagrid)
include(CMakePackageConfigHelpers)

set(numagrid_modules numagrid_core numagrid_shm numagrid_numa numagrid_io numagrid_base)
add_library(numagrid SHARED ${PROJECT_SOURCE_DIR}/cmake/empty.cc)
add_library(numagrid::numagrid ALIAS numagrid)
foreach(m IN LISTS numagrid_modules)
  target_sources(numagrid PRIVATE $<TARGET_OBJECTS:${m}>)
  add_dependencies(numagrid ${m})
endforeach()
target_link_libraries(numagrid PRIVATE PkgConfig::hwloc PkgConfig::liburing TBB::tbb
  Threads::Threads numagrid_warnings numagrid_sanitize)
target_include_directories(numagrid PUBLIC
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/core/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_compile_features(numagrid PUBLIC cxx_std_20)
set_target_properties(numagrid PROPERTIES
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})

install(TARGETS numagrid EXPORT numagridTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS numagrid_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY core/include/numagrid DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT numagridTargets NAMESPACE numagrid::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/numagrid)
configure_package_config_file(cmake/numagridConfig.cmake.in
  ${PROJECT_BINARY_DIR}/numagridConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/numagrid)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/numagridConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/numagridConfig.cmake
  ${PROJECT_BINARY_DIR}/numagridConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/numagrid)
