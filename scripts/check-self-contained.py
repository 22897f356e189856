#!/usr/bin/env python3
"""Fails when a tracked file refers to a path outside the repository.

palisade must build, test and benchmark from a clone with nothing beside it (issue 20). This
check reads every tracked text file (git ls-files) and reports:
- any mention of the steering folder that sits beside a developer's checkout (`../shared`,
  `shared/vectors`), whatever the context;
- any relative path (`../…`) that, resolved from the file's own folder, leaves the repository;
- any absolute path into a home, work or user folder (`/home/`, `/root/`, `/work/`, `/Users/`).
The test vectors (tests/vectors/, public data with their own provenance) are not scanned.
Exit status: 0 clean, 1 with one line per finding.
"""
import os
import re
import subprocess
import sys

root = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                      check=True).stdout.strip()
files = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True
                       ).stdout.decode().split("\0")

# Built from pieces so that this file does not match itself.
steering = re.compile(r"\.\./" + "shared|" + "shared" + r"/vectors")
relative = re.compile(r"(?<![A-Za-z0-9_.~-])((?:\.\./)+)([A-Za-z0-9_.\-/]*)")
absolute = re.compile(r"(?<![A-Za-z0-9_.~:-])/(?:home|root|work|Users)/")

# This script names the patterns it looks for.
SELF = "scripts/check-self-contained.py"
findings = []
for rel in files:
    if not rel or rel.startswith("tests/vectors/") or rel in ("Cargo.lock", SELF):
        continue
    path = os.path.join(root, rel)
    if not os.path.isfile(path) or os.path.islink(path):
        continue
    with open(path, "rb") as f:
        data = f.read()
    if b"\0" in data:
        continue  # binary
    text = data.decode("utf-8", "replace")
    for n, line in enumerate(text.splitlines(), 1):
        if steering.search(line):
            findings.append(f"{rel}:{n}: refers to the folder beside the checkout: {line.strip()}")
        for m in relative.finditer(line):
            target = os.path.normpath(os.path.join(os.path.dirname(path), m.group(1) + m.group(2)))
            if os.path.relpath(target, root).startswith(".."):
                findings.append(f"{rel}:{n}: '{m.group(0)}' leaves the repository")
        if absolute.search(line):
            findings.append(f"{rel}:{n}: absolute path into a home or work folder: {line.strip()}")

for f in findings:
    print(f)
if findings:
    print(f"{len(findings)} reference(s) to paths outside the repository", file=sys.stderr)
    sys.exit(1)
print(f"self-contained: {len([f for f in files if f])} tracked files refer to nothing outside the repository")
