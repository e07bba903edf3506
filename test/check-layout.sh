#!/usr/bin/env bash
# The C layers' include rule (docs/architecture-c.md), checked by grepping the #include lines:
#   - src/core and src/decoder include no PostgreSQL header and no glue header;
#   - a service (src/*.c not named *_sql.c) has no SQL entry point (PG_FUNCTION_INFO_V1, GIK_SQL_FORWARD) and includes
#     no *_sql.h;
#   - a SQL area (src/*_sql.c) includes only PostgreSQL headers, core headers and services headers,
#     never another area's *_sql.h.
# Prints "ok N - file" / "not ok N - file: why" per file and a summary line; exits 1 on any violation.
#   test/check-layout.sh [SRC-DIR]     SRC-DIR defaults to this checkout's src/; PG_CONFIG names pg_config
set -uo pipefail
src=${1:-$(cd "$(dirname "$0")/../src" && pwd)}
pg_inc=$("${PG_CONFIG:-pg_config}" --includedir-server 2>/dev/null || true)
n=0
failed=0

# Quoted and angled include targets of a file, one a line.
includes() { sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]\([^>"]*\)[>"].*/\1/p' "$1"; }

# True when an include names a PostgreSQL server header (found in its include directory, or by the
# top-level names every server header lives under when pg_config is not at hand).
is_pg_header() {
  [ -n "$pg_inc" ] && [ -f "$pg_inc/$1" ] && return 0
  case $1 in
    postgres.h|postgres_fe.h|c.h|fmgr.h|funcapi.h|miscadmin.h|pgstat.h|pg_config*.h|varatt.h) return 0 ;;
    access/*|catalog/*|commands/*|common/*|datatype/*|executor/*|lib/*|libpq/*|mb/*|nodes/*|optimizer/*|\
    parser/*|port/*|postmaster/*|replication/*|storage/*|tcop/*|utils/*) return 0 ;;
  esac
  return 1
}

check() { # file why-list
  n=$((n + 1))
  if [ -z "$2" ]; then echo "ok $n - ${1#"$src"/}"; else failed=$((failed + 1)); echo "not ok $n - ${1#"$src"/}:$2"; fi
}

# core and decoder: plain C (the decoder also links ecCodes); their quoted includes are core/ or decoder/ headers.
for f in "$src"/core/*.[ch] "$src"/decoder/*.[ch]; do
  [ -e "$f" ] || continue
  why=""
  dir=$(basename "$(dirname "$f")")
  while read -r inc; do
    [ -z "$inc" ] && continue
    if grep -qE "^[[:space:]]*#[[:space:]]*include[[:space:]]*\"$inc\"" "$f"; then
      case $inc in
        core/*) [ -f "$src/$inc" ] || why="$why \"$inc\" is not a core header;" ;;
        decoder/*) [ "$dir" = decoder ] && [ -f "$src/$inc" ] || why="$why \"$inc\" is a decoder header;" ;;
        *) if [ -f "$src/$dir/$inc" ]; then :; else why="$why \"$inc\" is not a $dir header;"; fi ;;
      esac
    elif is_pg_header "$inc" && [ ! -f "/usr/include/$inc" ]; then
      why="$why <$inc> is a PostgreSQL header;"
    fi
  done < <(includes "$f")
  check "$f" "$why"
done

# backend glue: services and SQL areas
for f in "$src"/*.[ch]; do
  [ -e "$f" ] || continue
  base=$(basename "$f")
  own=${base%.*}
  why=""
  area=0
  case $base in *_sql.c) area=1 ;; esac
  if [ $area -eq 0 ] && [ "${base##*.}" = c ] && grep -qE 'PG_FUNCTION_INFO_V1|GIK_SQL_FORWARD\(' "$f" && [ "$base" != args.h ]; then
    why="$why a service with SQL entry points (name it *_sql.c or move them);"
  fi
  while read -r inc; do
    [ -z "$inc" ] && continue
    if ! grep -qE "^[[:space:]]*#[[:space:]]*include[[:space:]]*\"$inc\"" "$f"; then
      continue    # <system> headers
    fi
    case $inc in
      core/*) [ -f "$src/$inc" ] || why="$why \"$inc\" is not a core header;" ;;
      decoder/*) why="$why \"$inc\" is the decoder program's;" ;;
      *_sql.h) [ "$inc" = "$own.h" ] && [ $area -eq 1 ] || why="$why \"$inc\" is another SQL area's header;" ;;
      *) if [ -f "$src/$inc" ]; then :; elif is_pg_header "$inc"; then :; else why="$why \"$inc\" is neither a services, core nor PostgreSQL header;"; fi ;;
    esac
  done < <(includes "$f")
  check "$f" "$why"
done

echo "# layout: $((n - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
