# SPDX-License-Identifier: MIT
# Embeds a file in a C source as `const char NAME[]` (NUL-terminated) and `NAME_len`:
#   cmake -DIN=page.html -DOUT=page.c -DNAME=symbol -P Embed.cmake
# (the relay's dashboard page is served from the binary, with nothing to install beside it).
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR len "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}" "/* Generated from ${IN} by cmake/Embed.cmake: do not edit. */\n#include <stddef.h>\n"
    "const char ${NAME}[] = {\n${bytes}0x00};\nconst size_t ${NAME}_len = ${len};\n")
