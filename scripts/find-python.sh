#!/usr/bin/env bash
# Prints the path of a working python3.12: Lambda's runtime version, which the tests,
# the local runtime and `sam build` all use. Looks on PATH, then in pyenv's versions.
set -u
want=3.12
candidates=("python$want")
if command -v pyenv >/dev/null 2>&1; then
  for dir in "$(pyenv root)"/versions/"$want"*/bin; do candidates+=("$dir/python$want"); done
fi
for python in "${candidates[@]}"; do
  if [[ $("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) == "$want" ]]; then
    command -v "$python"
    exit 0
  fi
done
echo "Lightbox needs Python $want (the Lambda runtime's version); install it (pyenv install $want)" >&2
exit 1
