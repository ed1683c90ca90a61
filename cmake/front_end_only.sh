# Compiler launcher of the front-end-only checks (cmake/PolyalpacaTestBuild.cmake): runs the compile command it is
# given, whose flags stop the compiler after its front end, then creates the empty object file the command names.
"$@" || exit
output=
previous=
for argument in "$@"; do
  if [ "$previous" = "-o" ]; then
    output=$argument
  fi
  previous=$argument
done
: > "$output"
