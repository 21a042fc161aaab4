# Run at install time by config/install.cmake (CMAKE_INSTALL_PREFIX is then the prefix of
# this installation: --prefix, or /usr for cpack): installs the config and the systemd
# unit with the paths of this installation.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(rheo_etc_dir /etc/rheo)
else()
  set(rheo_etc_dir ${CMAKE_INSTALL_PREFIX}/etc/rheo)
endif()
set(RHEO_BINDIR ${CMAKE_INSTALL_PREFIX}/${rheo_bindir})
set(RHEO_DOC_DIR ${CMAKE_INSTALL_PREFIX}/${rheo_datadir}/doc/rheo)
set(RHEO_CONFIG_FILE ${rheo_etc_dir}/rheo.json)

file(INSTALL DESTINATION ${rheo_etc_dir} TYPE FILE FILES ${rheo_source_dir}/config/rheo.json)
# Written straight to its destination: two installations at once (other prefixes) do not
# share a file.
set(rheo_unit ${CMAKE_INSTALL_PREFIX}/lib/systemd/system/rheo.service)
message(STATUS "Installing: $ENV{DESTDIR}${rheo_unit}")
configure_file(${rheo_source_dir}/config/systemd/rheo.service.in $ENV{DESTDIR}${rheo_unit} @ONLY)
file(CHMOD $ENV{DESTDIR}${rheo_unit} PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
list(APPEND CMAKE_INSTALL_MANIFEST_FILES ${rheo_unit})
