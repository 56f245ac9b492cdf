# Sourced by integration/fresh_machine.sh and integration/test_image.sh: a
# fresh Debian 12 root from a cached mmdebstrap tarball, commands run inside
# it with chroot, its safe removal, and a timing summary of the steps.
# shellcheck shell=bash

FR_CACHE_DIR=${LARDER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/larder}
FR_TARBALL=$FR_CACHE_DIR/bookworm-minbase.tar
FR_MAX_AGE_DAYS=7

# A missing prerequisite: skipped (77) on a developer's machine, a failure in CI.
fr_prerequisite_missing() {
  if [ "${CI:-}" = true ]; then
    echo "$FR_NAME: FAIL: $1 (CI=true: a missing prerequisite is a failure)" >&2
    exit 1
  fi
  echo "$FR_NAME: skipped: $1" >&2
  exit 77
}

fr_need_root() {
  [ "$(id -u)" -eq 0 ] || fr_prerequisite_missing "must run as root"
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || fr_prerequisite_missing "$tool is not installed (scripts/deps.sh --test installs it)"
  done
}

# --- timing ------------------------------------------------------------------
FR_STEPS=()
FR_STEP=
FR_STEP_T0=0
FR_T0=$(date +%s)
fr_step() { # fr_step NAME: ends the current step, starts NAME
  fr_step_end
  FR_STEP=$1
  FR_STEP_T0=$(date +%s)
  echo "-- $FR_NAME: $FR_STEP"
}
fr_step_end() { # fr_step_end [NOTE]
  [ -n "$FR_STEP" ] || return 0
  FR_STEPS+=("$(printf '%5d s  %s%s' $(($(date +%s) - FR_STEP_T0)) "$FR_STEP" "${1:+  <- $1}")")
  FR_STEP=
}
# For the EXIT trap: ends the running step (marked when STATUS is a failure)
# and starts the cleanup step.
fr_exit_begin() { # fr_exit_begin STATUS
  if [ "$1" -ne 0 ]; then fr_step_end "failed here (exit $1)"; else fr_step_end; fi
  fr_step cleanup
}
fr_timing_summary() { # fr_timing_summary STATUS
  fr_step_end
  echo "-- $FR_NAME: timings"
  local line
  for line in "${FR_STEPS[@]}"; do echo "$line"; done
  if [ "$1" -eq 0 ]; then
    printf '%5d s  total: passed\n' $(($(date +%s) - FR_T0))
  else
    printf '%5d s  total: FAILED (exit %d)\n' $(($(date +%s) - FR_T0)) "$1"
  fi
}

