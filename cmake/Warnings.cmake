# SPDX-License-Identifier: MIT
# The warning set of every target; TN_WERROR turns them into errors (CI sets it).
function(tn_target_warnings target)
    target_compile_options(${target} PRIVATE
        -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes
        -Wcast-qual -Wformat=2 -Wundef -Wvla -Wsign-compare)
    if(TN_WERROR)
        target_compile_options(${target} PRIVATE -Werror)
    endif()
endfunction()
