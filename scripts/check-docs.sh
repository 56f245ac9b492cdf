#!/usr/bin/env bash
# Checks the documentation's links, so that moving or renaming a heading or a
# file cannot leave a reader at a dead end:
#   - every relative link in README.md and docs/*.md names a file or folder
#     that exists in the repository;
#   - every #anchor (in the same file or in another .md file) matches a heading
#     of that file, slugged as GitHub slugs them;
#   - every docs/*.md page is linked from README.md.
# Links to other sites (http:, https:, mailto:) are not fetched. Exits 1 and
# lists every broken link; exits 0 and prints a count otherwise.
# Usage: bash scripts/check-docs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
exec /usr/bin/python3 - README.md docs/*.md <<'EOF'
import os
import re
import sys
import unicodedata

FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
# [text](target) and ![alt](target); the target ends at white space or ')'.
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
HTML_ID = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")


def slug(heading):
    """GitHub's heading anchor: the rendered text, lower case, with every
    character that is not a letter, mark, digit, connector (_), space or
    hyphen removed and each space made a hyphen."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = re.sub(r"<[^>]+>", "", text)                          # HTML tags
    text = CODE_SPAN.sub(lambda m: m.group(2), text)
    text = re.sub(r"(\*\*|\*)(.+?)\1", r"\2", text)              # emphasis with *
    text = re.sub(r"(?<!\w)(__|_)(.+?)\1(?!\w)", r"\2", text)     # with _, not inside words
    out = []
    for c in text.lower():
        cat = unicodedata.category(c)
        if c == " ":
            out.append("-")
        elif c == "-" or cat[0] in "LMN" or cat == "Pc":
            out.append(c)
    return "".join(out)


def parse(path):
    """The anchors of a Markdown file and its links as (line, target)."""
    anchors, links, seen = set(), [], {}
    fence = None
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            m = FENCE.match(line)
            if m:
                mark = m.group(1)
                if fence is None:
                    fence = mark
                elif mark[0] == fence[0] and len(mark) >= len(fence) and not line.strip()[len(mark):]:
                    fence = None
                continue
            if fence is not None:
                continue
            h = HEADING.match(line)
            if h:
                base = slug(h.group(2))
                count = seen.get(base, 0)
                seen[base] = count + 1
                anchors.add(base if count == 0 else "%s-%d" % (base, count))
            anchors.update(HTML_ID.findall(line))
            for target in LINK.findall(CODE_SPAN.sub("", line)):
                links.append((n, target))
    return anchors, links


files = sys.argv[1:]
parsed = {os.path.normpath(p): parse(p) for p in files}
broken = []
readme_targets = set()
total = 0
for path in files:
    here = os.path.normpath(path)
    for n, target in parsed[here][1]:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
            continue  # another site: not checked here
        total += 1
        file_part, _, anchor = target.partition("#")
        dest = os.path.normpath(os.path.join(os.path.dirname(here), file_part)) if file_part else here
        where = "%s:%d: %s" % (path, n, target)
        if os.path.isabs(file_part) or dest.startswith(".."):
            broken.append("%s: leaves the repository" % where)
            continue
        if not os.path.exists(dest):
            broken.append("%s: no such file" % where)
            continue
        if here == "README.md":
            readme_targets.add(dest)
        if anchor:
            if not dest.endswith(".md") or os.path.isdir(dest):
                broken.append("%s: an anchor into a file that is not Markdown" % where)
                continue
            if dest not in parsed:
                parsed[dest] = parse(dest)
            if anchor not in parsed[dest][0]:
                broken.append("%s: no heading '#%s' in %s" % (where, anchor, dest))
for page in sorted(p for p in parsed if p.startswith("docs" + os.sep) and p in map(os.path.normpath, files)):
    if page not in readme_targets:
        broken.append("README.md: does not link %s" % page)
if broken:
    print("check-docs: %d broken:" % len(broken), file=sys.stderr)
    for b in broken:
        print("  " + b, file=sys.stderr)
    sys.exit(1)
print("check-docs: %d relative links and anchors in %d files resolve; README.md links every docs page"
      % (total, len(files)))
EOF
