# SPDX-License-Identifier: MIT
# TN_SANITIZE=address,undefined builds every target with those sanitizers, aborting on the
# first report so that a test fails instead of printing and going on.
function(tn_target_sanitizers target)
    if(TN_SANITIZE)
        target_compile_options(${target} PRIVATE -fsanitize=${TN_SANITIZE}
            -fno-sanitize-recover=all -fno-omit-frame-pointer)
        target_link_options(${target} PRIVATE -fsanitize=${TN_SANITIZE})
    endif()
endfunction()
