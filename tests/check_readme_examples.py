"""check_readme_examples.py README.md .ci/readme-examples EXAMPLES_DIR [DOCS_DIR]

Every command the README shows (its code lines that start with
./sprintsim, scripts/, bench/, tests/, /usr/bin/python3, make, SPR_, CI= or PYTHONPATH=
or hold "./sprintsim ", and its `backticked` spans that start so) and every command in an example configuration's header is
listed in .ci/readme-examples (run, run_as or not_run, with the text as
written), every text listed there is still shown (by the README, an
example's header or, given DOCS_DIR, a page of docs/: the tour's commands
that moved there stay run), and every configuration
in examples/ is run (an `example examples/X.ini` line).
Exit 0 when all hold; else the differences, exit 1."""
import os
import re
import shlex
import sys

PRE = re.compile(r"^(\./sprintsim|scripts/|bench/|tests/|/usr/bin/python3|make|SPR_|CI=|PYTHONPATH=)")
LAYOUT = re.compile(r"^\S+/\s{2,}")  # the layout tree: "tests/        CUnit suites..."


def readme_commands(text):
    cmds = []
    fence = False
    for line in text.split("\n"):
        if line.startswith("```"):
            fence = not fence
            continue
        if fence or line.startswith("    "):
            c = re.sub(r"\s+#.*$", "", line.strip())
            if (PRE.match(c) or "./sprintsim " in c) and not LAYOUT.match(c):
                cmds.append(c)
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    for m in re.finditer(r"`([^`]+)`", prose):
        c = " ".join(m.group(1).split())
        if PRE.match(c):
            cmds.append(c)
    return set(cmds)


def header_commands(exdir):
    """The commands in the example configurations' header comments."""
    cmds = set()
    for f in sorted(os.listdir(exdir)):
        if not f.endswith(".ini"):
            continue
        for line in open(os.path.join(exdir, f)):
            c = re.sub(r"\s+#.*$", "", line.lstrip("; \t").rstrip())
            if line.startswith(";") and PRE.match(c):
                cmds.add(c)
    return cmds


def listed(script):
    texts, examples = set(), set()
    for line in open(script).read().replace("\\\n", " ").split("\n"):
        line = line.strip()
        if line.startswith(("run ", "run_as ", "not_run ", "example ")):
            words = shlex.split(line, comments=True)
            if line.startswith("example "):
                examples.add(words[1])
            elif "$" not in words[1]:
                texts.add(words[1])
    return texts, examples


def main():
    readme, script, exdir = sys.argv[1:4]
    text = open(readme).read()
    docs = ""
    if len(sys.argv) > 4:
        for f in sorted(os.listdir(sys.argv[4])):
            if f.endswith(".md"):
                docs += " " + " ".join(open(os.path.join(sys.argv[4], f)).read().split())
    want = readme_commands(text)
    headers = header_commands(exdir)
    have, examples = listed(script)
    flat = " ".join(text.split())
    bad = 0
    for c in sorted(want - have):
        print("README command not in %s: %s" % (script, c))
        bad = 1
    for c in sorted(headers - have):
        print("command of an example's header not in %s: %s" % (script, c))
        bad = 1
    for c in sorted(have):
        if c not in flat and c not in headers and c not in docs:
            print("%s lists a command neither the README, an example nor docs/ shows: %s" % (script, c))
            bad = 1
    for f in sorted(os.listdir(exdir)):
        if f.endswith(".ini") and "examples/" + f not in examples:
            print("examples/%s is not run by %s" % (f, script))
            bad = 1
    if not bad:
        print("%d README commands and %d example header commands listed, %d example configurations run"
              % (len(want), len(headers), len(examples)))
    return bad


if __name__ == "__main__":
    sys.exit(main())
