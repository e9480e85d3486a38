#!/usr/bin/env bash
# deps.sh - install the Debian packages a procbus build step needs, only those missing.
# Usage: scripts/deps.sh core|fuzz|bpf|format|peer|prom|all
set -euo pipefail

core=(liburcu-dev libcmocka-dev libinih-dev libjson-c-dev g++ pkg-config libncurses-dev tmux libmicrohttpd-dev)
fuzz=(clang libclang-rt-14-dev)
bpf=(libbpf-dev clang llvm bpftool libelf-dev zlib1g-dev)
format=(clang-format)
peer=(supervisor)
prom=(prometheus)

want=()
case "${1:-core}" in
core) want=("${core[@]}") ;;
fuzz) want=("${fuzz[@]}") ;;
bpf) want=("${bpf[@]}") ;;
format) want=("${format[@]}") ;;
peer) want=("${peer[@]}") ;;
prom) want=("${prom[@]}") ;;
all) want=("${core[@]}" "${fuzz[@]}" "${bpf[@]}" "${format[@]}" "${peer[@]}" "${prom[@]}") ;;
*) echo "deps.sh: unknown set '$1' (core|fuzz|bpf|format|peer|prom|all)" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps.sh: installing missing Debian packages: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        sudo="sudo -n"
    else
        echo "deps.sh: not root and no sudo: install ${missing[*]} yourself (apt-get install)" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq </dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
