#!/usr/bin/env bash
# weft as a dependency: install the build into a temporary prefix, then
# build programs outside the tree against it, through pkg-config (shared and
# static) and through find_package(weft) (weft::weft, weft::weft_static),
# as strict C11 (-std=c11 -pedantic -Werror) and as C++, and run them.
#   test_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$(realpath "$1"); SRC=$(realpath "$2")
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
P=$T/prefix
cmake --install "$BUILD" --prefix "$P" >/dev/null
C=$SRC/tests/install/consumer
export PKG_CONFIG_PATH=$P/lib/pkgconfig:$P/lib/$(gcc -print-multiarch)/pkgconfig
LIBDIR=$(pkg-config --variable=libdir weft)
STRICT="-std=c11 -pedantic -Wall -Wextra -Werror"
fail() { echo "not ok - $1"; exit 1; }

test -L "$LIBDIR/libweft.so" && test -L "$LIBDIR/libweft.so.0" || fail "libweft.so -> libweft.so.0 links"
ls "$LIBDIR"/libweft.so.0.*.* >/dev/null || fail "libweft.so.0.N.M"
readelf -d "$LIBDIR/libweft.so" | grep -q 'SONAME.*libweft.so.0' || fail "SONAME libweft.so.0"
test -f "$LIBDIR/libweft.a" || fail "libweft.a"
test -x "$P/bin/weft" && "$P/bin/weft" --version | grep -q '^weft ' || fail "bin/weft --version"
echo "ok - installed: $(ls "$LIBDIR" | grep weft | tr '\n' ' ')"

gcc $STRICT $(pkg-config --cflags weft) "$C/consumer.c" -o "$T/c_shared" $(pkg-config --libs weft)
LD_LIBRARY_PATH=$LIBDIR "$T/c_shared" || fail "pkg-config, shared, strict C11"
echo "ok - pkg-config, shared, strict C11"
# libweft.a with its dependencies' shared libraries (Debian ships no static libpq
# to link with pkg-config --static): the Requires.private of weft.pc, plainly
gcc $STRICT $(pkg-config --cflags weft) "$C/consumer.c" -o "$T/c_static" \
    "$LIBDIR/libweft.a" $(pkg-config --libs $(pkg-config --print-requires-private weft)) \
    -lpthread -ldl -lm
"$T/c_static" || fail "pkg-config --static"
ldd "$T/c_static" | grep -q libweft && fail "the static program links libweft.so"
echo "ok - pkg-config, static, strict C11"
g++ -std=c++17 -pedantic -Wall -Wextra -Werror $(pkg-config --cflags weft) "$C/consumer.cpp" \
    -o "$T/cxx" $(pkg-config --libs weft)
LD_LIBRARY_PATH=$LIBDIR "$T/cxx" || fail "C++"
echo "ok - pkg-config, C++17 -pedantic"

cmake -S "$C" -B "$T/cm" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_C_FLAGS="-pedantic -Werror" >/dev/null
cmake --build "$T/cm" -j2 >/dev/null || fail "find_package(weft) build"
for p in consumer_shared consumer_static consumer_cxx; do
  LD_LIBRARY_PATH=$LIBDIR "$T/cm/$p" >/dev/null || fail "find_package: $p"
done
echo "ok - find_package(weft): weft::weft, weft::weft_static, C++"
