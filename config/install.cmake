# Install rules (`cmake --install build [--prefix P]`) and the Debian package
# (`cpack -G DEB` in the build folder, see config/debian/). Included by the top-level
# CMakeLists.txt.
#
#   P/bin/rheo                       the server
#   P/share/rheo/web/                the chat app (the binary finds it next to itself)
#   P/share/doc/rheo/                README.md, example.json
#   ETC/rheo/rheo.json               the installed config (a conffile in the package)
#   P/lib/systemd/system/rheo.service
#
# ETC is /etc when P is /usr (the package), else P/etc: it and the unit's paths are worked
# out at install time, because cpack installs with its own prefix (/usr).
include(GNUInstallDirs)

install(TARGETS rheo RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The pages and what they load: of the JavaScript client, its sources (not its tests, its
# development packages or its npm files).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/web/ DESTINATION ${CMAKE_INSTALL_DATADIR}/rheo/web
        REGEX "/rheo-client/(node_modules|test)$" EXCLUDE
        REGEX "/rheo-client/(package.*\\.json|.*\\.tgz)$" EXCLUDE)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/config/example.json
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/rheo)
install(CODE "
  set(rheo_source_dir \"${PROJECT_SOURCE_DIR}\")
  set(rheo_bindir \"${CMAKE_INSTALL_BINDIR}\")
  set(rheo_datadir \"${CMAKE_INSTALL_DATADIR}\")
  include(\"${PROJECT_SOURCE_DIR}/config/install_files.cmake\")
")

# The installed binary looks for the chat app at this path relative to its own folder.
file(RELATIVE_PATH RHEO_INSTALLED_WEB_DIR ${CMAKE_INSTALL_FULL_BINDIR}
     ${CMAKE_INSTALL_FULL_DATADIR}/rheo/web)
target_compile_definitions(rheo PRIVATE RHEO_INSTALLED_WEB_DIR="${RHEO_INSTALLED_WEB_DIR}")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME rheo)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "rheo maintainers <rheo@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "realtime data server (REST, WebSocket and SSE change streams)")
set(CPACK_PACKAGE_DESCRIPTION
    "rheo serves JSON documents over a RESTHeart-compatible REST API and pushes every change\n"
    "to WebSocket and Server-Sent Events clients, on an embedded SQLite store or MongoDB.\n"
    "The package runs it as the systemd service rheo.service with the chat app.")
string(REPLACE ";" "" CPACK_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The libraries' packages come from dpkg-shlibdeps; the maintainer scripts need adduser.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/config/debian/conffiles ${PROJECT_SOURCE_DIR}/config/debian/postinst
    ${PROJECT_SOURCE_DIR}/config/debian/prerm ${PROJECT_SOURCE_DIR}/config/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