# --- the cached tarball ------------------------------------------------------
# The Debian mirror the host's apt uses (deb822 .sources first, then
# sources.list); $LARDER_DEBIAN_MIRROR overrides it.
fr_mirror() {
  if [ -n "${LARDER_DEBIAN_MIRROR:-}" ]; then
    echo "$LARDER_DEBIAN_MIRROR"
    return
  fi
  local m=""
  m=$(awk '
    function flush() {
      if (!found && uris != "" && (" " suites " ") ~ /[ \t]bookworm[ \t]/) { split(uris, u, " "); print u[1]; found = 1 }
      uris = ""; suites = ""
    }
    FNR == 1 { flush() }
    /^[ \t]*$/ { flush(); next }
    tolower($1) == "uris:" { $1 = ""; uris = $0 }
    tolower($1) == "suites:" { $1 = ""; suites = $0 }
    END { flush() }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
    m=$(sed -nE 's/^deb[ \t]+(\[[^]]*\][ \t]+)?([^ \t]+)[ \t]+bookworm[ \t].*/\2/p' /etc/apt/sources.list | head -n1)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

# Makes (or reuses, when less than a week old) the minbase tarball.
fr_tarball() {
  mkdir -p "$FR_CACHE_DIR"
  exec 8>"$FR_CACHE_DIR/.lock"
  flock 8
  if [ -s "$FR_TARBALL" ] && [ -n "$(find "$FR_TARBALL" -mtime -"$FR_MAX_AGE_DAYS")" ]; then
    echo "$FR_NAME: reusing $FR_TARBALL"
  else
    local mirror tmp
    mirror=$(fr_mirror)
    tmp=$FR_CACHE_DIR/.bookworm-minbase.$$.tar
    echo "$FR_NAME: mmdebstrap --variant=minbase --include=ca-certificates bookworm $FR_TARBALL $mirror"
    if mmdebstrap --quiet --variant=minbase --include=ca-certificates bookworm "$tmp" "$mirror" \
      >"$FR_CACHE_DIR/mmdebstrap.log" 2>&1; then
      mv -f "$tmp" "$FR_TARBALL"
    else
      rm -f "$tmp"
      tail -n 20 "$FR_CACHE_DIR/mmdebstrap.log" >&2
      if [ -s "$FR_TARBALL" ]; then
        echo "$FR_NAME: mmdebstrap failed; using the older tarball" >&2
      else
        echo "$FR_NAME: mmdebstrap failed (log: $FR_CACHE_DIR/mmdebstrap.log)" >&2
        flock -u 8
        return 1
      fi
    fi
  fi
  flock -u 8
  exec 8>&-
}

# --- a root ------------------------------------------------------------------
FR_ROOTS=()

# fr_new_root VAR: unpacks the tarball into a new folder, mounts /proc and
# /dev in it, and sets VAR to its path.
fr_new_root() {
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/larder-fresh.XXXXXX")
  dir=$(realpath "$dir")
  FR_ROOTS+=("$dir")
  tar -C "$dir" --numeric-owner -xpf "$FR_TARBALL"
  cp -L /etc/resolv.conf "$dir/etc/resolv.conf"
  mount -t proc proc "$dir/proc"
  mount --rbind /dev "$dir/dev"
  mount --make-rslave "$dir/dev"
  printf -v "$1" '%s' "$dir"
}

# fr_copy_repo REPO ROOT DEST: the files git tracks, as they are in the
# working tree (uncommitted changes included; deleted ones left out).
fr_copy_repo() {
  local repo=$1 dest=$2$3
  mkdir -p "$dest"
  # safe.directory: CI may run as root in a checkout that another user owns.
  local git=(git -c safe.directory="$repo" -C "$repo")
  if "${git[@]}" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$repo" && "${git[@]}" ls-files -z | while IFS= read -r -d '' f; do
      if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
    done | tar --null --no-recursion -T - -cf -) | tar -C "$dest" -xf -
  else # not a git checkout (an unpacked release, say): what .gitignore leaves out, by hand
    tar -C "$repo" --exclude=./.git --exclude='./build*' --exclude=./examples/data \
      --exclude=node_modules --exclude=__pycache__ -cf - . | tar -C "$dest" -xf -
  fi
}

# fr_run ROOT SCRIPT: runs SCRIPT with bash inside ROOT as root, with a clean
# environment.
fr_run() {
  chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root bash -c "$2"
}

# Mount points at or under $1, deepest first.
fr_mounts_under() {
  awk -v r="$1" '{ p = $2; gsub(/\\040/, " ", p); if (p == r || index(p, r "/") == 1) print length(p) " " p }' \
    /proc/self/mounts | sort -rn | cut -d' ' -f2-
}

# Processes whose root directory is $1 or under it.
fr_pids_in() {
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    if [ "$r" = "$1" ] || [ "${r#"$1"/}" != "$r" ]; then echo "${p#/proc/}"; fi
  done
}

# fr_remove_root ROOT: kills what runs inside, unmounts everything under it
# (deepest first) and only then deletes it; a root with a mount left is kept.
fr_remove_root() {
  local root=$1 pids m
  [ -d "$root" ] || return 0
  pids=$(fr_pids_in "$root")
  if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 50); do
      pids=$(fr_pids_in "$root")
      [ -n "$pids" ] || break
      sleep 0.1
    done
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
    sleep 0.2
  fi
  for _ in 1 2 3; do
    while IFS= read -r m; do
      [ -n "$m" ] || continue
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done < <(fr_mounts_under "$root")
    [ -n "$(fr_mounts_under "$root")" ] || break
    sleep 0.5
  done
  if [ -n "$(fr_mounts_under "$root")" ]; then
    echo "$FR_NAME: still mounted under $root, not deleting it:" >&2
    fr_mounts_under "$root" >&2
    return 1
  fi
  rm -rf --one-file-system "$root"
}

fr_remove_roots() {
  local r status=0
  for r in "${FR_ROOTS[@]}"; do fr_remove_root "$r" || status=1; done
  FR_ROOTS=()
  return $status
}

# --- ports -------------------------------------------------------------------
# True when something listens on TCP port $1 (any address, IPv4 or IPv6).
fr_port_listening() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v h="$hex" '$4 == "0A" { split($2, a, ":"); if (a[2] == h) found = 1 } END { exit !found }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
