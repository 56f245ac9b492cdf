#!/usr/bin/python3
"""Writes tz_cases.json: what Python's zoneinfo says, which is what Feast's
feature server writes, for instants in every zone of the system's tzdata.zi,
for tests/common/test_tz.c to hold larder's TZif reader to.

Each zone gets: an instant before its first transition (time type 0), both
sides of one transition from 1900 to 2037 (the TZif data), both sides of one
from 2038 to 2100 (the footer's rule), and one instant anywhere from 1900 to
2100. Transitions are found by stepping a week at a time through Python's
offsets and bisecting where they change, so the table does not depend on
reading TZif files the way larder does. A few instants at the edges of
Python's years 1..9999 follow, with null where Python raises.

    /usr/bin/python3 tests/data/gen_tz_cases.py > tests/data/tz_cases.json

--full writes every transition found from 1800 to 2100 (both sides) and 20
random instants a zone instead, for a one-off check of a few hundred thousand
cases: LDR_TZ_CASES=/tmp/tz_full.json build/tests/test_tz
"""

import json
import random
import sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

ZONEINFO = "/usr/share/zoneinfo"
WEEK = 7 * 86400


def utc(*args):
    return int(datetime(*args, tzinfo=timezone.utc).timestamp())


def zone_names():
    """The zones and links tzdata.zi defines, and its version."""
    names, version = set(), None
    with open(f"{ZONEINFO}/tzdata.zi") as f:
        for line in f:
            fields = line.split()
            if line.startswith("# version"):
                version = fields[2]
            elif fields and fields[0] == "Z":
                names.add(fields[1])
            elif fields and fields[0] == "L":
                names.add(fields[2])
    return sorted(names), version


def text(t, tz):
    try:
        return datetime.fromtimestamp(t, tz).isoformat()
    except (OverflowError, ValueError):
        return None


def offset(t, tz):
    return datetime.fromtimestamp(t, tz).utcoffset()


def transitions(tz, start, end):
    """Instants from start to end where the offset changes (the first second
    of the new one), to the second."""
    found, t, off = [], start, offset(start, tz)
    while t < end:
        nxt = min(t + WEEK, end)
        if offset(nxt, tz) != off:
            lo, hi = t, nxt  # offset(lo) == off != offset(hi)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offset(mid, tz) == off:
                    lo = mid
                else:
                    hi = mid
            found.append(hi)
            t, off = hi, offset(hi, tz)
        else:
            t = nxt
    return found


def sample(name, full):
    tz, rng = ZoneInfo(name), random.Random(name)
    trans = transitions(tz, utc(1800, 1, 1), utc(2100, 12, 31))
    t1900, t2038, t2100 = utc(1900, 1, 1), utc(2038, 1, 1), utc(2100, 12, 31)
    if full:
        instants = [x for t in trans for x in (t - 1, t)]
        instants += [rng.randrange(utc(1800, 1, 1), t2100) for _ in range(20)]
    else:
        first = trans[0] if trans else t1900
        instants = [rng.randrange(utc(1800, 1, 1), first)]
        for lo, hi in ((t1900, t2038), (t2038, t2100)):
            inside = [t for t in trans if lo <= t < hi]
            if inside:
                t = rng.choice(inside)
                instants += [t - 1, t]
            else:
                instants.append(rng.randrange(lo, hi))
        instants.append(rng.randrange(t1900, t2100))
    return [[t, text(t, tz)] for t in sorted(set(instants))]


# Python's datetime holds years 1..9999, in UTC and in the zone both.
EDGES = [
    ("Asia/Tokyo", utc(1, 1, 1)),
    ("America/New_York", utc(1, 1, 1)),
    ("America/New_York", utc(9999, 12, 31, 23, 59, 59)),
    ("America/New_York", utc(9999, 12, 31, 23, 59, 59) + 1),
    ("Asia/Tokyo", utc(9999, 12, 31, 23, 59, 59)),
    ("Asia/Tokyo", utc(9999, 12, 31, 14, 59, 59)),
    ("Asia/Tokyo", utc(1, 1, 1) - 1),
    ("Europe/Berlin", utc(9999, 12, 31, 22, 59, 59)),
    ("Australia/Sydney", utc(5000, 1, 1)),
]


def main():
    full = "--full" in sys.argv[1:]
    names, version = zone_names()
    zones = {name: sample(name, full) for name in names}
    for name, t in EDGES:
        zones[name] = sorted(zones[name] + [[t, text(t, ZoneInfo(name))]])
    out = sys.stdout
    out.write("{\n")
    about = ("datetime.fromtimestamp(t, ZoneInfo(zone)).isoformat() for [t, text] in each zone, "
             "null where Python raises; written by tests/data/gen_tz_cases.py")
    out.write(f'"about": {json.dumps(about)},\n')
    out.write(f'"python": {json.dumps(sys.version.split()[0])},\n')
    out.write(f'"tzdata": {json.dumps(version)},\n')
    out.write('"zones": {\n')
    lines = [f"{json.dumps(name)}: {json.dumps(cases)}" for name, cases in zones.items()]
    out.write(",\n".join(lines))
    out.write("\n}\n}\n")


if __name__ == "__main__":
    main()
