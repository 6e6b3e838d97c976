# SPDX-License-Identifier: MIT
# libev-dev ships no pkg-config file: find the header and library by hand.
find_path(LIBEV_INCLUDE_DIR ev.h)
find_library(LIBEV_LIBRARY ev)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Libev DEFAULT_MSG LIBEV_LIBRARY LIBEV_INCLUDE_DIR)
if(Libev_FOUND AND NOT TARGET Libev::ev)
    add_library(Libev::ev UNKNOWN IMPORTED)
    set_target_properties(Libev::ev PROPERTIES
        IMPORTED_LOCATION "${LIBEV_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${LIBEV_INCLUDE_DIR}")
endif()
