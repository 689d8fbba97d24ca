"""Reads an epic-audit junit.xml with junitparser (what many CI systems use)
and checks what CI displays: every suite's counts equal its own test
cases, classname + name are unique, each failure/error carries the finding
in both `message` (Jenkins) and its text (GitLab), and times are numbers.

    junit_check.py JUNIT_XML

Prints one summary line per suite and `ok`, or the first violation and
exits 1.
"""
import sys

from junitparser import Error, Failure, JUnitXml, Skipped

xml = JUnitXml.fromfile(sys.argv[1])
seen = set()
totals = dict(tests=0, failures=0, errors=0, skipped=0)
for suite in xml:
    cases = list(suite)
    kinds = dict(failures=Failure, errors=Error, skipped=Skipped)
    counted = {k: sum(1 for c in cases if any(isinstance(r, t) for r in c.result)) for k, t in kinds.items()}
    counted["tests"] = len(cases)
    for k, v in counted.items():
        if getattr(suite, k) != v:
            sys.exit(f"{suite.name}: {k}={getattr(suite, k)} but {v} test cases")
        totals[k] += v
    for c in cases:
        key = (c.classname, c.name)
        if key in seen:
            sys.exit(f"duplicate test case {key}")
        seen.add(key)
        if not isinstance(c.time, float) or c.time < 0:
            sys.exit(f"{c.name}: time {c.time!r}")
        for r in c.result:
            if isinstance(r, (Failure, Error)) and not (r.message and r.text and r.text.strip()):
                sys.exit(f"{c.name}: {r._tag} without both message and text")
    print(f"{suite.name}: tests={len(cases)} failures={counted['failures']} errors={counted['errors']} "
          f"skipped={counted['skipped']} time={suite.time}")
for k, v in totals.items():
    if getattr(xml, k) != v:
        sys.exit(f"testsuites: {k}={getattr(xml, k)} but {v} in its suites")
print("ok")
