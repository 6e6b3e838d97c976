# SPDX-License-Identifier: MIT
# What `cmake --install` puts where, and the Debian package CPack makes of it.
#
#   PREFIX/bin/{server,proxy,client,certs-tool}
#   PREFIX/share/man/man1/{server,proxy,client,certs-tool}.1.gz     (help2man, from --help)
#   PREFIX/lib/systemd/system/tunnel-{server,proxy,client}.service
#   PREFIX/lib/sysusers.d/tunnel.conf                                (the user tunnel)
#   SYSCONF/tunnel/{server,proxy,client}.yaml                        (deploy/configs)
#
# SYSCONF is /etc when PREFIX is /usr (the package), PREFIX/etc otherwise.  The units name
# the programs and configs with the prefix they are installed with.  The programs keep the
# names the design gives them (server, proxy, client): the package is for machines that run
# the tunnel, and the units and man pages call them tunnel-*.service and server(1).
include(GNUInstallDirs)

install(TARGETS server proxy client certs-tool RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# ---- man pages ------------------------------------------------------------------------------
# Made from each program's --help and --version, with the sections of deploy/man/PROG.h2m.
option(TN_MAN "Build and install the man pages (needs help2man)" ON)
if(TN_MAN)
    find_program(HELP2MAN help2man)
    if(NOT HELP2MAN)
        message(WARNING "help2man not found: no man pages (deploy/install-deps.sh installs it)")
    endif()
endif()
if(TN_MAN AND HELP2MAN)
    set(_tn_man_pages)
    foreach(prog server proxy client certs-tool)
        set(inc ${PROJECT_SOURCE_DIR}/deploy/man/${prog}.h2m)
        set(page ${PROJECT_BINARY_DIR}/man/${prog}.1)
        add_custom_command(
            OUTPUT ${page}.gz
            COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
            COMMAND ${HELP2MAN} --no-info
                    --section=1 --source=Network\ Tunneler --manual=User\ Commands
                    --include=${inc} --output=${page} $<TARGET_FILE:${prog}>
            COMMAND gzip -9 -n -f ${page}
            DEPENDS ${prog} ${inc}
            COMMENT "Man page ${prog}.1 from ${prog} --help"
            VERBATIM)
        list(APPEND _tn_man_pages ${page}.gz)
    endforeach()
    add_custom_target(man ALL DEPENDS ${_tn_man_pages})
    install(FILES ${_tn_man_pages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()

# ---- systemd units, the system user, example configs -----------------------------------------
# At install time, when the prefix is known (CPack installs with /usr, whatever the build was
# configured with).  The units in deploy/systemd name /usr/bin and /etc/tunnel, the package's
# paths; other prefixes get them rewritten.  An existing config is kept, never overwritten.
install(CODE "set(TN_DEPLOY \"${PROJECT_SOURCE_DIR}/deploy\")
set(TN_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
set(TN_STAGE \"${PROJECT_BINARY_DIR}/install-stage\")")
install(CODE [[
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(_tn_etc /etc/tunnel)
else()
    set(_tn_etc ${CMAKE_INSTALL_PREFIX}/etc/tunnel)
endif()
# A directory of this install's own: installs (cpack, tests) may run at the same time.
string(RANDOM LENGTH 12 _tn_stage)
set(_tn_stage ${TN_STAGE}/${_tn_stage})
foreach(_tn_unit tunnel-server.service tunnel-proxy.service tunnel-client.service)
    file(READ ${TN_DEPLOY}/systemd/${_tn_unit} _tn_text)
    string(REPLACE "=/usr/bin/" "=${CMAKE_INSTALL_PREFIX}/${TN_BINDIR}/" _tn_text "${_tn_text}")
    string(REPLACE "/etc/tunnel" "${_tn_etc}" _tn_text "${_tn_text}")
    file(WRITE ${_tn_stage}/${_tn_unit} "${_tn_text}")
    file(INSTALL DESTINATION ${CMAKE_INSTALL_PREFIX}/lib/systemd/system TYPE FILE
         FILES ${_tn_stage}/${_tn_unit})
endforeach()
file(REMOVE_RECURSE ${_tn_stage})
file(INSTALL DESTINATION ${CMAKE_INSTALL_PREFIX}/lib/sysusers.d TYPE FILE
     RENAME tunnel.conf FILES ${TN_DEPLOY}/systemd/tunnel.sysusers)
foreach(_tn_conf server.yaml proxy.yaml client.yaml)
    if(EXISTS "$ENV{DESTDIR}${_tn_etc}/${_tn_conf}")
        message(STATUS "Keeping: $ENV{DESTDIR}${_tn_etc}/${_tn_conf}")
    else()
        file(INSTALL DESTINATION ${_tn_etc} TYPE FILE FILES ${TN_DEPLOY}/configs/${_tn_conf})
    endif()
endforeach()
]])

# ---- the Debian package (cpack -G DEB) -------------------------------------------------------
# Depends: dpkg-shlibdeps reads the libraries the programs load (libssl3, libnghttp2-14,
# libprotobuf-c1, libev4, libyaml-0-2, libc6: libnetfilter_queue and libmnl are linked
# --as-needed and not loaded, the client intercepts with iptables), plus iptables, which the
# client runs.  The configs are conffiles; postinst creates the user tunnel.
set(TN_PACKAGE_CONTACT "Network Tunneler maintainers <tunnel@example.org>"
    CACHE STRING "Maintainer field of the Debian package")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tunnel)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT ${TN_PACKAGE_CONTACT})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "transparent TCP tunnel over HTTP/2 and mutual TLS")
set(CPACK_PACKAGE_DESCRIPTION
    "Clients reach remote networks through a relay and a proxy inside each network, as if they were local. Contains the relay (server), the proxy, the client and certs-tool, with systemd units and example configs in /etc/tunnel.")
# DESTDIR staging with the prefix /usr, so that the install code above sees the package's
# prefix (and puts the configs in /etc).
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "iptables")
set(_tn_debian ${PROJECT_BINARY_DIR}/debian)
file(WRITE ${_tn_debian}/conffiles
     "/etc/tunnel/client.yaml\n/etc/tunnel/proxy.yaml\n/etc/tunnel/server.yaml\n")
file(COPY ${PROJECT_SOURCE_DIR}/deploy/debian/postinst ${PROJECT_SOURCE_DIR}/deploy/debian/postrm
     DESTINATION ${_tn_debian}
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                      WORLD_READ WORLD_EXECUTE)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${_tn_debian}/conffiles ${_tn_debian}/postinst ${_tn_debian}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
