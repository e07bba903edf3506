#!/usr/bin/env bash
# Check the SQL install parts (no database needed): each part of sql/pg_gik/ uses only the gik objects that
# it or an earlier part (in name order, the order the Makefile concatenates them) defines, and every routine
# carries a privilege class (a "-- grant: reader" or "-- grant: ingest" line right above its CREATE).
# Comments and quoted strings are left out (settings such as 'gik.fetch_retries', dynamic partition names).
#   test/check-sql-parts.sh [DIR]    DIR defaults to sql/pg_gik; prints one line per problem, exits 1 on any
set -euo pipefail
dir=${1:-$(cd "$(dirname "$0")/.." && pwd)/sql/pg_gik}
exec /usr/bin/env python3 - "$dir" <<'PY'
import glob, os, re, sys

parts = sorted(glob.glob(os.path.join(sys.argv[1], '*.sql')))
create = re.compile(r'\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP\s+)?'
                    r'(FUNCTION|PROCEDURE|AGGREGATE|VIEW|TABLE|TYPE|SEQUENCE|OPERATOR)\s+gik\.([a-z_][a-z0-9_]*)', re.I)
use = re.compile(r'(?<![\w.])gik\.([a-z_][a-z0-9_]*)(?![\w%])')
routine = ('FUNCTION', 'PROCEDURE', 'AGGREGATE')

def code(text):
    """The text without comments and quoted strings (dollar-quoted bodies are kept: they are code)."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith('--', i):
            j = text.find('\n', i)
            i = n if j < 0 else j
        elif text[i] == "'":
            j = i + 1
            while j < n and not (text[j] == "'" and not text.startswith("''", j)):
                j += 2 if text.startswith("''", j) else 1
            out.append("''" + '\n' * text.count('\n', i, j))  # keep line numbers
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return ''.join(out)

defined, problems = set(), []
for part in parts:
    name = os.path.basename(part)
    text = open(part).read()
    lines = text.split('\n')
    body = code(text)
    here = {m.group(2).lower() for m in create.finditer(body)}
    # a privilege class right above every routine (above its leading comment lines)
    for k, line in enumerate(lines):
        m = re.match(r'CREATE\s+(?:OR\s+REPLACE\s+)?(FUNCTION|PROCEDURE|AGGREGATE)\s+gik\.(\w+)', line, re.I)
        if not m:
            continue
        j = k - 1
        while j >= 0 and lines[j].startswith('--') and not lines[j].startswith('-- grant:'):
            j -= 1
        if j < 0 or not re.match(r'-- grant: (reader|ingest)$', lines[j]):
            problems.append(f'{name}:{k + 1}: gik.{m.group(2)} has no "-- grant: reader" or "-- grant: ingest" line above it')
    known = defined | here
    for m in use.finditer(body):
        obj = m.group(1).lower()
        if obj not in known:
            line = body[:m.start()].count('\n') + 1
            problems.append(f'{name}:{line}: gik.{obj} is not defined in this part or an earlier one')
    defined |= here

for p in problems:
    print(p)
print(f'# {len(parts)} parts, {len(defined)} gik objects, {len(problems)} problems')
sys.exit(1 if problems else 0)
PY
